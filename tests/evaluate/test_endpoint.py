"""The OpenAI-compatible endpoint backend against real HTTP servers.

* `unicomp serve`'s app (uvicorn on a thread) over the tiny model and over SmolLM2: the endpoint
  backend returns exactly what the in-process engine generates for the same requests.
* a small `http.server` on loopback that answers the way broken or busy servers do (malformed or
  cut-off JSON, no choices, 4xx, 500 then OK, 429 then OK, slow answers): every failure is a
  one-line `UnicompError` naming the item, retries happen only where they may help, and results
  keep request order.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from unicomp.errors import UnicompError
from unicomp.evaluate.endpoint import EndpointConfig, EndpointModel


def endpoint(base_url: str, model: str = "m", **kw) -> EndpointModel:
    return EndpointModel(EndpointConfig(base_url=base_url, model=model, **{"api_key_env": None, **kw}))


# ---------------------------------------------------------------------------------------------- parity
@pytest.fixture(scope="module")
def tiny(tiny_model) -> Iterator[tuple[str, object]]:
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.models.loading import load_model
    from unicomp.serve import create_app
    from unicomp.serve.server import serve_in_thread

    loaded = load_model(str(tiny_model), dtype="float32")
    lm = LanguageModel(loaded.model, loaded.tokenizer, batch_size=3)
    with serve_in_thread(create_app(lm, "tiny")) as url:
        yield url, lm


def test_endpoint_generates_what_the_engine_generates_tiny(tiny):
    url, lm = tiny
    prompts = ["The quick brown fox", "Question: What is the boiling", "A man is sitting on", "Natalie had 48",
               "To open a jar,"]
    free = lm.generate_until([(p, {"until": [], "max_gen_toks": 16}) for p in prompts])
    # stop strings the model really produces (mid-answer), and budgets of different sizes
    requests = [(p, {"until": [text[4:6]] if len(text) > 6 else [], "max_gen_toks": k})
                for p, text, k in zip(prompts, free, (16, 3, 9, 16, 1))]
    requests.append((prompts[0], {"until": ["never", free[0][2:4]], "max_gen_toks": 12}))
    expected = lm.generate_until(requests)
    assert any(len(e) < len(f) for e, f in zip(expected, free))  # some stop strings did cut
    done = []
    got = endpoint(url, "tiny", concurrency=3).generate_until(requests, progress=done.append)
    assert got == expected
    assert sum(done) == len(requests)


@pytest.mark.slow
def test_endpoint_generates_what_the_engine_generates_smollm2():
    """Greedy fp32 SmolLM2: text prompts with stop strings and chat conversations."""
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.models.loading import load_model
    from unicomp.serve import create_app
    from unicomp.serve.server import serve_in_thread

    loaded = load_model("smollm2-135m-instruct", dtype="float32")
    lm = LanguageModel(loaded.model, loaded.tokenizer, batch_size=4)
    requests = [
        ("The three primary colors are", {"until": ["."], "max_gen_toks": 24}),
        ("Question: Who wrote Hamlet?\nAnswer:", {"until": ["\n\n", "Question:"], "max_gen_toks": 20}),
        ([{"role": "user", "content": "What is 2+2? Answer briefly."}], {"until": [], "max_gen_toks": 20}),
        ([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a fruit."}],
         {"until": ["."], "max_gen_toks": 10}),
        ("def fibonacci(n):", {"until": ["\n\n"], "max_gen_toks": 6}),
    ]
    expected = lm.generate_until(requests)
    assert sum(bool(e.strip()) for e in expected) >= 4
    with serve_in_thread(create_app(lm, "smollm2")) as url:
        got = endpoint(url, "smollm2", concurrency=4).generate_until(requests)
    assert got == expected


# ---------------------------------------------------------------------------------------------- a scripted server
class Scripted:
    """A real HTTP server on loopback whose answer depends on the prompt it is sent.

    prompt "echo:<text>"     -> 200, choice text "<text>" (after `delay:<s>;` waits s seconds)
    prompt "malformed"       -> 200, JSON cut short (Content-Length matches)
    prompt "cutoff"          -> 200, Content-Length larger than the body, then the connection closes
    prompt "nochoices"       -> 200, {"object": "error"}
    prompt "html"            -> 200, an HTML page
    prompt "bad400"          -> 400 with a long error body
    prompt "flaky<N>:<id>"   -> HTTP N (500 or 429) the first time this id is seen, then like echo
    prompt "always500"       -> 500 every time
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.auth: list[str | None] = []
        self.paths: list[str] = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body.get("prompt") or body["messages"][-1]["content"]
                with lock:
                    outer.calls[prompt] += 1
                    seen = outer.calls[prompt]
                    outer.auth.append(self.headers.get("Authorization"))
                    outer.paths.append(self.path)
                chat = "messages" in body
                if prompt.startswith("delay:"):
                    delay, _, prompt = prompt[len("delay:"):].partition(";")
                    time.sleep(float(delay))
                if prompt.startswith("flaky") and seen == 1:
                    status = int(prompt[5:8])
                    return self.reply(status, b'{"error": {"message": "busy"}}', {"Retry-After": "0"})
                if prompt == "always500":
                    return self.reply(500, b"Internal Server Error")
                if prompt == "malformed":
                    return self.reply(200, b'{"choices": [{"text": "half')
                if prompt == "cutoff":
                    self.send_response(200)
                    self.send_header("Content-Length", "500")
                    self.end_headers()
                    self.wfile.write(b'{"choices": [{"te')
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if prompt == "nochoices":
                    return self.reply(200, b'{"object": "error"}')
                if prompt == "html":
                    return self.reply(200, b"<html><body>It works!</body></html>")
                if prompt == "bad400":
                    return self.reply(400, json.dumps({"error": {"message": "too long " * 300}}).encode())
                text = prompt.split(":", 1)[1] if ":" in prompt else prompt
                choice = {"index": 0, "message": {"role": "assistant", "content": text}} if chat else \
                    {"index": 0, "text": text}
                return self.reply(200, json.dumps({"choices": [{**choice, "finish_reason": "stop"}]}).encode())

            def reply(self, status: int, payload: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):  # a client that hung up: not news
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.close()


