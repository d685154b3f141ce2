"""The SQLite results store: atomic units, reuse by key, export with provenance."""

from __future__ import annotations

import json
from pathlib import Path
import sqlite3

import pytest

from unicomp.errors import UnicompError
from unicomp.evaluate.runner import ItemRecord, TaskResult
from unicomp.runs.store import Store, unit_key


def _result(n: int = 3) -> TaskResult:
    records = [ItemRecord(str(i), f"h{i}", 1, i % 2, [-1.0 - i, -2.0], [True, False], None, {"acc": float(i % 2 == 1)})
               for i in range(n)]
    return TaskResult("arc_easy", "knowledge", {"acc": 1 / 3}, {"acc": 0.33}, n, records,
                      {"source": "mirror", "revision": "sha256:abc"}, {"limit": n})


def test_unit_key_depends_on_everything_that_changes_results():
    base = unit_key("evaluate", "fp1", "arc_easy", {"limit": 10}, "sha256:a")
    assert base == unit_key("evaluate", "fp1", "arc_easy", {"limit": 10}, "sha256:a")
    assert base != unit_key("evaluate", "fp2", "arc_easy", {"limit": 10}, "sha256:a")
    assert base != unit_key("evaluate", "fp1", "piqa", {"limit": 10}, "sha256:a")
    assert base != unit_key("evaluate", "fp1", "arc_easy", {"limit": 11}, "sha256:a")
    assert base != unit_key("evaluate", "fp1", "arc_easy", {"limit": 10}, "sha256:b")


def test_save_find_export_roundtrip(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    run = store.start_run("eval", {"model": "m"}, {"packages": {"torch": "x"}})
    key = unit_key("evaluate", "fp", "arc_easy", {"limit": 3}, "sha256:abc")
    assert store.find_unit(key) is None
    store.save_unit(run, key, kind="evaluate", model={"fingerprint": "fp", "name": "m"}, result=_result(),
                    environment={}, wall_seconds=1.5)
    store.finish_run(run)
    unit = store.find_unit(key)
    assert unit.scores == {"acc": 1 / 3} and unit.n_items == 3 and unit.data["source"] == "mirror"
    recs = store.records(key)
    assert [r["item_id"] for r in recs] == ["0", "1", "2"]
    assert recs[1]["loglikelihoods"] == [-2.0, -2.0] and recs[1]["is_greedy"] == [True, False]
    exported = store.export_run(run)
    assert exported["status"] == "finished" and exported["config"] == {"model": "m"}
    assert exported["units"][0]["model"]["fingerprint"] == "fp" and exported["units"][0]["reused"] is False
    json.dumps(exported)  # fully JSON-able

    run2 = store.start_run("eval", {"model": "m"}, {})
    store.link_unit(run2, key)
    assert store.export_run(run2)["units"][0]["reused"] is True
    assert len(store.list_runs()) == 2


def test_saving_a_unit_is_atomic(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    run = store.start_run("eval", {}, {})
    bad = _result()
    bad.records.append(ItemRecord("0", "dup", 1))  # duplicate item id violates the primary key
    key = unit_key("evaluate", "fp", "arc_easy", {}, "r")
    with pytest.raises(sqlite3.IntegrityError):
        store.save_unit(run, key, kind="evaluate", model={"fingerprint": "fp"}, result=bad, environment={}, wall_seconds=0)
    assert store.find_unit(key) is None and store.records(key) == []


def test_unwritable_store_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UnicompError, match="cannot write the results store"):
        Store(blocker / "sub" / "s.sqlite")


# The runs table as releases before the owner / error columns wrote it (git 485e510).
_RUNS_V1 = """CREATE TABLE runs (run_id TEXT PRIMARY KEY, created_at REAL NOT NULL, finished_at REAL,
    status TEXT NOT NULL, command TEXT NOT NULL, config_json TEXT NOT NULL, environment_json TEXT NOT NULL)"""


def test_a_store_from_before_run_owners_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.execute(_RUNS_V1)
    con.execute("INSERT INTO runs VALUES ('r-old', 1.0, 2.0, 'finished', 'run', '{}', '{}')")
    con.execute("INSERT INTO runs VALUES ('r-stuck', 1.0, NULL, 'running', 'run', '{}', '{}')")
    con.commit()
    con.close()
    store = Store(path)
    runs = {r["run_id"]: r for r in store.list_runs()}
    assert runs["r-old"]["status"] == "finished" and runs["r-old"]["error"] is None
    assert runs["r-stuck"]["status"] == "running"  # no owner recorded: never guessed dead
    run = store.start_run("eval", {}, {})
    store.finish_run(run, "failed", "task arc_easy item 0: nan")
    assert {r["run_id"]: r["error"] for r in store.list_runs()}[run] == "task arc_easy item 0: nan"


def test_a_running_run_whose_process_died_reads_as_interrupted(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "s.sqlite"
    code = ("import sys; from unicomp.runs.store import Store; s = Store(sys.argv[1]); "
            "print(s.start_run('run', {}, {}))")
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout.strip()
    store = Store(path)
    [listed] = store.list_runs()
    assert listed["run_id"] == run and listed["status"] == "interrupted" and "killed" in listed["error"]


def test_a_store_written_by_the_previous_release_is_reused_by_a_run(tmp_path):
    """tests/runs/data/store-485e510.sql is the SQL dump of the store that release 485e510 (before
    units, run owners and schema versions) wrote for a tiny run: evaluate base x arc_easy, compress
    magnitude-50, evaluate magnitude-50 x arc_easy, distance. Today's code migrates it in place and
    reuses every unit whose result it still has; only the compression re-runs, because its
    checkpoint folder is not part of the dump, and it reproduces the same weights. (Its key is new:
    compression is now keyed by the method's resolved options, defaults included.)"""
    import yaml

    from tiny_models import save_tiny_llama
    from unicomp.config import load_config
    from unicomp.runs.experiment import run_experiment

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript((Path(__file__).parent / "data" / "store-485e510.sql").read_text())
    con.close()
    old = {k: (kind, json.loads(s)) for k, kind, s in
           sqlite3.connect(path).execute("SELECT unit_key, kind, scores_json FROM units")}
    base = save_tiny_llama(tmp_path / "tiny")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "name": "fixture", "model": str(base), "store": str(path), "output_dir": str(tmp_path / "out"),
        "evaluation": {"tasks": ["arc_easy"], "limit": 4, "batch_size": 4},
        "calibration": {"source": "c4", "n_samples": 4, "seq_len": 32, "seed": 0},
        "distance": {"windows": 2, "seq_len": 32},
        "variants": [{"name": "magnitude-50", "method": "magnitude", "options": {"sparsity": 0.5}}]}))
    result = run_experiment(load_config(config))
    units = {u["unit_key"]: u for u in result["export"]["units"]}
    kept = {k for k, (kind, _) in old.items() if kind != "compress"}
    assert kept <= set(units) and len(units) == len(old)  # the same evaluation and distance keys
    reused = {old[k][0] for k, u in units.items() if u["reused"]}
    assert reused == {"evaluate", "distance"} and sum(u["reused"] for u in units.values()) == 3
    for key in kept:
        assert units[key]["scores"] == old[key][1]
    versions = sqlite3.connect(path).execute("SELECT DISTINCT schema_version FROM units").fetchall()
    assert versions == [(1,)]  # migrated in place
