"""Group scores (MMLU and its four categories) from subject units, weighted by size as lm-eval does."""

from __future__ import annotations

import math
from typing import Any

from unicomp.evaluate.tasks import get_task


def group_scores(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Size-weighted `acc` per group and subgroup; stderr pooled from the subject variances."""
    buckets: dict[str, list[dict[str, Any]]] = {}
    for u in units:
        spec = get_task(u["task"])
        if spec.group:
            buckets.setdefault(spec.group, []).append(u)
            buckets.setdefault(f"{spec.group}_{spec.subgroup}", []).append(u)
    rows = []
    for name in sorted(buckets, key=lambda n: (n.count("_") > 0, n)):
        members = buckets[name]
        n = sum(u["n_items"] for u in members)
        acc = sum(u["scores"]["acc"] * u["n_items"] for u in members) / n
        # Pool per-subject variance of the mean back into the variance of the size-weighted mean.
        var = sum((u["n_items"] / n) ** 2 * (u["stderr"]["acc"] or 0.0) ** 2 for u in members)
        rows.append({"task": name, "category": "knowledge", "scores": {"acc": acc}, "stderr": {"acc": math.sqrt(var)},
                     "n_items": n, "subtasks": len(members)})
    return rows