def gen(prompt, **kw) -> tuple:
    return (prompt, {"until": [], "max_gen_toks": 8, **kw})


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and len(message) < 600, message
    return message


def test_results_keep_request_order_when_answers_finish_out_of_order(scripted):
    requests = [gen(f"delay:{0.3 - 0.05 * i};echo:answer {i}") for i in range(6)]
    done: list[int] = []
    got = endpoint(scripted.url, concurrency=6).generate_until(requests, progress=done.append)
    assert got == [f"answer {i}" for i in range(6)]
    assert sum(done) == 6 and len(done) > 1  # reported as they finish, not once at the end


def test_stop_strings_are_cut_on_the_client_too(scripted):
    got = endpoint(scripted.url).generate_until([gen("echo:one. two. three", until=[". t", "never"]),
                                                 gen("echo:alpha\nbeta", until="\n")])
    assert got == ["one", "alpha"]


def test_strings_go_to_completions_and_messages_to_chat(scripted):
    got = endpoint(scripted.url).generate_until([gen("echo:plain"), gen([{"role": "user", "content": "echo:chat"}])])
    assert got == ["plain", "chat"]
    assert sorted(scripted.paths) == ["/v1/chat/completions", "/v1/completions"]
    with pytest.raises(UnicompError) as excinfo:
        endpoint(scripted.url, chat=False).generate_until([gen("echo:x"), gen([{"role": "user", "content": "x"}])])
    assert "item 1" in one_line_error(excinfo) and "chat: false" in str(excinfo.value)


@pytest.mark.parametrize("prompt, needle", [
    ("malformed", "malformed or truncated JSON"),
    ("cutoff", "cut off"),
    ("nochoices", "without choices"),
    ("html", "malformed or truncated JSON"),
])
def test_a_broken_reply_is_an_error_naming_the_item(scripted, prompt, needle):
    requests = [gen("echo:fine"), gen("echo:also fine"), gen(prompt)]
    with pytest.raises(UnicompError) as excinfo:
        endpoint(scripted.url, max_retries=2).generate_until(requests)
    message = one_line_error(excinfo)
    assert "item 2" in message and needle in message and scripted.url in message
    assert scripted.calls[prompt] == 1  # a broken answer is not retried: it would not get better


def test_http_4xx_is_an_error_quoting_what_came_back(scripted):
    with pytest.raises(UnicompError) as excinfo:
        endpoint(scripted.url).generate_until([gen("bad400")])
    message = one_line_error(excinfo)
    assert "item 0" in message and "HTTP 400" in message and "too long too long" in message
    assert scripted.calls["bad400"] == 1


