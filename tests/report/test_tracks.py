"""The performance-reliability view: track means over categories, the gap, and the flag."""

from __future__ import annotations

import pytest

from unicomp.report.tracks import decoupling, track_of


def _row(model, category, pct):
    return {"model": model, "category": category, "mean_retained_pct": pct}


def test_a_variant_that_keeps_performance_but_loses_reliability_is_flagged():
    rows = [_row("wanda", "knowledge", 98.0), _row("wanda", "reasoning", 94.0),  # performance 96
            _row("wanda", "safety", 80.0), _row("wanda", "truthfulness", 90.0), _row("wanda", "ethics", None),  # 85
            _row("gptq", "knowledge", 99.0), _row("gptq", "safety", 97.0),
            _row("gptq", "language_modelling", 10.0)]  # in neither track: ignored
    view = {d["model"]: d for d in decoupling(rows, margin_pct=5.0)}
    assert view["wanda"]["performance_retained_pct"] == pytest.approx(96.0)
    assert view["wanda"]["reliability_retained_pct"] == pytest.approx(85.0)
    assert view["wanda"]["reliability_dimensions"] == 2  # ethics had no ratio
    assert view["wanda"]["gap_pct"] == pytest.approx(11.0) and view["wanda"]["flagged"]
    assert view["gptq"]["gap_pct"] == pytest.approx(2.0) and not view["gptq"]["flagged"]
    # a stricter margin flags it too
    assert {d["model"]: d["flagged"] for d in decoupling(rows, margin_pct=1.0)}["gptq"]


def test_a_variant_with_one_track_only_has_no_gap():
    (only,) = decoupling([_row("v", "knowledge", 90.0)])
    assert only["reliability_retained_pct"] is None and only["gap_pct"] is None and not only["flagged"]


def test_tracks_are_the_papers_thirteen_metrics_minus_efficiency():
    assert [track_of(c) for c in ("knowledge", "multilingual", "privacy", "bias")] == ["performance", "performance",
                                                                                     "reliability", None]
