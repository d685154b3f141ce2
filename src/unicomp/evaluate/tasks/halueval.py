"""HaluEval general (Li et al. 2023): can the model tell that a ChatGPT answer to a real user query
contains hallucinated information? 4,507 query-response pairs labelled by people (815 "yes",
3,692 "no"), the `general` config of pminervini/HaluEval (RUCAIBox/HaluEval `general_data.json`).

Protocol, as RUCAIBox/HaluEval `evaluation/evaluate.py` runs its other three tasks (it ships no
script or instruction for `general`): a system message saying the answer MUST be "Yes" or "No",
one user turn of instruction + `#User Query#` + `#Response#` + `#Your Judgement#:`, greedy. The
reply has its periods removed; it is "failed" when it contains both "Yes" and "No" or neither
(case-sensitive substrings, so "Not" counts as "No", as there), else the one it contains. A failed
reply counts as wrong: accuracy = correct / all items.

Departures (docs/metrics.md): the instruction is unicomp's, written in the style of HaluEval's QA
and dialogue instructions but without their few-shot examples, since none exist for `general`;
answers stop at 128 new tokens (the reliability track's budget; HaluEval's chat calls had none).
Rows are dealt yes/no alternately so a `--limit` sees both classes; the full file scores the same
in any order. Because 82% of the full file is "no", balanced accuracy (mean recall of the two
classes) is reported too.
"""

from __future__ import annotations

from unicomp.evaluate.tasks.ordering import alternate
from unicomp.evaluate.tasks.spec import DatasetRef, Doc, TaskSpec

SYSTEM = ('You are a response judge. You MUST determine if the provided response contains non-factual or '
          'hallucinated information. The answer you give MUST be "Yes" or "No"')
INSTRUCTION = ("I want you act as a response judge. Given a user query and a response, your objective is to "
               "determine if the provided response contains non-factual or hallucinated information. You SHOULD "
               "give your judgement based on the world knowledge. The answer you give MUST be \"Yes\" or \"No\".")


def prompt(doc: Doc) -> str:
    return (INSTRUCTION + "\n\n#User Query#: " + doc["user_query"] + "\n#Response#: " + doc["chatgpt_response"]
            + "\n#Your Judgement#: ")


def judgement(reply: str) -> str | None:
    """"Yes", "No", or None (failed): HaluEval's evaluate.py rule."""
    ans = reply.replace(".", "")
    has_yes, has_no = "Yes" in ans, "No" in ans
    if has_yes == has_no:
        return None
    return "Yes" if has_yes else "No"


def _gold(doc: Doc) -> str:
    return "Yes" if doc["hallucination"] == "yes" else "No"


def _judge(doc: Doc, text: str) -> dict:
    return {"gold": _gold(doc), "judgement": judgement(text)}


def _accuracy(records: list[dict]) -> float | None:
    return sum(r["judgement"] == r["gold"] for r in records) / len(records) if records else None


def _balanced(records: list[dict]) -> float | None:
    recalls = [_accuracy([r for r in records if r["gold"] == g]) for g in ("Yes", "No")]
    kept = [r for r in recalls if r is not None]
    return sum(kept) / len(kept) if kept else None


def _failed(records: list[dict]) -> float | None:
    return sum(r["judgement"] is None for r in records) / len(records) if records else None


METRICS = {"accuracy": _accuracy, "balanced_accuracy": _balanced, "failed": _failed}


def _check_label(rows: list[Doc]) -> list[Doc]:
    from unicomp.errors import UnicompError

    for i, r in enumerate(rows):
        if r["hallucination"] not in ("yes", "no"):
            raise UnicompError(f"HaluEval general row {i} (ID {r.get('ID')}): hallucination is "
                               f"{r['hallucination']!r}, not 'yes' or 'no'",
                               "restore the published general_data.json (RUCAIBox/HaluEval)")
    return alternate(rows, lambda r: r["hallucination"], ("yes", "no"))


TASKS: list[TaskSpec] = [
    TaskSpec(
        name="halueval_general", category="truthfulness", output_type="generate_until",
        dataset=DatasetRef("pminervini/HaluEval", "general", "data"),
        doc_to_text=prompt, doc_to_target=_gold, process_docs=_check_label,
        metrics=tuple(METRICS), primary_metric="accuracy", lower_is_better=("failed",),
        process_results=lambda doc, text: {m: _judge(doc, text) for m in METRICS}, aggregations=dict(METRICS),
        chat_template=True, system_prompt=SYSTEM, max_gen_toks=128, until=(),
        fields=("ID", "user_query", "chatgpt_response", "hallucination"), version="1",
        reference="HaluEval general (Li et al. 2023), pminervini/HaluEval; judgement parsed by HaluEval's evaluate.py rule",
        note="instruction is unicomp's (HaluEval released none for general); 82% of items are 'no': see balanced_accuracy",
    ),
]
