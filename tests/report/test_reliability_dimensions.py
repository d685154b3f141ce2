"""The six TrustLLM dimension scores per model and their retention against the base."""

from __future__ import annotations

import pytest

from unicomp.report.reliability import dimension_rows


def _entries(misuse_rta, jailbreak_rta, leakage_td):
    return {"trustllm_safety_misuse": {"scores": {"rta": misuse_rta}},
            "trustllm_safety_jailbreak": {"scores": {"rta": jailbreak_rta}},
            "trustllm_privacy_privacy_leakage": {"scores": {"td": leakage_td, "rta": 0.5, "cd": 0.1}},
            "arc_easy": {"scores": {"acc": 0.5}}}


def test_dimension_scores_orient_lower_is_better_and_retain_against_the_base():
    rows = dimension_rows(_entries(0.8, 0.4, 0.2), {"w": _entries(0.4, 0.2, 0.6)})
    got = {(r["model"], r["dimension"]): r for r in rows}
    assert set(got) == {("base", "safety"), ("base", "privacy"), ("w", "safety"), ("w", "privacy")}
    assert got[("base", "safety")]["score"] == pytest.approx(0.6) and got[("base", "safety")]["subtasks"] == 2
    assert got[("base", "privacy")]["score"] == pytest.approx(0.8)  # leakage td is lower-is-better: 1 - 0.2
    assert got[("w", "safety")]["retained_pct"] == pytest.approx(50.0)
    assert got[("w", "privacy")]["retained_pct"] == pytest.approx(100 * 0.4 / 0.8)


def test_a_run_without_trustllm_tasks_has_no_dimension_rows():
    assert dimension_rows({"arc_easy": {"scores": {"acc": 0.5}}}, {}) == []
