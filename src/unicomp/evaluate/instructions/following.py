"""Strict and loose instruction following, as IFEval's and IFBench's evaluation functions compute it.

Both benchmarks score a response the way Google's `evaluation_lib` does (lm-eval's
`ifeval/utils.py` and IFBench's `evaluation_lib.py` are copies of it): per instruction, build the
checker from the row's kwargs (and from the prompt if the checker asks for it) and check the
response. Strict checks the response as is; loose passes if any of eight variants passes (the
response, without its first and/or last line, each also without `*`). An empty (whitespace)
response follows nothing. The benchmarks differ only in which kwargs they drop before building
a checker: IFEval every falsy value, IFBench only None; that is the `keep` argument.

Two things differ from the upstream functions, neither changing a score they produce:

- a checker whose `check_following` raises (IFBench's, on degenerate text: `ratio:stop_words`
  on a response with no word, `ratio:overlap` on one shorter than a trigram) counts as not
  followed, as later IFBench releases decide; upstream the whole evaluation stops;
- checkers drawing random values for an argument they read as missing (IFEval's
  `keywords:letter_frequency` with letter '#' or '!', mirror keys 1122 and 1129; IFBench's
  `repeat:repeat_span` with `n_start: 0`, key 286) draw them from `random` seeded by the item and
  instruction, so a run is repeatable and a base model and its compressed variants are checked
  against the same draw (upstream draws anew on every run). The caller's `random` state is
  restored afterwards.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

logger = logging.getLogger(__name__)

Keep = Callable[[Any], bool]


def keep_truthy(value: Any) -> bool:
    """lm-eval's IFEval rule: `{k: v for k, v in kwargs.items() if v}`."""
    return bool(value)


def keep_not_none(value: Any) -> bool:
    """IFBench's rule: `{k: v for k, v in kwargs.items() if v is not None}`."""
    return value is not None


def response_variants(response: str) -> list[str]:
    """The eight responses loose mode tries, in the upstream order."""
    lines = response.split("\n")
    first = "\n".join(lines[1:]).strip()
    last = "\n".join(lines[:-1]).strip()
    both = "\n".join(lines[1:-1]).strip()
    return [response, response.replace("*", ""), first, last, both,
            first.replace("*", ""), last.replace("*", ""), both.replace("*", "")]


def _checker(registry: Mapping[str, type], instruction_id: str, kwargs: Mapping[str, Any], prompt: str,
             keep: Keep, seed: str):
    cls = registry[instruction_id]
    state = random.getstate()
    try:
        random.seed(seed)
        checker = cls(instruction_id)
        checker.build_description(**{k: v for k, v in kwargs.items() if keep(v)})
        args = checker.get_instruction_args()
        if args and "prompt" in args:
            checker.build_description(prompt=prompt)
    finally:
        random.setstate(state)
    return checker


def _follows(checker, text: str) -> bool:
    if not text.strip():
        return False
    try:
        return bool(checker.check_following(text))
    except Exception as exc:  # noqa: BLE001 - an upstream checker failing on odd text is "not followed"
        logger.debug("checker %s raised %r; counted as not followed", checker.id, exc)
        return False


def follow_instructions(registry: Mapping[str, type], instruction_ids: Sequence[str],
                        kwargs: Sequence[Mapping[str, Any]], prompt: str, response: str, *, keep: Keep,
                        item: str = "") -> tuple[list[bool], list[bool]]:
    """(strict, loose): per instruction, whether `response` follows it."""
    variants = response_variants(response)
    strict, loose = [], []
    for index, (instruction_id, kw) in enumerate(zip(instruction_ids, kwargs, strict=True)):
        # A checker per mode, as upstream builds them; the same seed gives both the same draws.
        build = partial(_checker, registry, instruction_id, kw or {}, prompt, keep, f"{item}/{index}")
        strict.append(_follows(build(), response))
        checker = build()
        loose.append(any(_follows(checker, text) for text in variants))
    return strict, loose


def item_metrics(strict: list[bool], loose: list[bool]) -> dict[str, float | list[float]]:
    """lm-eval's four per-item values: prompt level 1.0/0.0, instruction level one 1.0/0.0 each."""
    return {
        "prompt_level_strict_acc": float(all(strict)),
        "inst_level_strict_acc": [float(x) for x in strict],
        "prompt_level_loose_acc": float(all(loose)),
        "inst_level_loose_acc": [float(x) for x in loose],
    }
