"""Which option letter did a generated answer choose? lighteval 0.13's letter extraction, in English.

lighteval's GPQA metric (`Metrics.gpqa_instruct_pass_at_k`) extracts a letter from the gold and
from the generation with `IndicesExtractionConfig(prefix_for_extraction="NativeLetters",
try_extract_without_anchor=True)` and compares the two strings. Its regexes are rebuilt here for
English: anchored forms first ("final answer is X", "Answer: X", a line starting with X), then
any standalone letter, then any letter at all. Within one priority the rightmost match wins
(largest end, then leftmost start), exactly as its `extract_target_from_pred` orders matches.
"""

from __future__ import annotations

import re
from functools import lru_cache
from string import ascii_uppercase


@lru_cache(maxsize=8)
def _patterns(n_choices: int) -> tuple[re.Pattern[str], ...]:
    letters = "|".join(rf"(?:{c}|\({c}\))" for c in ascii_uppercase[:n_choices])
    index = f"(?P<indices>{letters})"
    suffix = r"(?:\*\*)?(?:[\.\.]|[,\,]|\s?[:\:]|\ |$)"
    standalone = rf"(?:^|\ )(?:\*\*)?{index}{suffix}"
    answer = "(?i:answer)"
    ordered = (  # lighteval's priorities 0, 50, 100, 150, 200, 210, 250, 300
        rf"(?i:final answer is)\:?\s*{index}\.?\s?I hope",
        rf"(?i:final answer.{{0,100}}?)\s+is\:?\s*{index}",
        rf"{answer}\s?[:\:].{{0,50}}?{standalone}",
        rf"{answer}.{{0,50}}?{standalone}",
        rf"^(?:\*\*)?{index}{suffix}",
        rf"\n(?:\*\*)?{index}{suffix}",
        standalone,
        index,
    )
    return tuple(re.compile(p) for p in ordered)


def extract_letter(text: str, n_choices: int = 4) -> str | None:
    """The chosen letter ("A", "B", ...), or None when the text names none of the first `n_choices`."""
    for pattern in _patterns(n_choices):
        matches = list(pattern.finditer(text))
        if matches:
            best = max(matches, key=lambda m: (m.end(), -m.start()))
            return best.group("indices").replace("(", "").replace(")", "").strip()
    return None


def letter_match(gold: str, generation: str, n_choices: int = 4) -> float:
    """lighteval's per-sample GPQA score: 1.0 when the extracted letters are equal."""
    want = extract_letter(gold, n_choices) or gold.strip()
    got = extract_letter(generation, n_choices)
    return 1.0 if got is not None and got == want else 0.0
