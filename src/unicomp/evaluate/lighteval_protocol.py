"""lighteval 0.13's few-shot selection and prompt assembly, so a task can build its exact prompts.

What lighteval does (lighteval/tasks/lighteval_task.py `get_docs`, tasks/prompt_manager.py):

* Evaluation order: the evaluation documents are shuffled by `rnd = random.Random(42)`; with
  `--max-samples` the first ones of that order are evaluated.
* `random_sampling_from_train` (GSM8K): the pool is the train split in file order; the SAME `rnd`
  then draws `rnd.sample(pool, k)` for each document in the shuffled order. So a document's
  exemplars depend on its place in that order, which `random_sampling_exemplars` recomputes from
  the document's row index and the number of rows (recorded on each document by `tag_rows`).
* `balanced` (its default when a task names no selection: MATH-500, GPQA): one global
  `random.seed(0)`, labels (the gold answers) sorted, grouped by how many pool documents share
  them, each group shuffled, then k+1 documents taken cycling over the labels. Every document
  gets the first k of those. lighteval means to drop the document itself from its exemplars, but
  its comparison never matches (the evaluated copy's task name carries "|k"), so in 0.13 a
  document that is one of the exemplars sees itself, answer included. Reproduced, not repaired.
* Plain text: [system prompt], [instruction], then per exemplar `query + " " + gold.strip()`,
  then the query (instruction removed from its front), joined by blank lines.
* Chat: [system message], per exemplar a user turn (the query; the document's instruction glued
  in front of the first one) and an assistant turn (the gold, not stripped), then the query as
  the last user turn (the instruction glued in front when there are no exemplars).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import cycle

from unicomp.evaluate.tasks.spec import Doc

ROW = "_row"  # a document's row index in its split
ROWS = "_rows"  # the number of rows of that split
EVAL_ORDER_SEED = 42  # lighteval's Random(42) over the evaluation documents
BALANCED_SEED = 0  # lighteval's global random.seed(variance_seed=0) in balanced selection

Context = str | list[dict[str, str]]


def tag_rows(docs: list[Doc]) -> list[Doc]:
    """Each document with its row index and its split's size: what lighteval's order depends on."""
    return [{**d, ROW: i, ROWS: len(docs)} for i, d in enumerate(docs)]


@lru_cache(maxsize=16)
def _random_sampling(n_docs: int, pool_size: int, k: int, seed: int) -> tuple[tuple[int, ...], ...]:
    rnd = random.Random(seed)
    order = list(range(n_docs))
    rnd.shuffle(order)  # lighteval shuffles the Doc list; the permutation depends only on its length
    shots: list[tuple[int, ...]] = [()] * n_docs
    for row in order:
        shots[row] = tuple(rnd.sample(range(pool_size), k))  # sample() picks the same indices from any sequence
    return tuple(shots)


def random_sampling_exemplars(docs: list[Doc], pool: list[Doc], k: int, seed: int = EVAL_ORDER_SEED) -> list[list[Doc]]:
    """lighteval's `random_sampling_from_train` exemplars of each document (pool = train split)."""
    if k <= 0 or not docs:
        return [[] for _ in docs]
    table = _random_sampling(docs[0][ROWS], len(pool), k, seed)
    return [[pool[j] for j in table[d[ROW]]] for d in docs]


def balanced_indices(labels: list[str], k: int, seed: int = BALANCED_SEED) -> list[int]:
    """Pool indices lighteval's `balanced` selection takes (k + 1 of them, in prompt order)."""
    rnd = random.Random(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    by_count: dict[int, list[str]] = defaultdict(list)
    for label, members in sorted(by_label.items()):
        by_count[len(members)].append(label)
    order: list[str] = []
    for count in sorted(by_count, reverse=True):
        ties = by_count[count]
        rnd.shuffle(ties)
        order.extend(ties)
    chosen: list[int] = []
    wanted = min(len(labels), k + 1)
    labels_cycle = cycle(order)
    while wanted > 0:
        label = next(labels_cycle, None)
        if not label:
            break
        members = by_label[label]
        if not members:
            continue
        chosen.append(members.pop(rnd.randrange(len(members))))
        wanted -= 1
    return chosen


@dataclass(frozen=True)
class LightevalPrompt:
    """How one lighteval task turns a document into its Doc fields."""

    query: Callable[[Doc], str]  # Doc.query
    gold: Callable[[Doc], str]  # Doc.get_golds()[0]
    instruction: str | None = None  # Doc.instruction

    def _bare(self, doc: Doc) -> str:
        """PromptManager._extract_query: the query without the instruction in front."""
        query = self.query(doc)
        if self.instruction is not None and query.startswith(self.instruction):
            return query[len(self.instruction):].strip()
        return query

    def text(self, doc: Doc, shots: list[Doc], system_prompt: str | None = None) -> str:
        parts = [p for p in (system_prompt, self.instruction) if p is not None]
        parts += [self._bare(s) + " " + self.gold(s).strip() for s in shots]
        parts.append(self._bare(doc))
        return "\n\n".join(parts)

    def messages(self, doc: Doc, shots: list[Doc], system_prompt: str | None = None) -> list[dict[str, str]]:
        out = [{"role": "system", "content": system_prompt}] if system_prompt is not None else []
        lead = self.instruction or ""
        for i, shot in enumerate(shots):
            out.append({"role": "user", "content": (lead if i == 0 else "") + self._bare(shot)})
            out.append({"role": "assistant", "content": self.gold(shot)})
        out.append({"role": "user", "content": ("" if shots else lead) + self._bare(doc)})
        return out


def renderer(prompt: LightevalPrompt, chat: bool, system_prompt: str | None = None) -> Callable[[Doc, list[Doc]], Context]:
    if chat:
        return lambda doc, shots: prompt.messages(doc, shots, system_prompt)
    return lambda doc, shots: prompt.text(doc, shots, system_prompt)

