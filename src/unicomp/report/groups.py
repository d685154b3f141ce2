"""Group scores (MMLU and its four categories) from subject units, weighted by size as lm-eval does."""

from __future__ import annotations

import math
from typing import Any

from unicomp.evaluate.tasks import get_task


def group_scores(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Size-weighted score per group and subgroup (the members' ranking metric, e.g. MMLU's
    `acc`); stderr pooled from the member variances. Category and metric come from the specs."""
    buckets: dict[str, list[dict[str, Any]]] = {}
    specs: dict[str, Any] = {}
    for u in units:
        spec = get_task(u["task"])
        if spec.group and spec.pool_group:
            for name in (spec.group, f"{spec.group}_{spec.subgroup}") if spec.subgroup else (spec.group,):
                buckets.setdefault(name, []).append(u)
                specs[name] = spec
    rows = []
    for name in sorted(buckets, key=lambda n: (n.count("_") > 0, n)):
        members, spec = buckets[name], specs[name]
        metric = spec.ranked_by
        n = sum(u["n_items"] for u in members)
        score = sum(u["scores"][metric] * u["n_items"] for u in members) / n
        # Pool per-member variance of the mean back into the variance of the size-weighted mean.
        var = sum((u["n_items"] / n) ** 2 * (u["stderr"][metric] or 0.0) ** 2 for u in members)
        rows.append({"task": name, "category": spec.category, "scores": {metric: score}, "stderr": {metric: math.sqrt(var)},
                     "n_items": n, "subtasks": len(members)})
    return rows
