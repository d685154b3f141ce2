"""A small, CI-sized version of bench/generation_parity.py: on SmolLM2, lm-eval 0.4.13's HFLM and
our engine get the same prompts and generate the same greedy text, and both scorers agree."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

lm_eval = pytest.importorskip("lm_eval")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))


@pytest.mark.slow
@pytest.mark.parametrize("task", ["gsm8k", "ifeval"])
def test_prompts_generations_and_scores_equal_lm_eval(task, mirror, tmp_path):
    from generation_parity import compare

    from unicomp.models.loading import load_model

    loaded = load_model("smollm2-135m-instruct", dtype="float32")
    row = compare(task, 3, 24, loaded.model, loaded.tokenizer, 3, mirror, tmp_path)
    assert row["prompts_equal"] == "3/3"
    assert row["generations_equal"] == "3/3", row["first_difference"]
    assert row["scores_ours"] == row["scores_lm_eval_on_our_generations"]
