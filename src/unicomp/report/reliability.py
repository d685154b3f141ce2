"""The six TrustLLM dimension scores of every model in a run, and their retention.

A dimension's score is `reliability.trustllm.subtasks.dimension_score`: the mean over its subtasks
of the primary metric put on a 0..1 "higher = more reliable" scale (docs/metrics.md). Retention
is variant / base x 100, as for every other score; no ratio where the base scores 0.
"""

from __future__ import annotations

from typing import Any

from unicomp.reliability.trustllm.subtasks import DIMENSIONS, SUBTASKS, dimension_score


def dimension_rows(base: dict[str, dict[str, Any]], variants: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """`base` and each variant: pooled task -> entry with `scores` (see report.retention.pooled_units)."""
    def scores(entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
        return {task: e["scores"] for task, e in entries.items() if task in SUBTASKS}

    base_scores = scores(base)
    if not base_scores:
        return []
    rows = []
    for model, entries in {"base": base, **variants}.items():
        mine = scores(entries)
        for dim in DIMENSIONS:
            value, reference = dimension_score(dim, mine), dimension_score(dim, base_scores)
            if value is None and reference is None:
                continue
            subtasks = sum(1 for t in mine if SUBTASKS[t].dimension == dim)
            retained = 100.0 * value / reference if value is not None and reference else None
            rows.append({"model": model, "dimension": dim, "score": value, "retained_pct": retained,
                         "subtasks": subtasks})
    return rows
