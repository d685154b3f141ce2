"""The OpenAI-compatible API as a client sees it: a real uvicorn server over the tiny model.

What a user would notice: the response shapes OpenAI clients parse, the same text the
in-process engine generates, requests it cannot honour refused with a 400 that says why, the
API key enforced, and concurrent requests answered correctly while sharing engine calls.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from serve_helpers import TINY_MAX_TOKENS, TINY_NAME, error_of, post


def test_models_lists_the_served_model(tiny_server):
    url, _ = tiny_server
    body = httpx.get(f"{url}/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [TINY_NAME]


def test_completion_has_openai_shape_and_engine_text(tiny_server, tiny_lm):
    url, _ = tiny_server
    prompt = "The quick brown fox"
    r = post(f"{url}/completions", {"model": TINY_NAME, "prompt": prompt, "max_tokens": 7, "temperature": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "text_completion" and body["model"] == TINY_NAME
    assert body["id"].startswith("cmpl-") and isinstance(body["created"], int)
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["text"] == tiny_lm.generate_until([(prompt, {"until": [], "max_gen_toks": 7})])[0]
    # a random tiny model never emits EOS this early: the 7-token budget ends it
    assert choice["finish_reason"] == "length"
    n_prompt = len(tiny_lm.tok_encode(prompt))
    assert body["usage"] == {"prompt_tokens": n_prompt, "completion_tokens": 7, "total_tokens": n_prompt + 7}


def test_stop_string_ends_the_completion(tiny_server, tiny_lm):
    url, _ = tiny_server
    prompt = "A man is sitting"
    free = post(f"{url}/completions", {"prompt": prompt, "max_tokens": 12, "temperature": 0}).json()
    text = free["choices"][0]["text"]
    stop = text[3:5]  # something the model does generate
    assert stop and stop in text
    cut = post(f"{url}/completions", {"prompt": prompt, "max_tokens": 12, "temperature": 0, "stop": stop}).json()
    assert cut["choices"][0]["text"] == text.split(stop)[0]
    assert cut["choices"][0]["finish_reason"] == "stop"
    listed = post(f"{url}/completions", {"prompt": prompt, "max_tokens": 12, "temperature": 0,
                                         "stop": ["never-generated", stop]}).json()
    assert listed["choices"][0]["text"] == text.split(stop)[0]


def test_a_list_of_prompts_gets_one_choice_each_in_order(tiny_server, tiny_lm):
    url, _ = tiny_server
    prompts = ["The quick brown fox", "Question: What is", "Robert Boulter is"]
    body = post(f"{url}/completions", {"prompt": prompts, "max_tokens": 5, "temperature": 0}).json()
    expected = tiny_lm.generate_until([(p, {"until": [], "max_gen_toks": 5}) for p in prompts])
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert [c["text"] for c in body["choices"]] == expected
    assert body["usage"]["completion_tokens"] == 15


@pytest.mark.parametrize("field, value, needle", [
    ("n", 2, "n=2 is not supported"),
    ("stream", True, "stream=true is not supported"),
    ("logprobs", 3, "logprobs is not supported"),
    ("echo", True, "echo=true is not supported"),
    ("temperature", -1, "temperature"),
    ("max_tokens", 0, "max_tokens"),
])
def test_unsupported_or_invalid_fields_are_a_400_naming_them(tiny_server, field, value, needle):
    url, _ = tiny_server
    r = post(f"{url}/completions", {"prompt": "hi", "max_tokens": 4, field: value})
    assert r.status_code == 400, r.text
    assert needle in error_of(r)
    assert r.json()["error"]["param"] == field


def test_chat_refuses_n_and_logprobs(tiny_server):
    url, _ = tiny_server
    messages = [{"role": "user", "content": "hi"}]
    for extra, needle in (({"n": 3}, "n=3 is not supported"), ({"logprobs": True}, "logprobs is not supported"),
                          ({"stream": True}, "stream=true")):
        r = post(f"{url}/chat/completions", {"messages": messages, "max_tokens": 4, **extra})
        assert r.status_code == 400 and needle in error_of(r)
    r = post(f"{url}/chat/completions", {"messages": [], "max_tokens": 4})
    assert r.status_code == 400 and "messages" in error_of(r)
    r = post(f"{url}/chat/completions", {"messages": [{"role": "tool", "content": "x"}], "max_tokens": 4})
    assert r.status_code == 400 and "role" in error_of(r)


def test_max_tokens_over_the_server_cap_is_a_400(tiny_server):
    url, _ = tiny_server
    r = post(f"{url}/completions", {"prompt": "hi", "max_tokens": TINY_MAX_TOKENS + 1})
    assert r.status_code == 400
    assert f"max_tokens={TINY_MAX_TOKENS + 1}" in error_of(r) and f"({TINY_MAX_TOKENS})" in error_of(r)
    r = post(f"{url}/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                                          "max_completion_tokens": 1000})
    assert r.status_code == 400 and "max_tokens=1000" in error_of(r)


def test_prompt_longer_than_the_context_is_a_400_naming_both_lengths(tiny_server, tiny_lm):
    url, _ = tiny_server
    prompt = "The quick brown fox jumps over the lazy dog. " * 40
    n = len(tiny_lm.tok_encode(prompt))
    assert n > tiny_lm.max_length  # 256 for the tiny model
    r = post(f"{url}/completions", {"prompt": prompt, "max_tokens": 8})
    assert r.status_code == 400
    message = error_of(r)
    assert f"{n} tokens" in message and f"context of {tiny_lm.max_length} tokens" in message
    assert r.json()["error"]["code"] == "context_length_exceeded"
    # fits alone, but not with the tokens asked for
    short = "The quick brown fox"
    while len(tiny_lm.tok_encode(short)) <= tiny_lm.max_length - TINY_MAX_TOKENS:
        short += " jumps"
    m = len(tiny_lm.tok_encode(short))
    assert m + TINY_MAX_TOKENS > tiny_lm.max_length > m
    r = post(f"{url}/completions", {"prompt": short, "max_tokens": TINY_MAX_TOKENS})
    assert r.status_code == 400 and f"{m + TINY_MAX_TOKENS} tokens" in error_of(r)
    # the server still answers after refusing
    assert post(f"{url}/completions", {"prompt": "hi", "max_tokens": 2}).status_code == 200


def test_body_over_the_size_limit_is_a_413(tiny_server):
    url, _ = tiny_server
    r = post(f"{url}/completions", {"prompt": "x" * 30_000, "max_tokens": 2})
    assert r.status_code == 413 and "20000" in error_of(r)

    def chunked():  # no Content-Length: the limit is enforced while reading
        for _ in range(30):
            yield b" " * 1000
    r = httpx.post(f"{url}/completions", content=chunked(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_bad_json_unknown_model_and_unknown_route(tiny_server):
    url, _ = tiny_server
    r = post(f"{url}/completions", b'{"prompt": "unterminated')
    assert r.status_code == 400 and "not valid JSON" in error_of(r)
    r = post(f"{url}/completions", {"model": "gpt-4", "prompt": "hi"})
    assert r.status_code == 404 and "gpt-4" in error_of(r) and TINY_NAME in error_of(r)
    r = post(f"{url}/embeddings", {"input": "hi"})
    assert r.status_code == 404 and "POST /v1/embeddings" in error_of(r) and "/v1/chat/completions" in error_of(r)
    r = post(f"{url}/completions", {"prompt": "", "max_tokens": 2})
    assert r.status_code == 400 and "prompt is empty" in error_of(r)


def test_chat_without_a_chat_template_is_a_400_not_a_crash(tiny_server):
    """The tiny tokenizer has no chat template: the client learns that, and the server lives on."""
    url, _ = tiny_server
    r = post(f"{url}/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
    assert r.status_code == 400, r.text
    assert "template" in error_of(r)
    assert post(f"{url}/completions", {"prompt": "hi", "max_tokens": 2}).status_code == 200


def test_api_key_is_required_when_set(tiny_lm):
    from unicomp.serve import create_app
    from unicomp.serve.server import serve_in_thread

    with serve_in_thread(create_app(tiny_lm, TINY_NAME, api_key="s3cret")) as url:
        body = {"prompt": "hi", "max_tokens": 2}
        for key in (None, "wrong", "s3cret-and-more"):
            r = post(f"{url}/completions", body, key=key)
            assert r.status_code == 401 and "API key" in error_of(r)
            assert r.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{url}/models").status_code == 401
        assert post(f"{url}/completions", body, key="s3cret").status_code == 200
        assert httpx.get(f"{url}/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_concurrent_requests_share_one_engine_call_and_get_their_own_answers(tiny_server, tiny_lm):
    """Requests that arrive while the model is busy are generated together in one engine call,
    and each client still gets exactly the text it would get alone."""
    url, app = tiny_server
    worker = app.state.worker
    prompts = [("The quick brown", 3), ("Question: What is the", 9), ("Natalie had 48", 5), ("To open a jar", 12),
               ("Robert Boulter", 1), ("A man is", 7)]
    alone = [tiny_lm.generate_until([(p, {"until": [], "max_gen_toks": k})])[0] for p, k in prompts]
    with ThreadPoolExecutor(len(prompts)) as pool:
        with worker.lock:  # the model is busy: every request has to wait in the queue
            futures = [pool.submit(post, f"{url}/completions", {"prompt": p, "max_tokens": k, "temperature": 0})
                       for p, k in prompts]
            deadline = threading.Event()
            for _ in range(1000):  # the worker holds the first job, the rest wait behind it
                if worker.holding and worker.waiting() == len(prompts) - 1:  # (not: 5 queued, 1 still in flight)
                    break
                deadline.wait(0.01)
            assert worker.holding and worker.waiting() == len(prompts) - 1
        answers = [f.result() for f in futures]
    assert [r.json()["choices"][0]["text"] for r in answers] == alone
    assert worker.batch_sizes[-1] == len(prompts)  # one engine call for all six


def test_a_seed_gives_the_same_sample_whatever_else_is_in_flight(tiny_server, tiny_lm):
    url, _ = tiny_server
    body = {"prompt": "The quick brown", "max_tokens": 10, "temperature": 0.9, "top_p": 0.95, "seed": 11}
    alone = post(f"{url}/completions", body).json()["choices"][0]["text"]
    engine_kwargs = {"max_gen_toks": 10, "temperature": 0.9, "top_p": 0.95, "seed": 11}
    assert alone == tiny_lm.generate_until([("The quick brown", engine_kwargs)])[0]
    others = [{**body, "prompt": p, "seed": s} for p, s in (("A man is", 1), ("Natalie had", 2), ("To open", 3))]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda b: post(f"{url}/completions", b).json()["choices"][0]["text"],
                                [others[0], body, others[1], others[2]]))
    assert answers[1] == alone
    assert post(f"{url}/completions", {**body, "seed": 12}).json()["choices"][0]["text"] != alone
    unseeded = {k: v for k, v in body.items() if k != "seed"}
    first, second = (post(f"{url}/completions", unseeded).json()["choices"][0]["text"] for _ in range(2))
    assert first != second  # no seed: a fresh sample each time, not the engine's fixed default
