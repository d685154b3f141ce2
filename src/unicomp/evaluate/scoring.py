"""Turn model answers into per-item metrics and aggregate them with standard errors.

Definitions follow lm-eval 0.4.13: `acc` is the argmax of the log-likelihoods, `acc_norm`
the argmax of log-likelihood divided by the choice's length in characters (first index wins
ties, like `np.argmax`); standard errors of means use the sample standard deviation (n - 1).
Perplexities are `exp(-sum loglik / sum units)` over the whole set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def argmax(values: Sequence[float]) -> int:
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def multiple_choice_metrics(loglikelihoods: Sequence[float], choices: Sequence[str], gold: int,
                            metrics: Sequence[str]) -> tuple[dict[str, float], int]:
    """Per-item metrics and the predicted index (by `acc`)."""
    pred = argmax(loglikelihoods)
    out = {}
    if "acc" in metrics:
        out["acc"] = float(pred == gold)
    if "acc_norm" in metrics:
        normed = [ll / float(len(c)) for ll, c in zip(loglikelihoods, choices)]
        out["acc_norm"] = float(argmax(normed) == gold)
    return out, pred


def mean_and_stderr(values: Sequence[float]) -> tuple[float, float | None]:
    n = len(values)
    if n == 0:
        return float("nan"), None
    mean = sum(values) / n
    if n < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def perplexity(total_loglikelihood: float, units: int) -> float:
    return math.exp(-total_loglikelihood / units)


def bits_per_unit(total_loglikelihood: float, units: int) -> float:
    return -total_loglikelihood / units / math.log(2)
