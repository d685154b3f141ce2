"""The LLM judge in runs: TrustLLM's judge prompts sent to a real model behind `unicomp serve`
(real HTTP, real generations), the labels stored per item with the judge named, and a judge
that replies garbage or refuses connections stops the run in one line while the generations
stay stored and are not generated again."""

from __future__ import annotations

import socket

import pytest

from unicomp.errors import UnicompError
from unicomp.reliability.judge_step import judge_prompts
from unicomp.reliability.trustllm.llm_judges import render
from unicomp.reliability.trustllm.subtasks import SUBTASKS
from unicomp.requests import EvalRequest
from unicomp.runs.evaluation import run_evaluation
from unicomp.runs.store import Store

TASK = "trustllm_truthfulness_internal"  # squad / hotpot / adversarial answers go to the judge, codah does not


@pytest.fixture(scope="module")
def judge_server():
    """SmolLM2-135M-Instruct (from its PyPI package) answering chat completions on loopback."""
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.models.loading import load_model
    from unicomp.serve import create_app
    from unicomp.serve.server import serve_in_thread

    loaded = load_model("smollm2-135m-instruct", dtype="float32")
    app = create_app(LanguageModel(loaded.model, loaded.tokenizer, batch_size=8), "smol-judge", max_tokens_limit=64)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def garbage_server():
    """A real HTTP server in the OpenAI format whose every answer carries no label."""
    from fastapi import FastAPI

    from unicomp.serve.server import serve_in_thread

    app = FastAPI()

    @app.post("/v1/chat/completions")
    def chat(body: dict) -> dict:
        return {"id": "x", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "banana"}}]}

    with serve_in_thread(app) as url:
        yield url


def _judge(url: str, model: str = "smol-judge", on_malformed: str = "stop") -> dict:
    return {"base_url": url, "model": model, "api_key_env": None, "concurrency": 2, "max_tokens": 16,
            "on_malformed": on_malformed}


def _request(tiny_model, store, judge=None) -> EvalRequest:
    return EvalRequest(model=str(tiny_model), tasks=[TASK, "trustllm_safety_misuse"], limit=8, batch_size=8,
                       store=str(store), judge=judge)


def _records(store_path, key):
    store = Store(store_path)
    try:
        return store.records(key)
    finally:
        store.close()


def test_judge_prompts_are_trustllms_for_the_items_trustllm_judges(mirror):
    from unicomp.evaluate.runner import load_task_docs
    from unicomp.evaluate.tasks import get_task

    docs, _ = load_task_docs(get_task(TASK), 8)
    texts = [f"Answer: {i}" for i in range(8)]
    items = judge_prompts(SUBTASKS[TASK], docs, texts)
    assert [docs[it.index]["source"] for it in items] == [d["source"] for d in docs if d["source"] != "codah"]
    for it in items:
        assert it.prompt == render(it.prompt_key, docs[it.index], texts[it.index])
        assert it.prompt.startswith("Given a question and a list of correct answers. Is the following answer correct?")
        assert it.prompt.endswith(f"Answer you should evaluate: {texts[it.index]}")


