"""Answer extraction from generated text, as lm-eval's `regex` filter does it.

`findall`, pick the match `group_select` (negative counts from the end), from a tuple of groups
the first non-empty one, strip it; no match gives the fallback. Tasks name a pattern instead of
writing a function, so the pattern can be compared with lm-eval's YAML line by line.
"""

from __future__ import annotations

import re
from collections.abc import Callable

INVALID = "[invalid]"


def regex_extractor(pattern: str, group_select: int = 0, fallback: str = INVALID) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def extract(text: str) -> str:
        matches = compiled.findall(text if isinstance(text, str) else "")
        if not matches:
            return fallback
        match = matches[group_select]
        if isinstance(match, tuple):
            match = next((m for m in match if m), fallback)
        return match.strip()

    extract.__doc__ = f"lm-eval regex filter: {pattern!r}, group {group_select}"
    return extract
