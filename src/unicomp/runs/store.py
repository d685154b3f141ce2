"""The results store: one SQLite file with runs, evaluation units and per-item records.

A unit is identified by a key derived from what determines its result (model fingerprint,
task, settings, dataset revision), so asking for the same evaluation again reuses it instead
of recomputing. A unit and its records are written in one transaction: an interrupted run
leaves either the whole unit or nothing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unicomp import owner
from unicomp.errors import UnicompError
from unicomp.failpoints import failpoint

# Columns added after the first release: (table, column, type). A store written before them is
# migrated in place when opened (ALTER TABLE ADD COLUMN: old rows get NULL, nothing is rewritten).
_ADDED_COLUMNS = (("runs", "owner", "TEXT"), ("runs", "error", "TEXT"), ("units", "schema_version", "INTEGER"))

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    command TEXT NOT NULL,
    config_json TEXT NOT NULL,
    environment_json TEXT NOT NULL,
    owner TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS units (
    unit_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    model_fingerprint TEXT NOT NULL,
    task TEXT NOT NULL,
    category TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    scores_json TEXT NOT NULL,
    stderr_json TEXT NOT NULL,
    n_items INTEGER NOT NULL,
    data_json TEXT NOT NULL,
    model_json TEXT NOT NULL,
    environment_json TEXT NOT NULL,
    wall_seconds REAL NOT NULL,
    created_at REAL NOT NULL,
    schema_version INTEGER
);
CREATE TABLE IF NOT EXISTS run_units (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    unit_key TEXT NOT NULL REFERENCES units(unit_key),
    reused INTEGER NOT NULL,
    PRIMARY KEY (run_id, unit_key)
);
CREATE TABLE IF NOT EXISTS records (
    unit_key TEXT NOT NULL REFERENCES units(unit_key),
    item_id TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    target_json TEXT,
    prediction_json TEXT,
    loglikelihoods_json TEXT,
    is_greedy_json TEXT,
    generation TEXT,
    metrics_json TEXT NOT NULL,
    extra_json TEXT,
    PRIMARY KEY (unit_key, item_id)
);
"""


