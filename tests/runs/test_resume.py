"""A killed `unicomp run` resumes: a real subprocess is killed between units, and inside a unit of
each kind at named points (unicomp/failpoints.py), then re-run: nothing lost, nothing
duplicated, and the report equals an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiny_models import save_tiny_llama

CONFIG = """
name: resume
model: {model}
store: {store}
output_dir: {out}
evaluation:
  tasks: [arc_easy, piqa]
  limit: 6
  batch_size: 4
calibration: {{source: c4, n_samples: 4, seq_len: 32, seed: 0}}
distance: {{windows: 2, seq_len: 32}}
variants:
  - {{name: magnitude-50, method: magnitude, options: {{sparsity: 0.5}}}}
  - {{name: wanda-50, method: wanda, options: {{sparsity: 0.5}}}}
"""


def write_config(tmp: Path, tag: str, model_dir: Path) -> Path:
    path = tmp / f"{tag}.yaml"
    path.write_text(CONFIG.format(model=model_dir, store=tmp / tag / "s.sqlite", out=tmp / tag / "out"))
    return path


def run(config: Path, failpoint: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("UNICOMP_FAILPOINT", None)
    if failpoint:
        env["UNICOMP_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "unicomp", "run", str(config)], capture_output=True, text=True, env=env,
                          timeout=900)


def start(config: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "unicomp", "run", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})


def units(store: Path, kind: str | None = None) -> int:
    if not store.exists():
        return 0
    con = sqlite3.connect(store)
    try:
        if kind:
            return con.execute("SELECT COUNT(*) FROM units WHERE kind = ?", (kind,)).fetchone()[0]
        return con.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def report_rows(tmp: Path, tag: str) -> list[dict]:
    data = json.loads((tmp / tag / "out" / "resume-report.json").read_text())
    return sorted(({k: r.get(k) for k in ("model", "task", "score", "retained_pct", "correct_to_wrong")} for r in data["rows"]),
                  key=lambda r: (r["model"], r["task"]))


def test_killed_run_resumes_without_losing_or_duplicating(tmp_path):
    model_dir = save_tiny_llama(tmp_path / "tiny-model")
    store = tmp_path / "killed" / "s.sqlite"

    proc = start(write_config(tmp_path, "killed", model_dir))
    deadline = time.time() + 600
    while units(store, "compress") < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = units(store)
    assert done_before >= 3  # 2 base evaluations + 1 compression, committed before the kill

    resumed = subprocess.run([sys.executable, "-m", "unicomp", "run", str(tmp_path / "killed.yaml")],
                             capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("(reused from the store)") >= done_before
    # 2 tasks x 3 models + 2 compressions + 2 distances, each exactly once
    assert units(store) == 10
    con = sqlite3.connect(store)
    assert con.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 2 * 6 * 3 + 2 * 2
    statuses = [r[0] for r in con.execute("SELECT status FROM runs ORDER BY created_at")]
    assert statuses == ["interrupted", "finished"]  # the re-run saw the killed run's process gone

    fresh = subprocess.run([sys.executable, "-m", "unicomp", "run", str(write_config(tmp_path, "fresh", model_dir))],
                           capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=900)
    assert fresh.returncode == 0, fresh.stderr
    assert report_rows(tmp_path, "killed") == report_rows(tmp_path, "fresh")


# Inside a unit of each kind: compress (wanda's first layer done), evaluate (magnitude x piqa
# scored, not stored), the store transaction of the magnitude compress unit (open, not
# committed), a checkpoint fully staged but not moved into place (wanda), a distance unit
# between its windows.
KILL_POINTS = ["compress.layer:SIGKILL:3", "evaluate.scored:SIGKILL:4", "store.commit:SIGKILL:3",
               "save.staged:SIGKILL:2", "distance.window:SIGKILL:1"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    model_dir = save_tiny_llama(tmp / "tiny-model")
    done = run(write_config(tmp, "fresh", model_dir))
    assert done.returncode == 0, done.stderr
    return model_dir, report_rows(tmp, "fresh")


@pytest.mark.slow
@pytest.mark.parametrize("failpoint", KILL_POINTS)
def test_killed_inside_a_unit_of_each_kind_resumes_to_the_same_report(tmp_path, uninterrupted, failpoint):
    model_dir, expected = uninterrupted
    config = write_config(tmp_path, "killed", model_dir)
    killed = run(config, failpoint)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    store = tmp_path / "killed" / "s.sqlite"
    kept = units(store)
    resumed = run(config)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.stderr.count("(reused from the store)") == kept  # every unit finished before the kill
    assert units(store) == 10  # 2 tasks x 3 models + 2 compressions + 2 distances, each once
    con = sqlite3.connect(store)
    assert con.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 2 * 6 * 3 + 2 * 2
    assert [r[0] for r in con.execute("SELECT status FROM runs ORDER BY created_at")] == ["interrupted", "finished"]
    assert report_rows(tmp_path, "killed") == expected
    checkpoints = tmp_path / "killed" / "out" / "checkpoints"
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".unicomp-")]  # leftovers cleaned