def test_500_then_ok_and_429_then_ok_are_retried(scripted):
    got = endpoint(scripted.url, max_retries=1).generate_until(
        [gen("flaky500:a"), gen("echo:steady"), gen("flaky429:b")])
    assert got == ["a", "steady", "b"]
    assert scripted.calls["flaky500:a"] == 2 and scripted.calls["flaky429:b"] == 2
    assert scripted.calls["echo:steady"] == 1


def test_a_server_error_that_persists_is_reported_after_the_retries(scripted):
    with pytest.raises(UnicompError) as excinfo:
        endpoint(scripted.url, max_retries=2).generate_until([gen("echo:ok"), gen("always500")])
    message = one_line_error(excinfo)
    assert "item 1" in message and "HTTP 500" in message
    assert scripted.calls["always500"] == 3
    with pytest.raises(UnicompError):  # no retries configured: one call
        endpoint(scripted.url, max_retries=0).generate_until([gen("flaky500:c")])
    assert scripted.calls["flaky500:c"] == 1


def test_unreachable_endpoint_is_one_line_naming_the_url_and_the_fix():
    with socket.socket() as s:  # a port that was free a moment ago and nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    start = time.monotonic()
    with pytest.raises(UnicompError) as excinfo:
        endpoint(url, max_retries=1, concurrency=2).generate_until([gen("a"), gen("b"), gen("c")])
    assert time.monotonic() - start < 10
    message = one_line_error(excinfo)
    assert f"{url}/completions" in message and "start the server" in message and "base_url" in message
    assert "2 attempt(s)" in message


def test_api_key_comes_from_the_environment_at_call_time_and_is_never_kept(scripted, monkeypatch):
    monkeypatch.delenv("UNICOMP_TEST_KEY", raising=False)
    model = EndpointModel(EndpointConfig(base_url=scripted.url + "/", model="m", api_key_env="UNICOMP_TEST_KEY"))
    assert model.generate_until([gen("echo:1")]) == ["1"]
    monkeypatch.setenv("UNICOMP_TEST_KEY", "sk-first")
    model.generate_until([gen("echo:2")])
    monkeypatch.setenv("UNICOMP_TEST_KEY", "sk-second")
    model.generate_until([gen("echo:3")])
    assert scripted.auth == [None, "Bearer sk-first", "Bearer sk-second"]
    record = model.record()
    assert record == {"type": "openai", "base_url": scripted.url, "model": "m"}
    held = json.dumps(record) + repr(vars(model)) + model.config.model_dump_json()
    assert "sk-" not in held


def test_api_key_reaches_unicomp_serve_and_a_wrong_one_is_a_clear_error(tiny, monkeypatch):
    from unicomp.serve import create_app
    from unicomp.serve.server import serve_in_thread

    _, lm = tiny
    with serve_in_thread(create_app(lm, "tiny", api_key="k-123")) as url:
        monkeypatch.setenv("UNICOMP_TEST_KEY", "k-123")
        model = endpoint(url, "tiny", api_key_env="UNICOMP_TEST_KEY")
        assert model.generate_until([gen("The quick")]) == lm.generate_until([gen("The quick")])
        monkeypatch.setenv("UNICOMP_TEST_KEY", "k-wrong")
        with pytest.raises(UnicompError) as excinfo:
            model.generate_until([gen("The quick")])
        message = one_line_error(excinfo)
        assert "HTTP 401" in message and "$UNICOMP_TEST_KEY" in message and "k-wrong" not in message


def test_server_refusals_surface_as_item_errors(tiny):
    url, lm = tiny
    too_long = "The quick brown fox jumps over the lazy dog. " * 40
    with pytest.raises(UnicompError) as excinfo:
        endpoint(url, "tiny").generate_until([gen("The quick"), gen(too_long)])
    message = one_line_error(excinfo)
    assert "item 1" in message and "HTTP 400" in message and f"context of {lm.max_length} tokens" in message
    with pytest.raises(UnicompError) as excinfo:
        endpoint(url, "not-served").generate_until([gen("The quick")])
    assert "HTTP 404" in one_line_error(excinfo) and "GET" in str(excinfo.value)


def test_scoring_requests_are_refused_with_a_fix():
    model = endpoint("http://127.0.0.1:9/v1")
    with pytest.raises(UnicompError, match="in-process"):
        model.loglikelihood([("a", "b")])
    with pytest.raises(UnicompError, match="in-process"):
        model.loglikelihood_rolling(["a"])
    assert model.generate_until([]) == []