def ending(exc: BaseException) -> tuple[str, str]:
    """(status, error) a run records when `exc` stops it: Ctrl-C and SIGTERM interrupt, anything
    else fails it (a NaN model, a bad dataset row) with the error's one line."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return "interrupted", type(exc).__name__
    return "failed", str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def unit_key(kind: str, model_fingerprint: str, task: str, settings: dict[str, Any], data_revision: str) -> str:
    """Content hash of everything that determines a unit's result."""
    payload = json.dumps([kind, model_fingerprint, task, settings, data_revision], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


@dataclass
class StoredUnit:
    unit_key: str
    task: str
    category: str
    scores: dict[str, float]
    stderr: dict[str, float | None]
    n_items: int
    settings: dict[str, Any]
    data: dict[str, Any]
    model: dict[str, Any]
    wall_seconds: float


class Store:
    """Open (creating if needed) the store at `path`; fails early with a clear error if unwritable."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path)
            self.conn.executescript(SCHEMA)
            self._migrate()
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.commit()
        except (OSError, sqlite3.Error) as exc:
            raise UnicompError(
                f"cannot write the results store {self.path}: {exc}",
                "pass --store with a writable path or fix the folder's permissions",
            ) from None

    def _migrate(self) -> None:
        """Bring a store written by an earlier release to this schema, in one transaction."""
        with self.conn:
            for table, column, kind in _ADDED_COLUMNS:
                have = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            self.conn.execute("UPDATE units SET schema_version = 1 WHERE schema_version IS NULL")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------- runs
    def start_run(self, command: str, config: dict[str, Any], environment: dict[str, Any]) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.reap_dead_runs()
        with self.conn:
            self.conn.execute(
                "INSERT INTO runs (run_id, created_at, finished_at, status, command, config_json, environment_json, owner) "
                "VALUES (?, ?, NULL, 'running', ?, ?, ?, ?)",
                (run_id, time.time(), command, json.dumps(config, sort_keys=True), json.dumps(environment, sort_keys=True),
                 owner.token()),
            )
        return run_id

    def finish_run(self, run_id: str, status: str = "finished", error: str | None = None) -> None:
        """status: finished | interrupted (Ctrl-C, SIGTERM, killed) | failed (with the error's one line)."""
        with self.conn:
            self.conn.execute("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ?",
                              (status, time.time(), error, run_id))

    def reap_dead_runs(self) -> list[str]:
        """Runs still 'running' whose process is gone (SIGKILL, power loss) become 'interrupted'."""
        rows = self.conn.execute("SELECT run_id, owner FROM runs WHERE status = 'running'").fetchall()
        dead = [run_id for run_id, who in rows if owner.is_dead(who)]
        if dead:
            with self.conn:
                self.conn.executemany("UPDATE runs SET status = 'interrupted', error = ? WHERE run_id = ? AND status = 'running'",
                                      [("its process ended without finishing (killed)", r) for r in dead])
        return dead

    # -------------------------------------------------------------- units
    def find_unit(self, key: str) -> StoredUnit | None:
        row = self.conn.execute(
            "SELECT unit_key, task, category, scores_json, stderr_json, n_items, settings_json, data_json, model_json, wall_seconds "
            "FROM units WHERE unit_key = ?", (key,)).fetchone()
        if row is None:
            return None
        return StoredUnit(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), row[5],
                          json.loads(row[6]), json.loads(row[7]), json.loads(row[8]), row[9])

    def unit_environment(self, key: str) -> dict[str, Any]:
        """Where a stored unit was computed (package versions, machine, device name)."""
        row = self.conn.execute("SELECT environment_json FROM units WHERE unit_key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row and row[0] else {}

    def save_unit(self, run_id: str, key: str, *, kind: str, model: dict[str, Any], result, environment: dict[str, Any],
                  wall_seconds: float, schema: int = 1) -> None:
        """Store a finished unit (its record as a `TaskResult`) and its item records atomically.
        `schema` is the version of the unit kind's record layout (NULL in stores from before it: 1)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO units (unit_key, kind, model_fingerprint, task, category, settings_json, "
                "scores_json, stderr_json, n_items, data_json, model_json, environment_json, wall_seconds, created_at, "
                "schema_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, kind, model["fingerprint"], result.task, result.category, json.dumps(result.settings, sort_keys=True),
                 json.dumps(result.scores), json.dumps(result.stderr), result.n_items, json.dumps(result.data),
                 json.dumps(model), json.dumps(environment), wall_seconds, time.time(), schema),
            )
            self.conn.execute("DELETE FROM records WHERE unit_key = ?", (key,))
            self.conn.executemany(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(key, r.item_id, r.prompt_hash, json.dumps(r.target), json.dumps(r.prediction),
                  None if r.loglikelihoods is None else json.dumps(r.loglikelihoods),
                  None if r.is_greedy is None else json.dumps(r.is_greedy), r.generation,
                  json.dumps(r.metrics), json.dumps(r.extra)) for r in result.records],
            )
            self.conn.execute("INSERT OR REPLACE INTO run_units VALUES (?, ?, 0)", (run_id, key))
            failpoint("store.commit")

    def link_unit(self, run_id: str, key: str) -> None:
        """Record that a run reused a stored unit."""
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO run_units VALUES (?, ?, 1)", (run_id, key))

    def records(self, key: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT item_id, prompt_hash, target_json, prediction_json, loglikelihoods_json, is_greedy_json, generation, "
            "metrics_json, extra_json FROM records WHERE unit_key = ? ORDER BY CAST(item_id AS INTEGER), item_id", (key,)).fetchall()
        loads = lambda v: None if v is None else json.loads(v)  # noqa: E731
        return [{"item_id": r[0], "prompt_hash": r[1], "target": loads(r[2]), "prediction": loads(r[3]),
                 "loglikelihoods": loads(r[4]), "is_greedy": loads(r[5]), "generation": r[6],
                 "metrics": loads(r[7]), "extra": loads(r[8])} for r in rows]

    # -------------------------------------------------------------- export
    def export_run(self, run_id: str) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT run_id, created_at, finished_at, status, command, config_json, environment_json FROM runs WHERE run_id = ?",
            (run_id,)).fetchone()
        if row is None:
            raise UnicompError(f"no run {run_id!r} in {self.path}", "list runs with `unicomp runs`")
        units = []
        for (key, reused) in self.conn.execute("SELECT unit_key, reused FROM run_units WHERE run_id = ? ORDER BY rowid", (run_id,)):
            u = self.find_unit(key)
            units.append({"unit_key": key, "reused": bool(reused), "task": u.task, "category": u.category,
                          "scores": u.scores, "stderr": u.stderr, "n_items": u.n_items, "settings": u.settings,
                          "data": u.data, "model": u.model, "wall_seconds": u.wall_seconds})
        return {"run_id": row[0], "created_at": row[1], "finished_at": row[2], "status": row[3], "command": row[4],
                "config": json.loads(row[5]), "environment": json.loads(row[6]), "units": units}

    def newest_finished_run(self, name: str) -> dict[str, Any] | None:
        """The export of the newest finished `unicomp run` of the config named `name` (None: there is none)."""
        for row in reversed(self.list_runs()):
            if row["status"] == "finished" and row["command"] == "run":
                export = self.export_run(row["run_id"])
                if export["config"].get("name") == name:
                    return export
        return None

    def list_runs(self) -> list[dict[str, Any]]:
        self.reap_dead_runs()
        return [{"run_id": r[0], "created_at": r[1], "status": r[2], "command": r[3], "error": r[4]}
                for r in self.conn.execute("SELECT run_id, created_at, status, command, error FROM runs ORDER BY created_at")]
