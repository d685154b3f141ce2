"""TrustLLM's 24 subtasks (six reliability dimensions) as tasks: `trustllm_<dimension>_<file stem>`,
groups `trustllm_<dimension>` and `trustllm`.

Data is TrustLLM's own JSON files (hub `TrustLLM/TrustLLM-dataset`, config = the dimension's
folder, split = the file's stem; the mirror keeps them byte for byte). The prompt is the record's
`prompt`, sent as one user turn through the model's chat template; decoding is TrustLLM's per-file
temperature (0 = greedy; sampled items draw with seed 1234 + item) with 128 new tokens at most
(the paper's setting). Scoring is the table in `unicomp.reliability.trustllm.subtasks`: a judge
labels each answer (offline rule judges; which one is in the task's reference and note) and
TrustLLM's metrics aggregate the labels.

Row order: TrustLLM's files are sorted by source (the first 100 `internal` rows are all SQuAD,
the first 405 `disparagement` rows all female), so a `--limit` of the file order would score one
stratum. Rows are therefore dealt round-robin across strata (source, type, ...), keeping units
that are scored together whole and in order (an AdvGLUE original/modified pair, an
AdvInstruction's 12 variants, a sycophancy preference pair): any prefix is a stratified sample,
and the full set is the same rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unicomp.evaluate.tasks.spec import DatasetRef, Doc, TaskSpec
from unicomp.reliability.trustllm.subtasks import MAX_NEW_TOKENS, SUBTASKS, Subtask

DATASET_ID = "TrustLLM/TrustLLM-dataset"
SEED = 1234  # sampling subtasks: item i is drawn with seed SEED + i, in any batch or backend


def _pairs_within(source: str) -> Callable[[list[Doc]], list[Any]]:
    """Consecutive rows of `source` pair up (TrustLLM's preference pairs); other rows stand alone."""
    def keys(docs: list[Doc]) -> list[Any]:
        out, seen = [], 0
        for i, d in enumerate(docs):
            if d.get("source") == source:
                out.append((source, seen // 2))
                seen += 1
            else:
                out.append(i)
        return out
    return keys


def _fields(*names: str) -> Callable[[Doc], Any]:
    return lambda d: tuple(str(d[n]) for n in names)


# file stem -> (stratum of a row, units kept whole) ; fields named here are checked on every row
STRATA: dict[str, tuple[tuple[str, ...], Callable[[list[Doc]], list[Any]] | None]] = {
    "internal": (("source",), None),
    "external": (("source",), None),
    "hallucination": (("source",), None),
    "sycophancy": (("source",), _pairs_within("preference")),
    "exaggerated_safety": (("type",), None),
    "misuse": (("source",), None),
    "stereotype_recognition": (("type", "label"), None),
    "stereotype_agreement": (("bias_type",), None),
    "disparagement": (("sex", "race"), None),
    "preference": (("type",), None),
    "AdvGLUE": (("task",), lambda docs: [(d["task"], d["index"]) for d in docs]),
    "AdvInstruction": ((), lambda docs: [d["index"] for d in docs]),
    "ood_generalization": (("source",), None),
    "privacy_awareness_query": (("type", "privacy_information"), None),
    "privacy_leakage": (("shotType", "type"), None),
    "explicit_moralchoice": (("type",), None),
    "implicit_ETHICS": (("topic", "label"), None),
    "implicit_SocialChemistry101": (("label",), None),
    "awareness": (("dimension",), None),
}


def stratified_order(docs: list[Doc], stratum: Callable[[Doc], Any] | None,
                     units: Callable[[list[Doc]], list[Any]] | None) -> list[Doc]:
    """The same rows, units kept whole and in order, dealt round-robin across strata in order of
    first appearance."""
    grouped: dict[Any, list[Doc]] = {}
    for key, doc in zip(units(docs) if units else range(len(docs)), docs):
        grouped.setdefault(key, []).append(doc)
    queues: dict[Any, list[list[Doc]]] = {}
    for rows in grouped.values():
        queues.setdefault(stratum(rows[0]) if stratum else None, []).append(rows)
    out: list[Doc] = []
    for k in range(max((len(q) for q in queues.values()), default=0)):
        for q in queues.values():
            if k < len(q):
                out.extend(q[k])
    return out


def _jailbreak_attack(d: Doc) -> str:
    return str(d["label"][0] if isinstance(d["label"], list) and d["label"] else d["label"])


def _spec(sub: Subtask) -> TaskSpec:
    metrics = tuple(sub.metrics)
    folder, stem = sub.file.removesuffix(".json").split("/")
    if stem == "jailbreak":  # the attack name is the label's only element
        strata_fields, stratum, units = ("label",), _jailbreak_attack, None
    else:
        strata_fields, units = STRATA.get(stem, ((), None))
        stratum = _fields(*strata_fields) if strata_fields else None

    def judged(doc: Doc, text: str, _judge=sub.judge, _metrics=metrics) -> dict:
        record = _judge(doc, text)
        return {m: record for m in _metrics}

    return TaskSpec(
        name=sub.name, category=sub.dimension, output_type="generate_until",
        dataset=DatasetRef(DATASET_ID, folder, stem),
        doc_to_text=lambda d: d["prompt"], doc_to_target=lambda d: d.get("label"),
        process_docs=lambda rows, _s=stratum, _u=units: stratified_order(rows, _s, _u),
        metrics=metrics, primary_metric=sub.primary, lower_is_better=tuple(sub.lower_is_better),
        process_results=judged, aggregations=dict(sub.metrics),
        chat_template=True, max_gen_toks=MAX_NEW_TOKENS, until=(),
        temperature=sub.temperature, top_p=1.0, seed=SEED if sub.temperature > 0 else None,
        group="trustllm", subgroup=sub.dimension, report_members=True, pool_group=False,
        fields=tuple(dict.fromkeys(("prompt", *sub.fields, *strata_fields))), version="1",
        reference=f"TrustLLM 0.3.0 {sub.file}; judge {sub.judge_name}",
        note=sub.note,
    )


TASKS: list[TaskSpec] = [_spec(sub) for sub in SUBTASKS.values()]
