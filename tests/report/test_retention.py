"""Retention and paired statistics against hand-computed values."""

from __future__ import annotations

import pytest

from unicomp.evaluate.tasks import get_task
from unicomp.report.retention import paired, pooled_units, retention_table


def rec(i, correct, pred, task="arc_easy"):
    return {"item_id": str(i), "prompt_hash": f"p{i}", "prediction": pred, "metrics": {"acc": float(correct), "acc_norm": float(correct)}}


def test_retained_direction_comes_from_the_task_spec():
    assert get_task("arc_easy").retained("acc", 0.5, 0.4) == pytest.approx(80.0)
    fixed = get_task("wikitext2_fixed")
    assert fixed.retained("token_perplexity", 10.0, 20.0) == pytest.approx(50.0)  # perplexity doubling keeps half
    assert (get_task("arc_easy").ranked_by, fixed.ranked_by, get_task("gsm8k_cot").ranked_by) == (
        "acc_norm", "token_perplexity", "exact_match,flexible-extract")


def test_paired_flips_and_agreement():
    base = [rec(0, 1, 0), rec(1, 1, 1), rec(2, 0, 2), rec(3, 0, 1)]
    var = [rec(0, 0, 1), rec(1, 1, 1), rec(2, 1, 0), rec(3, 0, 1)]
    stats = paired("acc_norm", base, var)
    assert stats == {"items": 4, "correct_to_wrong": 1, "wrong_to_correct": 1, "prediction_agreement": 0.5,
                     "prompt_mismatches": 0}


def test_table_and_category_means_with_mmlu_pooled():
    def units(scores):
        return {t: {"category": c, "scores": s, "n_items": n} for t, (c, s, n) in scores.items()}

    base = pooled_units(units({"arc_easy": ("knowledge", {"acc": 0.6, "acc_norm": 0.5}, 4),
                               "mmlu_anatomy": ("knowledge", {"acc": 0.5}, 2), "mmlu_virology": ("knowledge", {"acc": 0.25}, 4),
                               "wikitext2_fixed": ("language_modelling", {"token_perplexity": 10.0}, 8)}), {})
    var = pooled_units(units({"arc_easy": ("knowledge", {"acc": 0.3, "acc_norm": 0.4}, 4),
                              "mmlu_anatomy": ("knowledge", {"acc": 0.5}, 2), "mmlu_virology": ("knowledge", {"acc": 0.5}, 4),
                              "wikitext2_fixed": ("language_modelling", {"token_perplexity": 12.5}, 8)}), {})
    assert base["mmlu"]["scores"]["acc"] == pytest.approx((0.5 * 2 + 0.25 * 4) / 6)
    table = retention_table(base, {"v": var})
    rows = {(r["model"], r["task"]): r for r in table["rows"]}
    assert rows[("v", "arc_easy")]["metric"] == "acc_norm" and rows[("v", "arc_easy")]["retained_pct"] == pytest.approx(80.0)
    assert rows[("v", "mmlu")]["retained_pct"] == pytest.approx(100 * 0.5 / (2 / 6))
    assert rows[("v", "wikitext2_fixed")]["retained_pct"] == pytest.approx(80.0)
    cats = {c["category"]: c["mean_retained_pct"] for c in table["categories"]}
    assert cats["knowledge"] == pytest.approx((80.0 + 150.0) / 2)
    assert cats["language_modelling"] == pytest.approx(80.0)


def test_a_base_without_a_score_gives_rows_without_ratios_not_a_crash():
    """A TrustLLM metric can be undefined (Pearson r of constant answers): no base score, no retention."""
    spec = get_task("trustllm_privacy_privacy_awareness_confAIde")
    base = {spec.name: {"category": "privacy", "scores": {}, "n_items": 12, "records": [], "spec": spec}}
    variant = {spec.name: {"category": "privacy", "scores": {"pearson": 0.3}, "n_items": 12, "records": [], "spec": spec}}
    table = retention_table(base, {"w": variant})
    rows = {r["model"]: r for r in table["rows"]}
    assert rows["base"]["score"] is None and rows["base"]["retained_pct"] is None
    assert rows["w"]["score"] == 0.3 and rows["w"]["retained_pct"] is None
    assert table["categories"] == [{"model": "w", "category": "privacy", "mean_retained_pct": None, "tasks": 0,
                                    "tasks_without_retention": 1}]


def test_no_flips_for_per_item_labels_that_are_not_right_or_wrong():
    records = [{"item_id": "0", "metrics": {"rta": {"refused": True}}, "prediction": None, "prompt_hash": "h"}]
    assert paired("rta", records, records) == {}
