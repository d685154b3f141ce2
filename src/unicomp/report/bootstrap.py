"""Paired bootstrap intervals for retention, category means and reliability dimensions.

Every model of a run is scored on the same items, so uncertainty is resampled pairwise: one
resample draws item indices with replacement per task and applies the same indices to the base
and to every variant. Each resample re-aggregates every task exactly as the evaluation did (the
mean, or the task's own aggregation: TrustLLM's RtA, macro-F1, Pearson ...), and then everything
downstream (retention, category means, dimension scores, differences between them) is computed
from the resampled scores, so an interval accounts for the pairing and for every step.
Intervals are percentile intervals (2.5th and 97.5th of the resampled statistic).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Scores = dict[str, dict[str, dict[str, float]]]  # model -> task -> metric -> value


@dataclass
class TaskItems:
    """One task's per-item metric values per model, aligned on the items every model answered."""

    spec: Any  # TaskSpec
    category: str
    values: dict[str, dict[str, list[Any]]]  # model -> metric -> per-item values (aligned)

    @property
    def n(self) -> int:
        first = next(iter(self.values.values()))
        return len(next(iter(first.values()))) if first else 0


def align(spec: Any, category: str, records: dict[str, list[dict]]) -> TaskItems | None:
    """Per-item values of every metric of `spec`, on the items all models share (None if none)."""
    ids = None
    for recs in records.values():
        mine = {r["item_id"] for r in recs}
        ids = mine if ids is None else ids & mine
    if not ids:
        return None
    order = [r["item_id"] for r in records["base"] if r["item_id"] in ids]
    values: dict[str, dict[str, list[Any]]] = {}
    for model, recs in records.items():
        by_id = {r["item_id"]: r for r in recs}
        metrics = set.intersection(*(set(by_id[i]["metrics"]) for i in order))
        values[model] = {m: [by_id[i]["metrics"][m] for i in order] for m in metrics}
    return TaskItems(spec, category, values)


def aggregate(spec: Any, metric: str, values: list[Any]) -> float | None:
    """The task's score from per-item values, as the evaluation aggregated them."""
    custom = (spec.aggregations or {}).get(metric)
    if custom is not None:
        return custom(values)
    numbers = [v for v in values if v is not None]
    return float(np.mean(numbers)) if numbers else None


def point_scores(tasks: dict[str, TaskItems]) -> Scores:
    return _scores(tasks, {name: np.arange(t.n) for name, t in tasks.items()})


def _scores(tasks: dict[str, TaskItems], picks: dict[str, np.ndarray]) -> Scores:
    out: Scores = {}
    for name, t in tasks.items():
        idx = picks[name]
        for model, metrics in t.values.items():
            row = out.setdefault(model, {}).setdefault(name, {})
            for metric, vals in metrics.items():
                if metric not in _wanted(name, t.spec):
                    continue
                arr = vals if isinstance(vals, np.ndarray) else None
                if arr is not None:
                    row[metric] = float(arr[idx].mean())
                else:
                    row[metric] = aggregate(t.spec, metric, [vals[i] for i in idx])
    return out


def _wanted(task: str, spec: Any) -> set[str]:
    """The metrics a statistic reads: the ranked one, and a TrustLLM subtask's primary (its dimension score)."""
    from unicomp.reliability.trustllm.subtasks import SUBTASKS

    sub = SUBTASKS.get(task)
    return {spec.ranked_by} | ({sub.primary} if sub is not None else set())


def bootstrap(tasks: dict[str, TaskItems], statistic: Callable[[Scores], dict[str, float | None]],
              resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Point value and 95% percentile interval of every entry `statistic` returns."""
    _vectorise(tasks)
    rng = np.random.default_rng(seed)
    point = statistic(point_scores(tasks))
    draws: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(resamples):
        picks = {name: rng.integers(0, t.n, t.n) for name, t in tasks.items()}
        value = statistic(_scores(tasks, picks))
        for k in draws:
            v = value.get(k)
            if v is not None and np.isfinite(v):
                draws[k].append(v)
    out = {}
    for k, p in point.items():
        d = draws[k]
        enough = len(d) >= 0.9 * resamples
        out[k] = {"value": p, "low": float(np.percentile(d, 2.5)) if enough else None,
                  "high": float(np.percentile(d, 97.5)) if enough else None, "resamples": len(d)}
    return out


def _vectorise(tasks: dict[str, TaskItems]) -> None:
    """Mean-aggregated numeric metrics as arrays (fast resampling); the rest stay lists."""
    for t in tasks.values():
        for metrics in t.values.values():
            for metric, vals in list(metrics.items()):
                if isinstance(vals, np.ndarray) or metric in (t.spec.aggregations or {}):
                    continue
                if all(isinstance(v, (int, float)) for v in vals):
                    metrics[metric] = np.asarray(vals, dtype=float)
