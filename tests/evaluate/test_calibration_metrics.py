"""Calibration metrics (ECE, Brier, NLL) of multiple-choice tasks.

Checked against (a) hand-made items whose values are worked out by hand, including confidences
exactly on bin edges; (b) a brute-force numpy version written differently (probabilities by
exp / sum, Guo et al.'s loop over bins with explicit interval tests); (c) scikit-learn's
`calibration_curve`, `brier_score_loss` and `log_loss` when installed (torchmetrics and netcal are
not dependencies). Then through the runner on real task documents, and against a store written
by an earlier release: calibration must not change the keys of stored units.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from scripted_lm import ScriptedModel, unit_hash
from unicomp.evaluate.calibration import (
    CALIBRATION_METRICS,
    bin_index,
    calibration_scores,
    expected_calibration_error,
    item_values,
    reliability_bins,
)
from unicomp.evaluate.runner import evaluate_task, load_task_docs, task_settings
from unicomp.evaluate.tasks import get_task
from unicomp.runs.store import unit_key

OLD_STORE = Path(__file__).parents[1] / "runs" / "data" / "store-485e510.sql"


def brute_force(lls_per_item: list[list[float]], golds: list[int]) -> dict[str, float]:
    conf, correct, brier, nll = [], [], [], []
    for lls, gold in zip(lls_per_item, golds, strict=True):
        z = np.asarray(lls, dtype=np.float64)
        p = np.exp(z - z.max())
        p = p / p.sum()
        k = int(np.argmax(z))  # first index on ties, like acc
        brier.append(float(((p - np.eye(len(z))[gold]) ** 2).sum()))
        nll.append(float(-np.log(p[gold])))
        conf.append(p[k])
        correct.append(float(k == gold))
    conf, correct = np.array(conf), np.array(correct)
    ece = 0.0
    for b in range(10):
        lo, hi = b / 10, (b + 1) / 10
        in_bin = ((conf > lo) | (b == 0)) & (conf <= hi)  # (lo, hi]; 0 joins the first bin
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return {"ece": ece, "brier": float(np.mean(brier)), "nll": float(np.mean(nll))}


def _random_items(n: int, seed: int, choices: int | None = None) -> tuple[list[list[float]], list[int]]:
    rng = np.random.default_rng(seed)
    lls, golds = [], []
    for _ in range(n):
        k = choices or int(rng.integers(2, 6))
        lls.append([float(v) for v in rng.normal(-20.0, rng.uniform(0.1, 6.0), size=k)])
        golds.append(int(rng.integers(0, k)))
    return lls, golds


# --- (a) by hand --------------------------------------------------------------------------------

def test_one_item_by_hand():
    conf, correct, brier, nll = item_values([math.log(0.7), math.log(0.2), math.log(0.1)], gold=1)
    assert (conf, correct) == (pytest.approx(0.7, abs=1e-15), 0.0)
    assert brier == pytest.approx(0.7**2 + 0.8**2 + 0.1**2, abs=1e-15)  # 1.14: the multi-class score
    assert nll == pytest.approx(-math.log(0.2), abs=1e-15)
    # a tie: probability 1/2 each, argmax = the first choice (acc's rule)
    assert item_values([-3.0, -3.0], gold=0) == [0.5, 1.0, 0.5, pytest.approx(math.log(2), abs=1e-15)]
    # certain and right; underflow-free where exp(ll) alone would give 0/0
    assert item_values([-2000.0, -1000.0], gold=1) == [1.0, 1.0, 0.0, 0.0]
    assert item_values([-2000.0, -1000.0], gold=0)[3] == pytest.approx(1000.0)


def test_bins_edges_go_to_the_lower_bin():
    assert [bin_index(c) for c in (0.0, 0.05, 0.1, 0.1000001, 0.3, 0.5, 0.95, 1.0)] == [
        0, 0, 0, 1, 2, 4, 9, 9]
    # 0.5 shares (0.4, 0.5] with 0.45, not (0.5, 0.6] with 0.55
    assert expected_calibration_error([[0.5, 1.0], [0.45, 0.0]]) == pytest.approx(abs(0.5 - 0.475))
    assert expected_calibration_error([[0.5, 1.0], [0.55, 0.0]]) == pytest.approx(0.5 * 0.5 + 0.5 * 0.55)
    # 1.0 shares the last bin with 0.92 (torchmetrics would give it a bin of its own: 0.54)
    assert expected_calibration_error([[1.0, 0.0], [0.92, 1.0]]) == pytest.approx(abs(0.5 - 0.96))


def test_ece_by_hand():
    items = [[0.95, 1.0], [0.95, 0.0], [0.55, 1.0], [0.55, 1.0], [0.35, 0.0]]
    # (0.9,1]: acc 0.5 vs 0.95; (0.5,0.6]: 1 vs 0.55; (0.3,0.4]: 0 vs 0.35
    assert expected_calibration_error(items) == pytest.approx(2 / 5 * 0.45 + 2 / 5 * 0.45 + 1 / 5 * 0.35)
    assert [n for n, _, _ in reliability_bins(items)] == [0, 0, 0, 1, 0, 2, 0, 0, 0, 2]
    assert expected_calibration_error([[0.75, 1.0], [0.75, 1.0], [0.75, 1.0], [0.75, 0.0]]) == 0.0  # calibrated
    assert expected_calibration_error([]) is None and calibration_scores([]) == ({}, {})


# --- (b) brute force ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_brute_force_numpy(seed):
    lls, golds = _random_items(300, seed)
    scores, stderr = calibration_scores([item_values(x, g) for x, g in zip(lls, golds)])
    expected = brute_force(lls, golds)
    assert set(scores) == set(CALIBRATION_METRICS)
    for metric in CALIBRATION_METRICS:
        assert scores[metric] == pytest.approx(expected[metric], abs=1e-12), metric
    assert stderr["ece"] is None and stderr["brier"] > 0 and stderr["nll"] > 0
    assert 0.02 < scores["ece"] < 0.5  # a non-trivial case: miscalibrated, several bins used


# --- (c) scikit-learn ---------------------------------------------------------------------------

def test_equals_scikit_learn_including_edge_confidences():
    calibration = pytest.importorskip("sklearn.calibration")
    metrics = pytest.importorskip("sklearn.metrics")
    lls, golds = _random_items(200, 7, choices=4)
    # confidences exactly on edges: 1/2 (two tied choices, the others negligible) and 1.0 (a huge gap)
    lls += [[-5.0, -5.0, -45.0, -45.0], [-5.0, -5.0, -45.0, -45.0], [-1.0, -45.0, -45.0, -45.0]]
    golds += [0, 1, 0]
    items = [item_values(x, g) for x, g in zip(lls, golds)]
    assert {0.5, 1.0} <= {i[0] for i in items}
    conf, correct = np.array([i[0] for i in items]), np.array([i[1] for i in items])
    prob_true, prob_pred = calibration.calibration_curve(correct, conf, n_bins=10, strategy="uniform")
    ours = [(acc, c) for n, acc, c in reliability_bins(items) if n]
    assert [a for a, _ in ours] == pytest.approx(list(prob_true), abs=1e-12)
    assert [c for _, c in ours] == pytest.approx(list(prob_pred), abs=1e-12)
    probs = np.array([[math.exp(v - max(x)) for v in x] for x in lls])
    probs /= probs.sum(axis=1, keepdims=True)
    scores, _ = calibration_scores(items)
    assert scores["brier"] == pytest.approx(metrics.brier_score_loss(golds, probs, labels=[0, 1, 2, 3]), abs=1e-12)
    assert scores["nll"] == pytest.approx(metrics.log_loss(golds, probs, labels=[0, 1, 2, 3]), abs=1e-9)


# --- through the runner, and the store ----------------------------------------------------------

def test_default_multiple_choice_tasks_report_calibration_lower_is_better_but_rank_as_before(mirror):
    spec = get_task("arc_easy")
    docs, resolved = load_task_docs(spec, 60)
    model = ScriptedModel(loglikelihood=lambda ctx, cont: -12.0 * unit_hash(ctx, cont) - 0.2 * len(cont))
    result = evaluate_task(model, spec, docs, resolved, limit=60)
    expected = brute_force([r.loglikelihoods for r in result.records], [r.target for r in result.records])
    for metric in CALIBRATION_METRICS:
        assert result.scores[metric] == pytest.approx(expected[metric], abs=1e-12), metric
    assert result.stderr["ece"] is None and result.stderr["brier"] > 0
    # per item: lm-eval's metrics unchanged, calibration as a small list beside them
    for r in result.records:
        assert set(r.metrics) == set(spec.metrics)
        assert r.extra["calibration"][1] == r.metrics["acc"] and len(r.extra["calibration"]) == 4
    json.dumps([r.to_dict() for r in result.records])
    assert spec.ranked_by == "acc_norm" and spec.reported_metrics == (*spec.metrics, *CALIBRATION_METRICS)
    assert spec.retained("brier", 0.2, 0.4) == pytest.approx(50.0)  # twice the Brier score: half as good
    assert spec.retained("ece", 0.1, 0.05) == pytest.approx(200.0)
    assert spec.retained("acc", 0.5, 0.25) == pytest.approx(50.0)
    # tasks with their own scoring are left alone
    for name in ("bbq", "truthfulqa_mc2"):
        assert not get_task(name).calibrated and "ece" not in get_task(name).reported_metrics
    assert get_task("truthfulqa_mc1").calibrated and get_task("winogrande").calibrated


def test_units_stored_by_an_earlier_release_keep_their_keys_and_can_be_calibrated():
    """The arc_easy unit of release 485e510's store: today's key for the same inputs is the stored
    key (calibration is not part of it), and its stored log-likelihoods and gold answers are all
    calibration needs."""
    con = sqlite3.connect(":memory:")
    con.executescript(OLD_STORE.read_text())
    key, fingerprint, settings, data = con.execute(
        "SELECT unit_key, model_fingerprint, settings_json, data_json FROM units WHERE task = 'arc_easy' LIMIT 1"
    ).fetchone()
    settings = json.loads(settings)
    today = task_settings(get_task("arc_easy"), settings["limit"], None, settings["max_length"],
                          settings["add_bos_token"])
    assert today == settings
    assert unit_key("evaluate", fingerprint, "arc_easy", today, json.loads(data)["revision"]) == key
    rows = con.execute("SELECT loglikelihoods_json, target_json FROM records WHERE unit_key = ?", (key,)).fetchall()
    lls, golds = [json.loads(a) for a, _ in rows], [json.loads(t) for _, t in rows]
    assert len(lls) == 4
    scores, _ = calibration_scores([item_values(x, g) for x, g in zip(lls, golds)])
    assert scores == pytest.approx(brute_force(lls, golds), abs=1e-12)