def test_llm_judge_over_unicomp_serve_labels_every_judged_item(tiny_model, judge_server, tmp_path, mirror):
    """SmolLM2-135M is a weak judge: some replies carry no label ("No, ... YES"). Recorded, they
    stay unjudged and listed; every other item's label is the parse of its stored reply."""
    store = tmp_path / "j.sqlite"
    judge = _judge(judge_server, on_malformed="record")
    out = run_evaluation(_request(tiny_model, store, judge))
    units = {(u["task"], "judge" in u["data"] and isinstance(u["data"]["judge"], dict)): u for u in out["units"]}
    assert set(units) == {(TASK, False), (TASK, True), ("trustllm_safety_misuse", False)}  # misuse: rule judge only
    judged = units[(TASK, True)]
    assert judged["data"]["judge"] == {"type": "llm", "base_url": judge_server, "model": "smol-judge", "max_tokens": 16,
                                       "on_malformed": "record"}
    assert judged["data"]["judged_items"] == 6 and judged["data"]["rule_judged_items"] == 2
    records = _records(store, judged["unit_key"])
    generated = _records(store, units[(TASK, False)]["unit_key"])
    assert [r["generation"] for r in records] == [r["generation"] for r in generated]  # the stored answers, judged
    lj = SUBTASKS[TASK].llm_judge
    with_reply = [r for r in records if "judge_reply" in r["extra"]]
    assert len(with_reply) == 6 and all(r["extra"]["judge"] == "llm:smol-judge" for r in with_reply)
    for r in with_reply:  # each stored label is the parse of the real model's stored reply (None: unjudged)
        assert r["metrics"]["avg"][lj.label] == lj.parse(r["extra"]["judge_reply"])
    assert judged["data"]["malformed_items"] == [r["item_id"] for r in with_reply
                                                 if lj.parse(r["extra"]["judge_reply"]) is None]
    # the scores are the subtask's metrics over those labels
    recomputed = SUBTASKS[TASK].metrics["avg"]([r["metrics"]["avg"] for r in records])
    assert judged["scores"]["avg"] == pytest.approx(recomputed)
    again = run_evaluation(_request(tiny_model, store, judge))
    assert all(u["reused"] for u in again["units"])
    # rule vs LLM labels of the judged items, as label files, and their agreement
    from unicomp.reliability.agreement import compare_files
    from unicomp.reliability.label_export import export_judge_labels
    from unicomp.reliability.labels import read_labels

    files = export_judge_labels(store, tmp_path / "labels")
    assert files["items"] == 6
    rule, llm, human = (read_labels(f) for f in files["files"])
    assert [r.item_id for r in rule] == [r.item_id for r in llm] == [r.item_id for r in human]
    assert [r.label for r in llm] == [lj.parse(r["extra"]["judge_reply"]) for r in with_reply]
    assert all(r.label in ("yes", "no") for r in rule) and all(r.label is None for r in human)
    both = [(a, b) for a, b in zip(rule, llm) if b.label is not None]
    result = compare_files(files["files"][0], files["files"][1])
    assert result["items"] == len(both) > 0
    assert result["accuracy"] == sum(a.label == b.label for a, b in both) / len(both)


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.mark.parametrize("which", ["garbage", "refused"])
def test_a_bad_judge_stops_in_one_line_and_the_rerun_keeps_the_generations(which, tiny_model, judge_server,
                                                                        garbage_server, tmp_path, mirror):
    store = tmp_path / f"{which}.sqlite"
    url = garbage_server if which == "garbage" else _closed_port_url()
    with pytest.raises(UnicompError) as info:
        run_evaluation(_request(tiny_model, store, _judge(url, "junk")))
    line = info.value.one_line()
    assert "\n" not in line
    if which == "garbage":
        assert "6 of 6 replies to trustllm_truthfulness_internal carry no label" in line and "'banana'" in line
    else:
        assert "cannot reach" in line
    good = run_evaluation(_request(tiny_model, store, _judge(judge_server, on_malformed="record")))
    reused = {(u["task"], isinstance(u["data"].get("judge"), dict)): u["reused"] for u in good["units"]}
    assert reused == {(TASK, False): True, ("trustllm_safety_misuse", False): True, (TASK, True): False}


def test_the_judge_is_part_of_the_key_and_the_api_key_is_not(tiny_model, tmp_path, mirror, monkeypatch):
    from unicomp.runs.models import ModelPool
    from unicomp.runs.plan import plan_evaluation
    from unicomp.runs.units import JudgeUnit

    def judge_keys(judge):
        plan = plan_evaluation(_request(tiny_model, tmp_path / "k.sqlite", judge), ModelPool("float32", "cpu"))
        units = [u for u in plan.units if isinstance(u, JudgeUnit)]
        for u in plan.units:
            u.bind({})
        return [u.key() for u in units]

    monkeypatch.setenv("JUDGE_KEY", "secret-1")
    first = judge_keys({**_judge("http://127.0.0.1:9/v1"), "api_key_env": "JUDGE_KEY"})
    monkeypatch.setenv("JUDGE_KEY", "secret-2")
    assert judge_keys({**_judge("http://127.0.0.1:9/v1"), "api_key_env": "JUDGE_KEY"}) == first and len(first) == 1
    assert judge_keys({**_judge("http://127.0.0.1:9/v1"), "model": "gpt-4o"}) != first
    assert judge_keys(None) == []
