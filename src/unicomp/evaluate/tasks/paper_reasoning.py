"""The paper's reasoning protocol: lighteval 0.13's gsm8k, math_500 and gpqa:diamond, rebuilt.

The UniComp paper ran GSM8K 4-shot, MATH-500 4-shot and GPQA-Diamond 5-shot with lighteval on
vLLM, instruction-tuned models, up to 4096 new tokens. These tasks build the prompts lighteval
0.13 builds for that run (`gsm8k|4`, `math_500|4`, `gpqa:diamond|5`) and score the same way:

* Chat template on. lighteval turns it on for any tokenizer that has one (the paper's instruct
  models) and then drops the task's stop sequences, so generation ends at end-of-sequence or at
  the token budget (`until` is empty here for that reason).
* gsm8k_paper: lighteval task `gsm8k` (version 0): "Question: {question}\\nAnswer:" turns, the
  exemplar answer is the full train solution (calculator notes and "#### N" kept); exemplars by
  `random_sampling_from_train` (see lighteval_protocol). Metric `extractive_match`: the gold's
  last number against the generation's number or LaTeX (\\boxed{} first), math-verify, 5 digits.
* math_500: lighteval task `math_500` (version 2): its "Solve the following problem..." template
  around each problem, exemplars are the full solutions prefixed "ANSWER: "; MATH-500 has only a
  test split, so lighteval draws the exemplars from it (`balanced`: test rows 87, 468, 141, 251
  for every document, row 87 included as its own exemplar). Metric `pass@k:k=1&n=1`.
  Note: the paper's summary speaks of "Question: ... Answer:" prompts with shots from train;
  that is GSM8K's format only. lighteval 0.13's math_500 has neither, and is what is rebuilt.
* gpqa_diamond: lighteval task `gpqa:diamond` (version 1): instruction, question and options
  A-D; the correct answer's position is `random.randint(0, 3)` per row from lighteval's
  pipeline seed (random.seed(1234)), first for the evaluated rows in file order, then again for
  the exemplar pool (the same split, formatted a second time); exemplars by `balanced` over the
  gold letters. Metric `gpqa_pass@k:k=1`: the letter extracted from the generation (see
  choice_letters) equals the gold letter. Idavidrein/gpqa is gated on the hub and not mirrored:
  without access the task fails naming the dataset and how to get access.
  The positions equal lighteval's when nothing else drew from Python's global `random` before
  gpqa:diamond in the same lighteval run (math_500's balanced selection, run first, reseeds it);
  ours are fixed by the recorded seed whatever runs with it.

`--limit N` scores the first N rows of the file; each gets the prompt lighteval builds for that
row (lighteval's `--max-samples N` instead takes the first N rows of its Random(42) order).

Generation length: the paper's 4096 new tokens (`PAPER_MAX_GEN_TOKS`, the tasks' `max_gen_toks`;
lighteval's own task defaults are 256 / 32768 / 32768, which the paper's `max_new_tokens`
replaced). CPU default: `CPU_MAX_GEN_TOKS` = 512 (`dataclasses.replace(spec, max_gen_toks=...)`).
Chat-template generation stops at end-of-sequence, so the cap only matters for answers that run
on; a cut answer usually has no final answer and scores 0, so a capped run reports its cap.
Every generation first loses its `<think>...</think>` spans (lighteval's default).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from string import ascii_uppercase

from unicomp.evaluate.choice_letters import letter_match
from unicomp.evaluate.lighteval_protocol import (
    BALANCED_SEED,
    EVAL_ORDER_SEED,
    ROW,
    ROWS,
    LightevalPrompt,
    balanced_indices,
    random_sampling_exemplars,
    renderer,
    tag_rows,
)
from unicomp.evaluate.math_equivalence import (
    EXPR_GOLD,
    MATH_PASS_AT_1,
    remove_reasoning_tags,
)
from unicomp.evaluate.tasks.spec import DatasetRef, Doc, TaskSpec

PAPER_MAX_GEN_TOKS = 4096
CPU_MAX_GEN_TOKS = 512
GPQA_CHOICE_SEED = 1234  # lighteval's pipeline seed: random.seed(1234) before tasks are formatted
REFERENCE = "lighteval 0.13.0 src/lighteval/tasks/tasks/{}.py; prompts: tasks/prompt_manager.py"

# --------------------------------------------------------------------------------------- GSM8K
GSM8K = LightevalPrompt(query=lambda d: f"Question: {d['question']}\nAnswer:", gold=lambda d: f" {d['answer']}")


def _gsm8k_shots(docs: list[Doc], pool: list[Doc] | None, k: int) -> list[list[Doc]]:
    return random_sampling_exemplars(docs, pool or [], k, EVAL_ORDER_SEED)


def _gsm8k_results(doc: Doc, generation: str) -> dict[str, float]:
    return {EXPR_GOLD.name: EXPR_GOLD.score(GSM8K.gold(doc), remove_reasoning_tags(generation))}


# ------------------------------------------------------------------------------------ MATH-500
MATH_QUERY_TEMPLATE = """
Solve the following problem. The final line of your response MUST be of the following format:
"ANSWER: $ANSWER" (without quotes) where $ANSWER is the final answer. Think step by step before answering.

