"""A scripted model: the same answers for the same requests, whichever harness asks.

Used to give unicomp's scorers and lm-eval's the SAME model outputs, so a difference in a score
can only come from prompts, extraction or aggregation. Answers are pure functions of the request
(a log-likelihood from a hash of context and continuation, a generation from a caller's function
of the prompt), and every request is logged so the two harnesses' prompts can be compared too.
It implements the engine interface `unicomp.evaluate.runner` uses, and lm-eval reaches it through
unicomp's real `UnicompLMEval` adapter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable


def unit_hash(*parts: str) -> float:
    """A reproducible number in [0, 1) from text."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class ScriptedModel:
    max_length = 4096
    add_bos_token = None
    tokenizer = None

    def __init__(self, generate: Callable[[str], str] | None = None,
                 loglikelihood: Callable[[str, str], float] | None = None) -> None:
        self._generate = generate
        self._loglikelihood = loglikelihood or (lambda ctx, cont: -8.0 * unit_hash(ctx, cont))
        self.generation_requests: list[tuple[str, dict]] = []
        self.loglikelihood_requests: list[tuple[str, str]] = []

    def loglikelihood(self, requests, progress=None) -> list[tuple[float, bool]]:
        out = []
        for context, continuation in requests:
            self.loglikelihood_requests.append((context, continuation))
            out.append((float(self._loglikelihood(context, continuation)), False))
        return out

    def generate_until(self, requests, progress=None) -> list[str]:
        """The scripted text, cut before the first stop string as a real engine cuts it."""
        out = []
        for context, kwargs in requests:
            self.generation_requests.append((context, dict(kwargs)))
            text = self._generate(context)
            for stop in kwargs.get("until") or []:
                text = text.split(stop)[0]
            out.append(text)
        return out
