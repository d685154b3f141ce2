"""The paper's 13 metrics per variant, from a run report: 4 performance retentions, 6 reliability
dimension retentions, 3 efficiency sub-scores. The UniComp paper does not publish its exact
efficiency formulas; ours (docs/metrics.md) are ratios to the base so that 100 means "as the
base" on every axis and higher is better, which is what the radar and the Pareto view need.

- performance (knowledge, reasoning, instruction_following, multilingual): the category's mean
  retention (report.retention).
- reliability (truthfulness ... ethics): the TrustLLM dimension score's retention (report.reliability).
- runtime acceleration: 100 x the geometric mean of the variant's prefill and decode speed-ups
  over the measured batch sizes, each the variant's faster dtype against the base's faster dtype
  (report.efficiency).
- footprint: 100 x base bytes / variant bytes of the decoder linears as they run (the smallest
  over the dtypes profiled), so 4x smaller weights score 400.
- compute cost: 100 x the cheapest compression's wall time / this one's (the base costs
  nothing and has no score); device-hours on the machine that ran it are reported beside it.
A metric the run did not measure is None, never 0.
"""

from __future__ import annotations

import math
from typing import Any

from unicomp.report.tracks import PERFORMANCE, RELIABILITY

EFFICIENCY = ("runtime_acceleration", "footprint", "compute_cost")
METRICS13: tuple[str, ...] = PERFORMANCE + RELIABILITY + EFFICIENCY


def _geomean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def scores13(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per variant: the 13 metrics (None where not measured) and what they came from."""
    models = [m for m in dict.fromkeys(r["model"] for r in report.get("rows", [])) if m != "base"]
    cats = {(c["model"], c["category"]): c["mean_retained_pct"] for c in report.get("categories", [])}
    dims = {(d["model"], d["dimension"]): d["retained_pct"] for d in report.get("dimensions", [])}
    best: dict[tuple[str, int, str], float] = {}  # (model, batch, phase) -> best speed-up over its dtypes
    for r in report.get("runtime", []):
        if "skipped" in r:
            continue
        for phase in ("prefill_speedup", "decode_speedup"):
            if r.get(phase) is not None:
                key = (r["model"], r["batch"], phase)
                best[key] = max(best.get(key, 0.0), r[phase])
    speed: dict[str, list[float]] = {}
    for (model, _, _), value in best.items():
        speed.setdefault(model, []).append(value)
    sizes = {m: f["decoder_linear_bytes"] for m, f in (report.get("footprint") or {}).items() if f}
    seconds = {m: c["wall_seconds"] for m, c in (report.get("compression") or {}).items() if c.get("wall_seconds")}
    cheapest = min(seconds.values()) if seconds else None
    rows = []
    for model in models:
        row: dict[str, Any] = {"model": model}
        for c in PERFORMANCE:
            row[c] = cats.get((model, c))
        for d in RELIABILITY:
            row[d] = dims.get((model, d))
        g = _geomean(speed.get(model, []))
        row["runtime_acceleration"] = None if g is None else 100.0 * g
        row["footprint"] = 100.0 * sizes["base"] / sizes[model] if "base" in sizes and model in sizes else None
        row["compute_cost"] = 100.0 * cheapest / seconds[model] if cheapest and model in seconds else None
        row["compression_device_hours"] = seconds[model] / 3600 if model in seconds else None
        row["compression_device"] = (report.get("compression") or {}).get(model, {}).get("device")
        rows.append(row)
    return rows


def pareto_front(points: list[tuple[str, float, float]]) -> list[str]:
    """Labels of the points no other point beats on both axes (higher is better on both)."""
    front = []
    for label, x, y in points:
        if not any(x2 >= x and y2 >= y and (x2 > x or y2 > y) for _, x2, y2 in points):
            front.append(label)
    return front
