"""The LLM-judge step of a TrustLLM subtask: the stored generations of an evaluation, the items
TrustLLM sends to GPT-4 (its own prompts, filled its own way), the judge's replies parsed into
labels, and the subtask's metrics recomputed with those labels in place of the rule judge's.

A reply that parses to no label is never dropped or guessed: the step stops and names every
such item (and the first reply), nothing is stored, and the evaluation's generations, already
committed, are reused by the re-run. With `on_malformed: record` such an item is kept unjudged
instead (label None, as TrustLLM treats a failed GPT call) and listed in the result. Pairwise judgments (sycophancy preference) compare the two
answers of a pair; the label goes on the pair's second item, as the subtask's scorer expects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from unicomp.errors import UnicompError
from unicomp.reliability.judges.llm import LlmJudgeConfig, ask
from unicomp.reliability.trustllm.llm_judges import render
from unicomp.reliability.trustllm.subtasks import REFUSAL, SUBTASKS, Subtask

_SHOWN = 120


@dataclass
class JudgedItem:
    index: int
    prompt_key: str
    prompt: str
    reply: str | None = None
    label: Any = None


def has_classifier_judge(task: str) -> bool:
    """Subtasks where TrustLLM reports a refuse-to-answer rate from its Longformer classifier."""
    sub = SUBTASKS.get(task)
    return sub is not None and REFUSAL in sub.judge_name


def relabel_refusals(records: list[dict], texts: Sequence[str], classifier: Any,
                     progress: Callable[[int], None] | None = None) -> dict[int, str]:
    """Replace `refused` in rule-judged records (in place) by the classifier's verdict; its label per item."""
    judged = [i for i, r in enumerate(records) if "refused" in r]
    labels = classifier.labels([texts[i] for i in judged], progress) if judged else []
    for i, label in zip(judged, labels):
        records[i]["refused"] = label == classifier.config.refusal_label
    return dict(zip(judged, labels))


def has_llm_judge(task: str) -> bool:
    sub = SUBTASKS.get(task)
    return sub is not None and sub.llm_judge is not None


def judge_prompts(sub: Subtask, docs: Sequence[dict], texts: Sequence[str]) -> list[JudgedItem]:
    """The judge prompt of every item TrustLLM would send to its GPT judge."""
    lj = sub.llm_judge
    if lj is None:
        return []
    items = []
    if lj.pairwise:  # consecutive items the judge applies to pair up: (first, second) -> label on the second
        members = [i for i, (d, t) in enumerate(zip(docs, texts)) if lj.applies(d, t)]
        for k in range(len(members) // 2):
            first, second = members[2 * k], members[2 * k + 1]
            key = lj.applies(docs[second], texts[second])
            items.append(JudgedItem(second, key, render(key, {"res1": texts[second], "res2": texts[first]}, "")))
        return items
    for i, (d, t) in enumerate(zip(docs, texts)):
        key = lj.applies(d, t)
        if key:
            items.append(JudgedItem(i, key, render(key, d, t)))
    return items


def judge_items(task: str, docs: Sequence[dict], texts: Sequence[str], config: LlmJudgeConfig,
                progress: Callable[[int], None] | None = None) -> tuple[list[dict], list[JudgedItem]]:
    """Per-item records with the LLM judge's labels, and the judged items (prompt, reply, label)."""
    sub = SUBTASKS[task]
    lj = sub.llm_judge
    if lj is None:
        raise UnicompError(f"task {task} has no LLM judge (its judge is {sub.judge_name})",
                           "judge only the TrustLLM subtasks TrustLLM judges with GPT-4; see docs/judges.md")
    items = judge_prompts(sub, docs, texts)
    replies = ask(config, [it.prompt for it in items], progress) if items else []
    bad = []
    for it, reply in zip(items, replies):
        it.reply = reply
        it.label = lj.parse(reply)
        if it.label is None:
            bad.append(it)
    if bad and config.on_malformed == "stop":
        first = bad[0].reply or ""
        shown = first if len(first) <= _SHOWN else first[:_SHOWN] + "..."
        ids = ", ".join(str(b.index) for b in bad[:10]) + (", ..." if len(bad) > 10 else "")
        raise UnicompError(f"judge {config.name} at {config.base_url}: {len(bad)} of {len(items)} replies to {task} "
                           f"carry no label (items {ids}; item {bad[0].index} replied {shown!r})",
                           "check that the judge model follows the prompt (see docs/judges.md); the generations are "
                           "stored, a re-run judges again without generating")
    records = [sub.judge(d, t) for d, t in zip(docs, texts)]
    for it in items:
        records[it.index][lj.label] = it.label
        if it.label is None and lj.pairwise:  # never fall back to the rule judge's stances for this pair
            records[it.index]["pair_unjudged"] = True
    return records, items


def scores_of(task: str, records: list[dict]) -> dict[str, float]:
    sub = SUBTASKS[task]
    out = {}
    for name, fn in sub.metrics.items():
        value = fn(records)
        if value is not None:
            out[name] = float(value)
    return out