{prompt}
""".strip()
MATH = LightevalPrompt(query=lambda d: MATH_QUERY_TEMPLATE.format(prompt=d["problem"]),
                       gold=lambda d: f"ANSWER: {d['solution']}")


def _balanced_shots(prompt: LightevalPrompt, docs: list[Doc], pool: list[Doc], k: int) -> list[list[Doc]]:
    chosen = balanced_indices([prompt.gold(p) for p in pool], k, BALANCED_SEED)
    shots = [pool[i] for i in chosen[:k]]
    return [list(shots) for _ in docs]


def _math_shots(docs: list[Doc], pool: list[Doc] | None, k: int) -> list[list[Doc]]:
    return _balanced_shots(MATH, docs, pool or [], k)


def _math_results(doc: Doc, generation: str) -> dict[str, float]:
    return {MATH_PASS_AT_1.name: MATH_PASS_AT_1.score(MATH.gold(doc), remove_reasoning_tags(generation))}


# ---------------------------------------------------------------------------------------- GPQA
GPQA_INSTRUCTION = ("Answer the following multiple choice question. The last line of your response should be of the "
                    "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by "
                    "step before answering.")
GOLD, POOL_GOLD = "_gold", "_pool_gold"


def gold_positions(n_rows: int, seed: int = GPQA_CHOICE_SEED) -> tuple[list[int], list[int]]:
    """The correct answer's position per row: when evaluated, and when used as an exemplar."""
    rnd = random.Random(seed)
    draws = [rnd.randint(0, 3) for _ in range(2 * n_rows)]
    return draws[:n_rows], draws[n_rows:]


def _gpqa_docs(rows: list[Doc]) -> list[Doc]:
    evaluated, pooled = gold_positions(len(rows))
    return [{**d, GOLD: g, POOL_GOLD: p} for d, g, p in zip(tag_rows(rows), evaluated, pooled)]


def gpqa_options(doc: Doc) -> list[str]:
    """The four options in prompt order: the incorrect ones in file order, the correct one inserted."""
    options = [doc["Incorrect Answer 1"], doc["Incorrect Answer 2"], doc["Incorrect Answer 3"]]
    options.insert(doc[GOLD], doc["Correct Answer"])
    return options


def _gpqa_query(doc: Doc) -> str:
    a, b, c, d = (o.strip() for o in gpqa_options(doc))
    return f"{GPQA_INSTRUCTION}\n\n{doc['Question'].strip()}\n\nA) {a}\nB) {b}\nC) {c}\nD) {d}"


GPQA = LightevalPrompt(query=_gpqa_query, gold=lambda d: ascii_uppercase[d[GOLD]], instruction=GPQA_INSTRUCTION)


def _gpqa_shots(docs: list[Doc], pool: list[Doc] | None, k: int) -> list[list[Doc]]:
    as_exemplars = [{**p, GOLD: p[POOL_GOLD]} for p in pool or []]
    return _balanced_shots(GPQA, docs, as_exemplars, k)


def _gpqa_results(doc: Doc, generation: str) -> dict[str, float]:
    return {"gpqa_pass@k:k=1": letter_match(GPQA.gold(doc), remove_reasoning_tags(generation))}


# --------------------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class _Protocol:
    """One paper task: its lighteval name, data, shots, and the functions that differ per task."""

    name: str
    lighteval: str
    prompt: LightevalPrompt
    dataset: DatasetRef
    fewshot_split: str
    k: int
    shots: Callable[[list[Doc], list[Doc] | None, int], list[list[Doc]]]
    results: Callable[[Doc, str], dict[str, float]]
    metric: str
    target: Callable[[Doc], str]
    fields: tuple[str, ...]
    process: Callable[[list[Doc]], list[Doc]]
    fewshot_seed: int


_PROTOCOLS = (
    _Protocol("gsm8k_paper", "gsm8k", GSM8K, DatasetRef("openai/gsm8k", "main", "test"), "train", 4,
              _gsm8k_shots, _gsm8k_results, EXPR_GOLD.name, lambda d: d["answer"].split("####")[-1].strip(),
              ("question", "answer"), tag_rows, EVAL_ORDER_SEED),
    _Protocol("math_500", "math_500", MATH, DatasetRef("HuggingFaceH4/MATH-500", None, "test"), "test", 4,
              _math_shots, _math_results, MATH_PASS_AT_1.name, lambda d: d["answer"],
              ("problem", "solution", "answer"), tag_rows, BALANCED_SEED),
    _Protocol("gpqa_diamond", "gpqa:diamond", GPQA, DatasetRef("Idavidrein/gpqa", "gpqa_diamond", "train", documented_rows=198), "train", 5,
              _gpqa_shots, _gpqa_results, "gpqa_pass@k:k=1", lambda d: ascii_uppercase[d[GOLD]],
              ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"),
              _gpqa_docs, BALANCED_SEED),
)

TASKS: list[TaskSpec] = [
    TaskSpec(
        name=p.name, category="reasoning", output_type="generate_until", dataset=p.dataset,
        doc_to_text=p.prompt.query, doc_to_target=p.target, doc_to_fewshot_target=p.prompt.gold,
        process_docs=p.process, fields=p.fields,
        fewshot_split=p.fewshot_split, fewshot_sampler="lighteval", fewshot_seed=p.fewshot_seed, num_fewshot=p.k,
        select_shots=p.shots, render_prompt=renderer(p.prompt, chat=True),
        chat_template=True, until=(), max_gen_toks=PAPER_MAX_GEN_TOKS,
        process_results=p.results, metrics=(p.metric,),
        version=f"lighteval-0.13/{p.lighteval}" + (f"/choice-seed-{GPQA_CHOICE_SEED}" if p.name == "gpqa_diamond" else ""),
        reference=REFERENCE.format(p.lighteval.split(":")[0]),
        note=f"paper protocol: lighteval {p.lighteval}|{p.k}, chat template, up to {PAPER_MAX_GEN_TOKS} new tokens",
    )
    for p in _PROTOCOLS
]

ROW_KEYS = (ROW, ROWS, GOLD, POOL_GOLD)  # bookkeeping keys the tasks add to each document
