"""The paper's tracks as data, and the performance-reliability view: per variant, mean retention
of the performance categories next to the reliability dimensions, and a flag where performance is
retained better than reliability by more than a margin (the paper's decoupling finding: a
compressed model that keeps its benchmark scores can still lose truthfulness, safety or fairness).

Track means are unweighted means of the category / dimension retentions present in the run (each
category counts once, however many tasks it has); a category without retention (the base scores
0) is left out and counted.
"""

from __future__ import annotations

from typing import Any

# The 13-metric report's 4 performance categories and 6 reliability dimensions (TrustLLM's).
PERFORMANCE: tuple[str, ...] = ("knowledge", "reasoning", "instruction_following", "multilingual")
RELIABILITY: tuple[str, ...] = ("truthfulness", "safety", "fairness", "robustness", "privacy", "ethics")
DEFAULT_MARGIN_PCT = 5.0


def track_of(category: str) -> str | None:
    if category in PERFORMANCE:
        return "performance"
    if category in RELIABILITY:
        return "reliability"
    return None


def decoupling(category_rows: list[dict[str, Any]], margin_pct: float = DEFAULT_MARGIN_PCT) -> list[dict[str, Any]]:
    """One row per variant that has both tracks: their mean retentions, the gap, and the flag."""
    by_model: dict[str, dict[str, list[float | None]]] = {}
    for row in category_rows:
        track = track_of(row["category"])
        if track is not None:
            by_model.setdefault(row["model"], {}).setdefault(track, []).append(row["mean_retained_pct"])
    out = []
    for model, tracks in by_model.items():
        means = {}
        for track in ("performance", "reliability"):
            values = [v for v in tracks.get(track, []) if v is not None]
            means[track] = sum(values) / len(values) if values else None
        perf, rel = means["performance"], means["reliability"]
        gap = perf - rel if perf is not None and rel is not None else None
        out.append({"model": model, "performance_retained_pct": perf, "reliability_retained_pct": rel,
                    "performance_categories": len([v for v in tracks.get("performance", []) if v is not None]),
                    "reliability_dimensions": len([v for v in tracks.get("reliability", []) if v is not None]),
                    "gap_pct": gap, "margin_pct": margin_pct, "flagged": gap is not None and gap > margin_pct})
    return out
