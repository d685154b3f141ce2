"""Paired bootstrap intervals against textbook numbers, and the findings' verdict rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from unicomp.evaluate.tasks import get_task
from unicomp.report.bootstrap import align, bootstrap, point_scores
from unicomp.report.findings import statistics, verdict


def records(values: list[float], metric: str = "acc_norm") -> list[dict]:
    return [{"item_id": str(i), "metrics": {metric: v}} for i, v in enumerate(values)]


def test_paired_interval_of_an_accuracy_difference_matches_the_normal_approximation() -> None:
    rng = np.random.default_rng(1)
    n = 400
    base = rng.random(n) < 0.6
    variant = np.where(rng.random(n) < 0.8, base, rng.random(n) < 0.5)  # correlated with the base
    spec = get_task("arc_easy")
    tasks = {"arc_easy": align(spec, "knowledge", {"base": records(base.astype(float).tolist()),
                                                   "v": records(variant.astype(float).tolist())})}

    def diff(scores):
        return {"d": scores["v"]["arc_easy"]["acc_norm"] - scores["base"]["arc_easy"]["acc_norm"]}

    out = bootstrap(tasks, diff, resamples=4000, seed=0)["d"]
    d = variant.astype(float) - base.astype(float)
    se = d.std(ddof=1) / np.sqrt(n)  # textbook standard error of a paired mean difference
    assert out["value"] == pytest.approx(d.mean())
    assert (out["high"] - out["low"]) / 2 == pytest.approx(1.96 * se, rel=0.08)
    # Unpaired resampling would be wider: the pairing is what narrows it.
    unpaired = np.sqrt(base.var(ddof=1) / n + variant.var(ddof=1) / n)
    assert se < 0.8 * unpaired


def test_items_are_aligned_and_custom_aggregations_are_resampled_too() -> None:
    spec = replace(get_task("arc_easy"), aggregations={"acc_norm": max})
    tasks = {"t": align(spec, "knowledge", {"base": records([0.2, 0.9, 0.4]),
                                            "v": records([0.1, 0.3, 0.5, 0.7])[1:]})}  # v lacks item 0
    assert tasks["t"].n == 2  # only the items every model answered
    scores = point_scores(tasks)
    assert scores["base"]["t"]["acc_norm"] == 0.9 and scores["v"]["t"]["acc_norm"] == 0.5
    out = bootstrap(tasks, lambda s: {"m": s["v"]["t"]["acc_norm"]}, resamples=200, seed=0)["m"]
    assert out["low"] == 0.3 and out["high"] == 0.5  # max over a resample of {0.3, 0.5}


def test_a_mean_keeps_its_parts_across_resamples() -> None:
    """A category whose task has a base near 0 is undefined in the resamples where the base scores
    0, not a mean over fewer tasks; too many such resamples give no interval at all."""
    spec = get_task("arc_easy")
    tasks = {"arc_easy": align(spec, "knowledge", {"base": records([1.0] * 30 + [0.0] * 10),
                                                   "v": records([1.0] * 25 + [0.0] * 15)}),
             "piqa": align(get_task("piqa"), "knowledge", {"base": records([1.0] + [0.0] * 19),
                                                           "v": records([1.0] + [0.0] * 19)})}
    out = bootstrap(tasks, statistics(tasks, ["v"]), resamples=300, seed=0)["v|cat|knowledge"]
    assert out["value"] == pytest.approx((25 / 30 * 100 + 100) / 2)
    assert out["resamples"] < 0.9 * 300 and out["low"] is None  # base 0 on piqa in ~36% of draws


def test_retention_statistics_and_verdicts() -> None:
    spec = get_task("arc_easy")
    base = [1.0] * 50 + [0.0] * 50
    tasks = {"arc_easy": align(spec, "knowledge", {"base": records(base), "v": records([1.0] * 40 + [0.0] * 60)})}
    stat = statistics(tasks, ["v"])(point_scores(tasks))
    assert stat["v|cat|knowledge"] == pytest.approx(80.0) and stat["v|perf"] == pytest.approx(80.0)
    assert stat["v|rel"] is None and stat["v|gap"] is None  # no reliability tasks: no gap, not 0
    assert verdict({"value": 5, "low": 1, "high": 9}) == "reproduced"
    assert verdict({"value": -5, "low": -9, "high": -1}) == "contradicted"
    assert verdict({"value": 5, "low": 1, "high": 9}, direction=-1) == "contradicted"
    assert verdict({"value": 1, "low": -2, "high": 4}) == "inconclusive"
    assert verdict({"value": None}) == "not measurable"
