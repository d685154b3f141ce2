"""Distillation inside `unicomp run` and `unicomp compress`: a Minitron depth student is built from the
run's base, trained on its logits over C4 windows (not evaluation text), saved as an ordinary
transformers folder, evaluated like every other variant, and its training cost lands in the report
and the store; a width student without training is written by `unicomp compress`."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from transformers import AutoConfig

from unicomp.config import load_config
from unicomp.runs.experiment import run_experiment

TRAIN = {"steps": 2, "micro_batch_size": 2, "grad_accum": 1, "lr": 1e-3, "autocast": "off"}
DATA = {"n_samples": 4, "seq_len": 32}


def _config(tiny_model, tmp_path, variant: dict):
    """A run of the tiny base and one distilled variant, scored on 2 ARC-Easy items."""
    raw = {"name": "distill", "model": str(tiny_model), "store": str(tmp_path / "s.sqlite"),
           "output_dir": str(tmp_path / "out"), "evaluation": {"tasks": ["arc_easy"], "limit": 2, "batch_size": 2},
           "calibration": {"source": "c4", "n_samples": 2, "seq_len": 32}, "distance": {"enabled": False},
           "variants": [variant]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_a_depth_student_is_trained_saved_and_evaluated_in_a_run(tiny_model, tmp_path, mirror):
    config = _config(tiny_model, tmp_path, {"name": "depth-1", "method": "minitron_depth", "options": {
        "drop_layers": 1, "keep_first_last": False, "train": TRAIN, "data": DATA}})
    result = run_experiment(config)
    assert {r["model"] for r in result["rows"]} == {"base", "depth-1"}
    unit = next(u for u in result["export"]["units"] if u["category"] == "compression")
    report = unit["data"]["report"]
    assert report["summary"]["train_steps"] == 2 and report["summary"]["train_tokens"] == 2 * 2 * 32
    assert report["summary"]["parameter_ratio"] < 1
    assert report["extra"]["training"]["data"]["config"]["source"] == "c4" and len(report["extra"]["training"]["history"]) == 2
    folder = unit["data"]["checkpoint"]
    assert AutoConfig.from_pretrained(folder).num_hidden_layers == 1
    assert result["compression"]["depth-1"]["wall_seconds"] > 0

    again = run_experiment(load_config(tmp_path / "c.yaml"))  # nothing is trained twice
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


CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|> {% endif %}")


def test_the_three_stages_run_in_order_and_each_reports_its_cost(mirror):
    """Teacher correction (on a copy: the run's base is untouched), depth pruning, distillation from
    cached top-k teacher logits, then SFT on GSM8K train conversations: each stage's steps and tokens
    are in the report and their sum is the method's training cost."""
    import copy

    from tiny_models import tiny_llama, tiny_tokenizer

    from unicomp.compress.apply import build_student
    from unicomp.compress.registry import make_method
    from unicomp.data.calibration import build_calibration

    teacher = tiny_llama()
    before = copy.deepcopy(teacher.state_dict())
    tokenizer = copy.deepcopy(tiny_tokenizer())
    tokenizer.chat_template = CHAT_TEMPLATE
    calibration = build_calibration({"source": "c4", "n_samples": 2, "seq_len": 32}, tokenizer, data_dir=mirror)
    method = make_method("minitron_depth", {
        "drop_layers": 1, "keep_first_last": False, "data": DATA,
        "teacher_correction": {"steps": 2, "micro_batch_size": 2, "autocast": "off"},
        "train": {**TRAIN, "teacher_topk": 16},
        "sft": {"data": {"n_samples": 4, "seq_len": 96}, "train": TRAIN}})  # cross-entropy by default
    assert method.total_steps() == 6
    student, report = build_student(teacher, tokenizer, method, calibration, data_dir=mirror)
    stages = report.extra["stages"]
    assert list(stages) == ["teacher_correction", "distill", "sft"]
    assert [s["steps"] for s in stages.values()] == [2, 2, 2]
    assert stages["sft"]["data"]["provenance"]["dataset_id"] == "openai/gsm8k"
    assert stages["sft"]["data"]["provenance"]["split"] == "train"
    assert report.summary["train_steps"] == 6 and report.summary["train_tokens"] == 2 * 2 * 32 * 2 + 2 * 2 * 96
    assert student.config.num_hidden_layers == 1
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_stage_configs_that_cannot_work_are_refused():
    from unicomp.compress.registry import make_method
    from unicomp.errors import UnicompError

    for bad, problem in (({"teacher_correction": {"steps": 2, "losses": [{"kind": "forward_kl"}]}}, "on the data alone"),
                         ({"sft": {"train": {"steps": 2, "losses": [{"kind": "jsd"}]}}}, "on the data alone"),
                         ({"train": {"steps": 2, "teacher_topk": 8, "losses": [{"kind": "reverse_kl"}]}}, "cached top-k")):
        with pytest.raises(UnicompError, match=problem):
            make_method("minitron_depth", {"drop_layers": 1, **bad})


def test_a_low_rank_clone_is_trained_materialised_and_evaluated_in_a_run(tiny_model, tmp_path, mirror):
    result = run_experiment(_config(tiny_model, tmp_path, {"name": "lrc-32", "method": "lrc", "options": {
        "hidden_size": 32, "data": DATA,
        "train": {**TRAIN, "losses": [{"kind": "forward_kl"}, {"kind": "activation_mse"}]}}}))
    assert {r["model"] for r in result["rows"]} == {"base", "lrc-32"}
    unit = next(u for u in result["export"]["units"] if u["category"] == "compression")
    report = unit["data"]["report"]
    assert set(report["extra"]["training"]["history"][0]["parts"]) == {"forward_kl", "activation_mse"}
    config = AutoConfig.from_pretrained(unit["data"]["checkpoint"])
    assert config.hidden_size == 32 and not config.tie_word_embeddings
