"""Distillation inside `unicomp run` and `unicomp compress`: a Minitron depth student is built from the
run's base, trained on its logits over C4 windows (not evaluation text), saved as an ordinary
transformers folder, evaluated like every other variant, and its training cost lands in the report
and the store; a width student without training is written by `unicomp compress`."""

from __future__ import annotations

import json

import yaml
from transformers import AutoConfig

from unicomp.config import load_config
from unicomp.runs.experiment import run_experiment

TRAIN = {"steps": 2, "micro_batch_size": 2, "grad_accum": 1, "lr": 1e-3, "autocast": "off"}
DATA = {"n_samples": 4, "seq_len": 32}


def test_a_depth_student_is_trained_saved_and_evaluated_in_a_run(tiny_model, tmp_path, mirror):
    raw = {"name": "distill", "model": str(tiny_model), "store": str(tmp_path / "s.sqlite"),
           "output_dir": str(tmp_path / "out"), "evaluation": {"tasks": ["arc_easy"], "limit": 2, "batch_size": 2},
           "calibration": {"source": "c4", "n_samples": 2, "seq_len": 32}, "distance": {"enabled": False},
           "variants": [{"name": "depth-1", "method": "minitron_depth",
                         "options": {"drop_layers": 1, "keep_first_last": False, "train": TRAIN, "data": DATA}}]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = run_experiment(load_config(path))
    assert {r["model"] for r in result["rows"]} == {"base", "depth-1"}
    unit = next(u for u in result["export"]["units"] if u["category"] == "compression")
    report = unit["data"]["report"]
    assert report["summary"]["train_steps"] == 2 and report["summary"]["train_tokens"] == 2 * 2 * 32
    assert report["summary"]["parameter_ratio"] < 1
    assert report["extra"]["training"]["data"]["config"]["source"] == "c4" and len(report["extra"]["training"]["history"]) == 2
    folder = unit["data"]["checkpoint"]
    assert AutoConfig.from_pretrained(folder).num_hidden_layers == 1
    assert result["compression"]["depth-1"]["wall_seconds"] > 0

    again = run_experiment(load_config(path))  # nothing is trained twice
    assert all(u["reused"] for u in again["export"]["units"])


def test_unicomp_compress_writes_an_untrained_width_student(tiny_model, tmp_path, mirror):
    from test_cli import unicomp  # tests/: the CLI in a subprocess

    out = tmp_path / "width"
    proc = unicomp("compress", "-m", str(tiny_model), "--method", "minitron_width", "-o", str(out),
                   "--option", "intermediate_size=64", "--option", "train=null", "--n-samples", "2", "--seq-len", "16",
                   env={"UNICOMP_DATA_DIR": str(mirror)})
    assert proc.returncode == 0, proc.stderr
    assert AutoConfig.from_pretrained(out).intermediate_size == 64
    manifest = json.loads((out / "unicomp.json").read_text())
    assert manifest["report"]["extra"]["training"] is None
    assert manifest["report"]["summary"]["parameter_ratio"] < 1


def test_a_student_wider_than_its_teacher_is_refused_in_one_line(tiny_model, tmp_path, mirror):
    from test_cli import assert_one_line_error, unicomp

    proc = unicomp("compress", "-m", str(tiny_model), "--method", "minitron_width", "-o", str(tmp_path / "w"),
                   "--option", "hidden_size=4096", "--option", "train=null", "--n-samples", "2", "--seq-len", "16",
                   env={"UNICOMP_DATA_DIR": str(mirror)})
    assert_one_line_error(proc, "larger than the teacher's")
    assert not (tmp_path / "w").exists()
