"""truthfulqa_mc1 against lm-eval's own task YAML, rendered with Jinja on the mirror's rows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from unicomp.data.resolver import load_rows
from unicomp.evaluate.tasks import get_task

lm_eval = pytest.importorskip("lm_eval")
jinja2 = pytest.importorskip("jinja2")


def test_prompts_choices_and_gold_equal_lm_eval(mirror):
    task_yaml = Path(lm_eval.__file__).parent / "tasks" / "truthfulqa" / "truthfulqa_mc1.yaml"
    ref = yaml.safe_load(task_yaml.read_text())
    text, choices = jinja2.Template(ref["doc_to_text"]), jinja2.Template(ref["doc_to_choice"])
    spec = get_task("truthfulqa_mc1")
    assert (spec.dataset.id, spec.dataset.config, spec.dataset.split) == (
        ref["dataset_path"], ref["dataset_name"], ref["validation_split"])
    rows = load_rows(spec.dataset.id, spec.dataset.config, spec.dataset.split).rows
    assert len(rows) == 817
    for row in rows:
        assert spec.doc_to_text(row) == text.render(**row)
        assert spec.doc_to_choice(row) == ast.literal_eval(choices.render(**row))
        assert spec.doc_to_target(row) == ref["doc_to_target"] == row["mc1_targets"]["labels"].index(1)
    assert spec.metrics == tuple(m["metric"] for m in ref["metric_list"]) and spec.category == "truthfulness"
