"""truthfulqa_mc1 and truthfulqa_mc2 against lm-eval's own task YAMLs, rendered with Jinja on the mirror's
rows, and mc2's per-item score against lm-eval's own `process_results_mc2`."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import yaml

from scripted_lm import unit_hash
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


# --- truthfulqa_mc2 -------------------------------------------------------------------------------

def _lm_eval_yaml(name: str) -> dict:
    """lm-eval's task YAML with its `!function` tags kept as text and its `include` merged in."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    folder = Path(lm_eval.__file__).parent / "tasks" / "truthfulqa"
    own = yaml.load((folder / f"{name}.yaml").read_text(), Loader=Loader)
    base = _lm_eval_yaml(own.pop("include").removesuffix(".yaml")) if "include" in own else {}
    return {**base, **own}


def _lm_eval_mc2():
    from lm_eval.tasks.truthfulqa.utils import process_results_mc2

    return process_results_mc2


@pytest.fixture(scope="module")
def mc2_rows(mirror):
    spec = get_task("truthfulqa_mc2")
    return load_rows(spec.dataset.id, spec.dataset.config, spec.dataset.split).rows


def test_mc2_prompts_choices_and_scoring_are_lm_eval_s(mc2_rows):
    ref = _lm_eval_yaml("truthfulqa_mc2")
    assert ref["task"] == "truthfulqa_mc2" and ref["process_results"] == "utils.process_results_mc2"
    text, choices = jinja2.Template(ref["doc_to_text"]), jinja2.Template(ref["doc_to_choice"])
    spec = get_task("truthfulqa_mc2")
    assert (spec.dataset.id, spec.dataset.config, spec.dataset.split) == (
        ref["dataset_path"], ref["dataset_name"], ref["validation_split"])
    assert len(mc2_rows) == 817 and spec.num_fewshot == ref["num_fewshot"] == 0
    assert spec.doc_to_text(mc2_rows[0]) == get_task("truthfulqa_mc1").doc_to_text(mc2_rows[0])  # the same preamble
    for row in mc2_rows:
        assert spec.doc_to_text(row) == text.render(**row)
        assert spec.doc_to_choice(row) == ast.literal_eval(choices.render(**row))
        assert spec.doc_to_target(row) == ref["doc_to_target"]
    assert sum(sum(r["mc2_targets"]["labels"]) > 1 for r in mc2_rows) > 700  # several true answers: not mc1
    assert spec.metrics == tuple(m["metric"] for m in ref["metric_list"]) and spec.category == "truthfulness"
    assert not spec.calibrated  # its own process_results: no calibration metrics


def test_mc2_per_item_score_equals_lm_eval_process_results_mc2(mc2_rows):
    theirs = _lm_eval_mc2()
    spec = get_task("truthfulqa_mc2")
    doc = {"mc2_targets": {"choices": ["a", "b", "c"], "labels": [1, 1, 0]}}
    by_hand = spec.process_results(doc, [math.log(0.5), math.log(0.3), math.log(0.2)])["acc"]
    assert by_hand == pytest.approx(0.8, abs=1e-15)
    values = []
    for i, row in enumerate(mc2_rows):
        scale = (1.0, 40.0, 600.0)[i % 3]  # close calls, confident, and log-likelihoods near exp's underflow
        lls = [-scale * unit_hash(str(i), c) - 0.01 * len(c) for c in spec.doc_to_choice(row)]
        ours = spec.process_results(row, lls)["acc"]
        assert ours == pytest.approx(float(theirs(row, [(ll, False) for ll in lls])["acc"]), abs=1e-12), i
        values.append(ours)
    assert min(values) < 0.01 and max(values) > 0.99 and 0.2 < sum(values) / len(values) < 0.8


def test_mc2_tiny_model_run_scores_each_item_as_lm_eval(mc2_rows):
    from tiny_models import tiny_llama, tiny_tokenizer
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.evaluate.runner import evaluate_task, load_task_docs

    spec = get_task("truthfulqa_mc2")
    docs, resolved = load_task_docs(spec, 3)
    result = evaluate_task(LanguageModel(tiny_llama(), tiny_tokenizer(), batch_size=8), spec, docs, resolved, limit=3)
    assert result.n_items == 3 and result.category == "truthfulness" and set(result.scores) == {"acc"}
    theirs = _lm_eval_mc2()
    for doc, rec in zip(docs, result.records, strict=True):
        assert len(rec.loglikelihoods) == len(doc["mc2_targets"]["choices"])
        expected = theirs(doc, list(zip(rec.loglikelihoods, rec.is_greedy, strict=True)))["acc"]
        assert rec.metrics["acc"] == pytest.approx(float(expected), abs=1e-12)
        assert 0.0 <= rec.metrics["acc"] <= 1.0
    assert len({round(r.metrics["acc"], 6) for r in result.records}) == 3  # a random model, different answers
    assert result.scores["acc"] == pytest.approx(sum(r.metrics["acc"] for r in result.records) / 3, abs=1e-15)
