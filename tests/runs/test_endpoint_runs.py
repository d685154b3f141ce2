"""Generation tasks of `unicomp eval` through an OpenAI-compatible server: the same answers as
in-process, stored apart from them, and a server that is down fails the run in one line while
finished units stay reusable."""

from __future__ import annotations

import socket

import pytest
from tiny_models import tiny_tokenizer

from unicomp.errors import UnicompError
from unicomp.requests import EvalRequest
from unicomp.runs.evaluation import run_evaluation
from unicomp.runs.store import Store


@pytest.fixture(scope="module")
def long_context_model(tmp_path_factory):
    """The tiny Llama with room for gsm8k's 256-token answers."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = tiny_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=1024, bos_token_id=0, eos_token_id=0, pad_token_id=1,
                      tie_word_embeddings=True)
    folder = tmp_path_factory.mktemp("models") / "tiny-1k"
    LlamaForCausalLM(cfg).eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def server(long_context_model):
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.models.loading import load_model
    from unicomp.serve import create_app
    from unicomp.serve.server import serve_in_thread

    loaded = load_model(str(long_context_model), dtype="float32")
    app = create_app(LanguageModel(loaded.model, loaded.tokenizer, batch_size=4), "tiny", max_tokens_limit=512)
    with serve_in_thread(app) as url:
        yield url


def _request(model, tmp_path, store: str, endpoint=None, tasks=("gsm8k",)) -> EvalRequest:
    return EvalRequest(model=str(model), tasks=list(tasks), limit=3, num_fewshot=0, batch_size=3, store=str(tmp_path / store),
                       endpoint=endpoint)


def _endpoint(url: str) -> dict:
    return {"type": "openai", "base_url": url, "model": "tiny", "api_key_env": None}


def test_served_answers_equal_in_process_and_are_keyed_apart(long_context_model, server, tmp_path, mirror):
    local = run_evaluation(_request(long_context_model, tmp_path, "a.sqlite"))
    served = run_evaluation(_request(long_context_model, tmp_path, "a.sqlite", endpoint=_endpoint(server)))
    (lu,), (su,) = local["units"], served["units"]
    assert not su["reused"], "a served result must not reuse the in-process one"
    store = Store(tmp_path / "a.sqlite")
    try:
        ours = [r["generation"] for r in store.records(lu["unit_key"])]
        theirs = [r["generation"] for r in store.records(su["unit_key"])]
    finally:
        store.close()
    assert ours == theirs and len(ours) == 3
    assert su["scores"] == lu["scores"]


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_a_server_that_is_down_fails_in_one_line_and_the_run_resumes(long_context_model, server, tmp_path, mirror):
    down = _request(long_context_model, tmp_path, "b.sqlite", endpoint=_endpoint(_closed_port_url()),
                    tasks=("arc_easy", "gsm8k"))
    with pytest.raises(UnicompError) as info:
        run_evaluation(down)
    assert "\n" not in info.value.one_line() and "127.0.0.1" in info.value.one_line()
    up = run_evaluation(_request(long_context_model, tmp_path, "b.sqlite", endpoint=_endpoint(server),
                                 tasks=("arc_easy", "gsm8k")))
    reused = {u["task"]: u["reused"] for u in up["units"]}
    assert reused == {"arc_easy": True, "gsm8k": False}


def test_a_run_backend_must_name_models_of_the_run(tmp_path):
    from unicomp.config import load_config

    text = ("name: t\nmodel: smollm2-135m-instruct\nevaluation: {tasks: [gsm8k]}\n"
            "variants: [{name: w50, method: wanda, options: {sparsity: 0.5}}]\n"
            "backend: {base_url: 'http://127.0.0.1:8000/v1', models: {base: smol, w5O: smol-w50}}\n")
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(UnicompError, match="w5O, not a model of this run"):
        load_config(path)
    path.write_text(text.replace("w5O", "w50"))
    cfg = load_config(path)
    assert cfg.backend.endpoint_for("w50")["model"] == "smol-w50" and cfg.backend.endpoint_for("other") is None


def test_an_answer_budget_override_is_applied_and_keyed(long_context_model, tmp_path, mirror):
    full = run_evaluation(_request(long_context_model, tmp_path, "c.sqlite"))
    short = run_evaluation(_request(long_context_model, tmp_path, "c.sqlite").model_copy(update={"max_gen_toks": 5}))
    (fu,), (su,) = full["units"], short["units"]
    assert fu["unit_key"] != su["unit_key"] and not su["reused"]
    store = Store(tmp_path / "c.sqlite")
    try:
        records = store.records(su["unit_key"])
    finally:
        store.close()
    assert all(r["extra"]["completion_tokens"] <= 5 for r in records)
    assert su["settings"]["generation"]["max_gen_toks"] == 5
