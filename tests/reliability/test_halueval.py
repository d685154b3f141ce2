"""HaluEval general: the prompt as HaluEval's evaluate.py builds it (system turn + one user turn),
yes/no items interleaved, and accuracy recomputed by hand with HaluEval's own judgement rule
(periods removed; both or neither of "Yes"/"No" is a failure that counts as wrong)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from scripted_lm import ScriptedModel, unit_hash

from unicomp.errors import UnicompError
from unicomp.evaluate.runner import evaluate_task, load_task_docs
from unicomp.evaluate.tasks import get_task
from unicomp.evaluate.tasks.halueval import judgement

_REPLIES = ("Yes.", "No", "No, it does not.", "Yes. No.", "I cannot tell.", "Not really", "yes")


def _reference_judgement(reply: str) -> str:
    """evaluate.py's branch order, written out: 'failed!' first, then Yes, then No."""
    ans = reply.replace(".", "")
    if ("Yes" in ans and "No" in ans) or ("Yes" not in ans and "No" not in ans):
        return "failed!"
    return "Yes" if "Yes" in ans else "No"


def _answer(context) -> str:
    return _REPLIES[int(unit_hash(context[-1]["content"]) * len(_REPLIES))]


def test_judgement_rule_on_hand_made_replies():
    assert [judgement(r) for r in _REPLIES] == ["Yes", "No", "No", None, None, "No", None]
    assert judgement("Yes, the response contains a Notable error") is None  # "No" inside "Notable", as HaluEval


def test_accuracy_equals_haluevals_rule_by_hand(mirror):
    spec = get_task("halueval_general")
    docs, resolved = load_task_docs(spec, 30)
    assert [d["hallucination"] for d in docs[:6]] == ["yes", "no"] * 3
    model = ScriptedModel(generate=_answer)
    result = evaluate_task(model, spec, docs, resolved)
    (context, kwargs), *_ = model.generation_requests
    assert context[0]["role"] == "system" and 'MUST be "Yes" or "No"' in context[0]["content"]
    assert context[1]["content"].endswith("\n#Response#: " + docs[0]["chatgpt_response"] + "\n#Your Judgement#: ")
    assert "#User Query#: " + docs[0]["user_query"] in context[1]["content"]
    assert kwargs["max_gen_toks"] == 128

    raw = [json.loads(line) for line in (Path(os.environ["UNICOMP_DATA_DIR"]) / "pminervini/HaluEval/general/data.jsonl")
           .read_text().splitlines()]
    by_id = {r["ID"]: r for r in raw}
    correct = failed = 0
    recall: dict[str, list[bool]] = {"Yes": [], "No": []}
    for (ctx, _), doc in zip(model.generation_requests, docs):
        gold = "Yes" if by_id[doc["ID"]]["hallucination"] == "yes" else "No"
        judged = _reference_judgement(_answer(ctx))
        correct += judged == gold
        failed += judged == "failed!"
        recall[gold].append(judged == gold)
    assert 0 < correct < len(docs) and failed > 0
    assert result.scores["accuracy"] == pytest.approx(correct / len(docs))
    assert result.scores["failed"] == pytest.approx(failed / len(docs))
    assert result.scores["balanced_accuracy"] == pytest.approx(sum(sum(v) / len(v) for v in recall.values()) / 2)


def test_a_row_with_an_unknown_label_names_the_row(mirror):
    spec = get_task("halueval_general")
    with pytest.raises(UnicompError, match=r"row 1 \(ID 9\): hallucination is 'maybe'"):
        spec.process_docs([{"ID": "8", "hallucination": "no"}, {"ID": "9", "hallucination": "maybe"}])
