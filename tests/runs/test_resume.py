"""A killed `unicomp run` resumes: a real subprocess is killed between units, then re-run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tiny_models import tiny_llama, tiny_tokenizer

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
    model_dir = tmp_path / "tiny-model"
    tiny_llama().save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
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
