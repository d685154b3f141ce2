"""The one place the server talks to the in-process engine (`unicomp.evaluate.lm.LanguageModel`).

The server must answer exactly what `unicomp eval` would generate for the same prompt, so it
never tokenises, renders chat templates or samples on its own: it hands contexts (a prompt
string or a list of chat messages) and generation kwargs to the engine. Only the prompt length
is measured here, to refuse a prompt that does not fit before any generation starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Context = str | list[dict[str, str]]


@dataclass(frozen=True)
class Generation:
    """One finished generation as an OpenAI choice needs it."""

    text: str
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int


def context_window(lm: Any) -> int:
    return int(lm.max_length)


def has_chat_template(lm: Any) -> bool:
    return bool(getattr(lm.tokenizer, "chat_template", None))


def prompt_tokens(lm: Any, context: Context) -> int:
    """Tokens the engine will feed the model for `context` (chat: after its chat template)."""
    render = getattr(lm, "render", None)  # the engine's own prompt renderer, when it has one
    if callable(render):
        return len(lm.tok_encode(render(context)))
    if isinstance(context, str):
        return len(lm.tok_encode(context))
    text = lm.tokenizer.apply_chat_template(context, add_generation_prompt=True, tokenize=False)
    return len(lm.tok_encode(text))


def generate(lm: Any, requests: Sequence[tuple[Context, dict]]) -> list[Generation]:
    """Generate for every request; results in request order.

    Greedy requests go to the engine in one call (its greedy answers do not depend on the
    batch). A sampled request is decoded in a call of its own: the engine derives each row's
    random stream from the seed *and the row's position in the call*, so batching sampled
    requests would make a client's seeded answer depend on what else was in flight.
    """
    requests = list(requests)
    results: list[Generation | None] = [None] * len(requests)
    sampled = [i for i, (_, kw) in enumerate(requests) if float(kw.get("temperature") or 0.0) > 0]
    greedy = [i for i in range(len(requests)) if i not in set(sampled)]
    calls = ([greedy] if greedy else []) + [[i] for i in sampled]
    for call in calls:
        for i, generation in zip(call, _engine_call(lm, [requests[i] for i in call])):
            results[i] = generation
    return results  # type: ignore[return-value]


def _engine_call(lm: Any, requests: list[tuple[Context, dict]]) -> list[Generation]:
    rich = getattr(lm, "generate", None)
    if callable(rich):
        return [Generation(g.text, g.finish_reason, int(g.prompt_tokens), int(g.completion_tokens))
                for g in rich(requests)]
    texts = lm.generate_until(requests)
    out = []
    for (context, kwargs), text in zip(requests, texts):
        # An engine without `generate` reports text only: count its tokens and call it "length"
        # when it used the whole budget (a stop string can end at the budget too; rare).
        n = len(lm.tokenizer.encode(text, add_special_tokens=False))
        reason = "length" if n >= int(kwargs["max_gen_toks"]) else "stop"
        out.append(Generation(text, reason, prompt_tokens(lm, context), n))
    return out
