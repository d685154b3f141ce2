"""scripts/findings.py writes the findings page from stored runs, as users run it: a real tiny run with a
C4- and a reasoning-calibrated pruning and a quantization, its numbers equal to the run's own report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from unicomp.config import load_config
from unicomp.runs.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[2]


def test_findings_page_states_every_finding_from_the_store(tmp_path: Path, tiny_model: Path) -> None:
    wanda = {"method": "wanda", "options": {"sparsity": 0.5}}
    raw = {"name": "tiny_findings", "model": str(tiny_model), "store": str(tmp_path / "s.sqlite"),
           "output_dir": str(tmp_path / "out"), "evaluation": {"tasks": ["piqa", "xcopa_it"], "limit": 12, "batch_size": 4},
           "calibration": {"source": "c4", "n_samples": 4, "seq_len": 32, "seed": 0}, "distance": {"enabled": False},
           "variants": [{"name": "wanda-c4", **wanda},
                        {"name": "wanda-reasoning", **wanda,
                         "calibration": {"source": "reasoning", "n_samples": 4, "seq_len": 32, "seed": 42,
                                         "chat_template": False}},
                        {"name": "rtn-w4", "method": "rtn", "options": {"bits": 4, "group_size": 32}}]}
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = run_experiment(load_config(config))
    out = tmp_path / "findings.md"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "findings.py"), str(config), "--out", str(out),
                           "--resamples", "50"], capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert result["run_id"] in page and "Do not edit by hand" in page
    summary = page.split("## Verdicts", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in summary.splitlines() if re.match(r"\| \d\. ", line)]
    assert len(rows) == 5  # every finding has a verdict for this run
    assert "3. Distillation" in rows[2] and "not in this run" in rows[2]  # no distilled variant
    assert "not in this run" in rows[4]  # no reliability track
    assert "not in this run" not in rows[1] and "not in this run" not in rows[3]  # quantization vs pruning, C4 vs reasoning
    report = json.loads((tmp_path / "out" / "tiny_findings-report.json").read_text())
    for cat in report["categories"]:  # each point estimate is the report's own retention
        if cat["model"] != "base" and cat["category"] == "knowledge" and cat["mean_retained_pct"] is not None:
            line = next(x for x in page.splitlines() if x.startswith(f"| {cat['model']} | ") and "%" in x)
            assert f"{cat['mean_retained_pct']:.1f}%" in line
    assert "| wanda-reasoning | wanda-c4 |" in page  # the calibration pair, reasoning minus C4
