"""Experiment configs: the shipped ones are valid; bad keys give one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from unicomp.config import load_config
from unicomp.errors import UnicompError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["quickstart.yaml", "calibration_study.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = load_config(ROOT / "configs" / name)
    assert cfg.variants and cfg.evaluation.tasks


def test_same_method_different_calibration_is_one_block():
    cfg = load_config(ROOT / "configs" / "calibration_study.yaml")
    by_name = {v.name: v for v in cfg.variants}
    assert cfg.calibration_for(by_name["wanda-50-c4"]).source == "c4"
    assert cfg.calibration_for(by_name["wanda-50-reasoning"]).source == "reasoning"
    assert by_name["wanda-50-c4"].options == by_name["wanda-50-reasoning"].options


@pytest.mark.parametrize("text, needle", [
    ("name: x\nmodel: m\nevaluation: {tasks: [arc_easy]}\nvariants: [{name: a, method: wanda, options: {sparsity: 1.5}}]\n",
     "strictly between 0 and 1"),
    ("name: x\nmodel: m\nevaluation: {tasks: [arc_esay]}\n", "did you mean arc_easy"),
    ("name: x\nmodel: m\nevaluation: {tasks: [arc_easy], limt: 5}\n", "evaluation.limt"),
    ("name: x\nmodel: m\nevaluation: {tasks: [arc_easy]}\nvariants: [{name: a, method: wandaa}]\n", "did you mean wanda"),
    ("name: x\nmodel: m\nevaluation: {tasks: [arc_easy]}\nvariants: [{name: a, method: wanda}, {name: a, method: magnitude}]\n",
     "used twice"),
    ("name: x\nmodel: m\nevaluation: {tasks: [arc_easy]}\nvariants: [{name: a, method: wanda, options: {pattern: '4:4'}}]\n",
     "0 < N < M"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_bad_configs(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UnicompError) as exc:
        load_config(path)
    assert needle in str(exc.value) and str(path) in str(exc.value) and "\n" not in str(exc.value)
