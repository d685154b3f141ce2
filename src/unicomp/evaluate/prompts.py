"""A document becomes a prompt: few-shot exemplars chosen, then rendered as text or chat messages.

The rules are lm-eval 0.4.13's `Task.fewshot_context` (its `build_qa_turn` / `Message` logic),
so prompts are equal character for character where lm-eval has the task:

* text: description, then per exemplar `question + target_delimiter + answer + fewshot_delimiter`,
  then the question;
* chat: a system message (system prompt, then description), per exemplar a user and an
  assistant turn (or everything in one user message when `fewshot_as_multiturn` is off), then
  the question as the last user turn; the engine renders them with the model's chat template.

Exemplars come from the task's fixed list or, per document, from its `fewshot_split`
(`first_n`, or lm-eval's default random sampler: ONE `random.Random(seed)` drawing
`sample(pool, n)` for each document in document order, so document i's exemplars depend on the
draws before it, exactly as in lm-eval).
"""

from __future__ import annotations

import random
from typing import Any

from unicomp.evaluate.tasks.spec import Doc, TaskSpec

Messages = list[dict[str, str]]


def _maybe_delimit(prefix: str | None, suffix: str | None, delimiter: str) -> str:
    """lm-eval's join: add the delimiter only if neither side has whitespace at the boundary."""
    if not prefix:
        return suffix or ""
    if not suffix:
        return prefix
    return prefix + suffix if prefix[-1].isspace() or suffix[0].isspace() else prefix + delimiter + suffix


def select_fewshot(spec: TaskSpec, docs: list[Doc], pool: list[Doc] | None, n: int) -> list[list[Doc]]:
    """The exemplars of each document, in the order the prompt shows them."""
    if n <= 0:
        return [[] for _ in docs]
    if spec.select_shots is not None:  # a task that follows another tool's rules (lighteval_protocol)
        return spec.select_shots(docs, pool, n)
    if spec.fewshot_sampler == "fixed":
        return [list(spec.fewshot_examples[:n]) for _ in docs]
    pool = list(pool or [])
    same_split = spec.fewshot_split == spec.dataset.split
    if spec.fewshot_sampler == "first_n":
        return [[x for x in pool if not (same_split and x == d)][:n] for d in docs]
    rnd = random.Random(spec.fewshot_seed)
    chosen = []
    for d in docs:
        if same_split:
            picked = [x for x in rnd.sample(pool, n + 1) if x != d][:n]
            if len(picked) < n:
                picked = rnd.sample([x for x in pool if x != d], n)
        else:
            picked = rnd.sample(pool, n)
        chosen.append(picked)
    return chosen


def _answer(spec: TaskSpec, doc: Doc) -> str:
    target = (spec.doc_to_fewshot_target or spec.doc_to_target)(doc)
    if isinstance(target, int) and spec.doc_to_choice is not None:
        target = spec.doc_to_choice(doc)[target]
    if isinstance(target, list):
        target = target[0]
    return str(target)


def _turns(spec: TaskSpec, doc: Doc, shots: list[Doc]) -> list[tuple[str, str, str]]:
    """(role, content, text delimiter) turns: lm-eval's Message list."""
    turns = []
    system = _maybe_delimit(spec.system_prompt, spec.description, spec.fewshot_delimiter)
    if system:
        turns.append(("system", system, ""))
    for shot in shots:
        turns.append(("user", spec.doc_to_text(shot), spec.target_delimiter))
        turns.append(("assistant", _answer(spec, shot), spec.fewshot_delimiter))
    turns.append(("user", spec.doc_to_text(doc) if doc else "", ""))
    return turns


def text_prefix(spec: TaskSpec, shots: list[Doc]) -> str:
    """Everything before the question in text form (description and exemplars): multiple-choice
    contexts are this prefix plus the question."""
    turns = _turns(spec, {}, shots)[:-1] if shots else []
    if not shots:
        system = _maybe_delimit(spec.system_prompt, spec.description, spec.fewshot_delimiter)
        return system
    return "".join(content + delim for _, content, delim in turns)


def build_context(spec: TaskSpec, doc: Doc, shots: list[Doc]) -> str | Messages:
    """The prompt of one document: a string, or chat messages when the task uses a chat template."""
    if spec.render_prompt is not None:
        return spec.render_prompt(doc, shots)
    turns = _turns(spec, doc, shots)
    if not spec.chat_template:
        return "".join(content + delim for _, content, delim in turns)
    if spec.fewshot_as_multiturn:
        return [{"role": role, "content": content} for role, content, _ in turns]
    system = [t for t in turns if t[0] == "system"]
    rest = [t for t in turns if t[0] != "system"]
    merged = "".join(content + delim for _, content, delim in rest[:-1]) + rest[-1][1]
    return [{"role": "system", "content": system[0][1]}] * bool(system) + [{"role": "user", "content": merged}]


def prompt_text(context: str | Messages) -> str:
    """A stable text form of a context, for hashing and display."""
    if isinstance(context, str):
        return context
    return "\x1e".join(f"{m['role']}\x1f{m['content']}" for m in context)


def contexts(spec: TaskSpec, docs: list[Doc], pool: list[Doc] | None, n: int) -> list[Any]:
    return [build_context(spec, d, shots) for d, shots in zip(docs, select_fewshot(spec, docs, pool, n))]
