"""`executor: ray`: a real local Ray cluster (2 CPUs) started inside the test runs a small config;
the tables equal the local executor's, and a unit whose worker is killed runs again, once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


pytest.importorskip("ray", reason="the Ray executor tests need `pip install -e '.[dev]'` (Ray is in the dev extra)")

pytestmark = pytest.mark.slow


def write_config(tmp: Path, base: Path, executor: str) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    raw = {"name": "ray", "model": str(base), "store": str(tmp / "s.sqlite"), "output_dir": str(tmp / "out"),
           "executor": executor,
           "evaluation": {"tasks": ["arc_easy", "piqa"], "limit": 4, "batch_size": 4},
           "calibration": {"source": "c4", "n_samples": 4, "seq_len": 32}, "distance": {"windows": 2, "seq_len": 32},
           "variants": [{"name": "magnitude-50", "method": "magnitude", "options": {"sparsity": 0.5}},
                        {"name": "wanda-50", "method": "wanda", "options": {"sparsity": 0.5}}]}
    path = tmp / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run(config: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "COLUMNS": "200", "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "unicomp", "run", str(config)], capture_output=True, text=True,
                          env=full, timeout=900)


def rows(tmp: Path) -> list:
    import json

    data = json.loads((tmp / "out" / "ray-report.json").read_text())
    return sorted((r["model"], r["task"], r["score"], r.get("correct_to_wrong")) for r in data["rows"]), data["distance"]


@pytest.fixture
def base(tiny_model) -> Path:
    return tiny_model


def units(store: Path) -> list[tuple]:
    import sqlite3

    con = sqlite3.connect(store)
    try:
        return sorted(con.execute("SELECT kind, task, model_fingerprint FROM units").fetchall())
    finally:
        con.close()


def test_ray_executor_gives_the_local_tables_and_survives_a_killed_worker(tmp_path, base):
    local = run(write_config(tmp_path / "local", base, "local"))
    assert local.returncode == 0, local.stderr[-3000:]

    on_ray = run(write_config(tmp_path / "ray", base, "ray"))
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    assert "(on Ray)" in on_ray.stderr
    assert rows(tmp_path / "ray") == rows(tmp_path / "local")
    assert units(tmp_path / "ray" / "s.sqlite") == units(tmp_path / "local" / "s.sqlite")

    # The worker running the first evaluation unit is SIGKILLed mid-unit (scored, not returned):
    # Ray runs the unit again in a new worker; the run completes with every unit exactly once.
    marker = tmp_path / "killed-once"
    killed = run(write_config(tmp_path / "killed", base, "ray"),
                 env={"UNICOMP_FAILPOINT": "evaluate.scored:SIGKILL", "UNICOMP_FAILPOINT_ONCE": str(marker)})
    assert killed.returncode == 0, killed.stderr[-3000:]
    assert marker.exists()  # a worker really was killed
    assert units(tmp_path / "killed" / "s.sqlite") == units(tmp_path / "local" / "s.sqlite")
    assert rows(tmp_path / "killed") == rows(tmp_path / "local")
