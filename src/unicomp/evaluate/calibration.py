"""Calibration of multiple-choice answers: expected calibration error, Brier score, NLL.

Why: a compressed model can keep its accuracy and still lose (or gain) confidence in its
answers; accuracy alone does not show it. All three are computed from the per-choice summed
log-likelihoods the engine already produces, so they cost no model work. Lower is better for all.

Definitions (docs/metrics.md, "Calibration"):
- probabilities p_k = softmax over the choices' summed log-likelihoods: the `acc` view, not
  `acc_norm`'s length-normalised one. Computed as exp(ll - max) / sum, and the NLL in log space
  (log-sum-exp), so nothing overflows or divides 0/0 and the NLL is finite whenever the
  log-likelihoods are.
- confidence = max_k p_k; correct = 1 when the argmax (first index on ties, the item's `acc`
  prediction) is the gold choice.
- ECE = sum_b (n_b / N) |acc_b - conf_b| over 10 equal-width bins (0, 0.1], (0.1, 0.2], ...,
  (0.9, 1.0] (Guo et al. 2017, "On Calibration of Modern Neural Networks", eq. 3): a confidence on
  an edge belongs to the lower bin (0.5 -> (0.4, 0.5]), 1.0 to the last bin, and 0 (impossible for a
  maximum probability, which is >= 1/K) to the first. This is sklearn's `calibration_curve(...,
  strategy="uniform")` binning; torchmetrics' MulticlassCalibrationError (>= 1.0, bucketize with
  right=True) puts edges in the upper bin and confidence 1.0 in a bin of its own, so it can differ
  when confidences sit exactly on an edge (ties between two choices give exactly 0.5). Empty bins
  contribute nothing.
- Brier = mean over items of sum_k (p_k - 1[k = gold])^2: the multi-class score of Brier (1950),
  range [0, 2] (not the one-vs-rest binary score on the confidence).
- NLL = mean over items of -log p_gold.

Per item the engine keeps a small JSON list [confidence, correct, brier, nll] (ItemRecord.extra
["calibration"]); the aggregations below turn those lists into corpus-level numbers.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from unicomp.evaluate.scoring import argmax, mean_and_stderr

CALIBRATION_METRICS = ("ece", "brier", "nll")
N_BINS = 10
# Upper edges of the first nine bins, written as k/10 (not accumulated) so 0.3 is the float 0.3.
_EDGES = tuple(k / N_BINS for k in range(1, N_BINS))

Item = Sequence[float]  # [confidence, correct, brier, nll]


def _shifted(loglikelihoods: Sequence[float]) -> tuple[list[float], float]:
    """exp(ll - max ll) per choice and their sum (>= 1): no overflow, no 0/0."""
    top = max(loglikelihoods)
    weights = [math.exp(ll - top) for ll in loglikelihoods]
    return weights, sum(weights)


def probabilities(loglikelihoods: Sequence[float]) -> list[float]:
    """Softmax of the choices' log-likelihoods (two tied choices: exactly 0.5 each)."""
    weights, total = _shifted(loglikelihoods)
    return [w / total for w in weights]


def item_values(loglikelihoods: Sequence[float], gold: int) -> list[float]:
    """[confidence, correct, brier, nll] of one item."""
    weights, total = _shifted(loglikelihoods)
    p = [w / total for w in weights]
    pred = argmax(loglikelihoods)
    brier = sum((pk - (1.0 if k == gold else 0.0)) ** 2 for k, pk in enumerate(p))
    nll = math.log(total) - (loglikelihoods[gold] - max(loglikelihoods))  # finite even where p_gold underflows
    return [p[pred], float(pred == gold), brier, nll]


def bin_index(confidence: float) -> int:
    """0..9 for (0, 0.1], ..., (0.9, 1.0]; an edge goes to the lower bin, 0 to the first."""
    return bisect.bisect_left(_EDGES, confidence)


def reliability_bins(items: Sequence[Item]) -> list[tuple[int, float, float]]:
    """(count, accuracy, mean confidence) per bin; (0, 0.0, 0.0) for an empty bin."""
    sums = [[0, 0.0, 0.0] for _ in range(N_BINS)]
    for confidence, correct, *_ in items:
        b = sums[bin_index(confidence)]
        b[0] += 1
        b[1] += correct
        b[2] += confidence
    return [(n, acc / n, conf / n) if n else (0, 0.0, 0.0) for n, acc, conf in sums]


def expected_calibration_error(items: Sequence[Item]) -> float | None:
    """None for no items: nothing to aggregate is no score, not a zero."""
    if not items:
        return None
    return sum(n / len(items) * abs(acc - conf) for n, acc, conf in reliability_bins(items) if n)


def brier_score(items: Sequence[Item]) -> float | None:
    return sum(i[2] for i in items) / len(items) if items else None


def negative_log_likelihood(items: Sequence[Item]) -> float | None:
    return sum(i[3] for i in items) / len(items) if items else None


AGGREGATIONS = {"ece": expected_calibration_error, "brier": brier_score, "nll": negative_log_likelihood}


def calibration_scores(items: Sequence[Item]) -> tuple[dict[str, float], dict[str, float | None]]:
    """Corpus-level scores and standard errors: Brier and NLL are means (sample standard error, as
    for acc); ECE is a binned statistic and has none. No items: no scores."""
    if not items:
        return {}, {}
    scores = {name: float(fn(items)) for name, fn in AGGREGATIONS.items()}
    stderr = {"ece": None, "brier": mean_and_stderr([i[2] for i in items])[1],
              "nll": mean_and_stderr([i[3] for i in items])[1]}
    return scores, stderr
