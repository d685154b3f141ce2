"""Is a generated answer mathematically equal to the gold one? lighteval 0.13's math metrics on math-verify.

lighteval scores GSM8K and MATH-500 with its own copy of math-verify's extraction and comparison
code (`lighteval.metrics.utils.extractive_match_utils` / `math_comparison`). That copy equals
math-verify 0.5.2 (the release that pins lighteval 0.13's `latex2sympy2_extended==1.0.6`) except
for two English regex details, which are applied here so the extracted answers are the same:

* an answer anchor may have one space before its colon ("Answer : 5");
* a bare expression may end with a space and a colon.

Each scorer is a `MathMetric` holding what lighteval's `Metrics` entry holds (extraction targets
for gold and prediction, precision, fallback and extraction modes, timeout). lighteval sorts a
metric's targets latex before expression (ties at one priority keep that order), so do we.

math-verify guards parsing and comparison with SIGALRM, which Python allows only in the main
thread; elsewhere every parse would silently fail and score 0, so scoring off the main thread
is refused instead.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from math_verify import ExprExtractionConfig, LatexExtractionConfig, verify
from math_verify.parser import extract_target_from_pred, get_extraction_regexes

Target = ExprExtractionConfig | LatexExtractionConfig

# (math-verify's text, lighteval's English text) in the generated answer-extraction regexes.
_LIGHTEVAL_REGEX_EDITS: tuple[tuple[str, str], ...] = (
    (r"(?i:answer):", r"(?i:answer)\s?:"),
    (r"(?:\.|,|:|\s|\)|\$|$)", r"(?:\.|,|\s?:|\s|\)|\$|$)"),
)
_ORDER = {LatexExtractionConfig: 0, ExprExtractionConfig: 1}


def _lighteval_pattern(pattern: re.Pattern[str]) -> re.Pattern[str]:
    text = pattern.pattern
    for old, new in _LIGHTEVAL_REGEX_EDITS:
        text = text.replace(old, new)
    return re.compile(text, pattern.flags)


@lru_cache(maxsize=8)
def _regexes(targets: tuple[Target, ...]) -> list[tuple[list[tuple[re.Pattern[str], int]], Target]]:
    ordered = sorted(targets, key=lambda t: _ORDER[type(t)])
    original = get_extraction_regexes(ordered)
    text = "".join(p.pattern for patterns, _ in original for p, _ in patterns)
    needed = _LIGHTEVAL_REGEX_EDITS if any(isinstance(t, ExprExtractionConfig) for t in targets) else _LIGHTEVAL_REGEX_EDITS[:1]
    if not all(old in text for old, _ in needed):
        raise RuntimeError("math-verify's answer regexes are not the ones lighteval 0.13 edits; pin math-verify==0.5.2")
    return [([(_lighteval_pattern(p), prio) for p, prio in patterns], target) for patterns, target in original]


@dataclass(frozen=True)
class MathMetric:
    """One lighteval math metric: how gold and prediction are extracted, then compared."""

    name: str
    gold_targets: tuple[Target, ...]
    pred_targets: tuple[Target, ...]
    precision: int
    strip: bool = False  # lighteval's `strip_strings` (its pass@k metrics strip gold and prediction)
    fallback_mode: Literal["no_fallback", "first_match"] = "first_match"
    extraction_mode: Literal["first_match", "any_match"] = "any_match"
    timeout_seconds: int = 5

    def extract_gold(self, gold: str) -> list:
        return self._extract(gold, self.gold_targets)

    def extract_prediction(self, prediction: str) -> list:
        return self._extract(prediction, self.pred_targets)

    def _extract(self, text: str, targets: tuple[Target, ...]) -> list:
        _require_main_thread()
        if self.strip:
            text = text.strip()
        return extract_target_from_pred(text, _regexes(targets), timeout_seconds=self.timeout_seconds,
                                        fallback_mode=self.fallback_mode, extraction_mode=self.extraction_mode)

    def score(self, gold: str, prediction: str) -> float:
        """1.0 if the prediction's extracted answer equals the gold's, else 0.0 (lighteval's rule:
        a gold that yields nothing is compared as its raw text)."""
        golds = self.extract_gold(gold) or [gold.strip() if self.strip else gold]
        preds = self.extract_prediction(prediction)
        return 1.0 if verify(golds, preds, precision=self.precision, timeout_seconds=self.timeout_seconds) else 0.0


def _require_main_thread() -> None:
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("math equivalence runs math-verify, whose timeouts need the main thread; "
                           "score on the main thread")


# lighteval 0.13 `Metrics.expr_gold_metric` (gsm8k's metric, "extractive_match"): the gold is a
# plain number; the prediction may be a number or LaTeX, \boxed{} first.
EXPR_GOLD = MathMetric(
    name="extractive_match",
    gold_targets=(ExprExtractionConfig(),),
    pred_targets=(ExprExtractionConfig(), LatexExtractionConfig(boxed_match_priority=0)),
    precision=5,
)

# lighteval 0.13 `Metrics.pass_at_k_math` (math_500's metric) scoring one sample: both sides
# stripped, number or LaTeX (its LatexExtractionConfig default puts \boxed{} at priority 55).
MATH_PASS_AT_1 = MathMetric(
    name="pass@k:k=1&n=1",
    gold_targets=(ExprExtractionConfig(), LatexExtractionConfig(boxed_match_priority=55)),
    pred_targets=(ExprExtractionConfig(), LatexExtractionConfig(boxed_match_priority=55)),
    precision=6,
    strip=True,
)


def remove_reasoning_tags(text: str, tag_pairs: tuple[tuple[str, str], ...] = (("<think>", "</think>"),)) -> str:
    """lighteval's default post-processing of every generation: drop `<think>...</think>` spans."""
    result = text
    for start_tag, end_tag in tag_pairs:
        while start_tag in result and end_tag in result:
            start = result.find(start_tag)
            end = result.find(end_tag, start)
            if start == -1 or end == -1:
                break
            result = result[:start] + result[end + len(end_tag):]
    return result
