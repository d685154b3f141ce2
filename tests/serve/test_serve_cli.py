"""`unicomp serve` as a user runs it: a real subprocess on a loopback port, real HTTP.

The ready line carries the URL (`--port 0` picks a free port, so tests never race for one);
SIGTERM stops the server cleanly; a busy port or bad option is a one-line error before the model
is loaded; a compressed checkpoint with packed int4 kernels is served the way `unicomp eval`
loads it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import httpx
import pytest
from serve_helpers import ServeProcess, error_of, post


def in_process_lm(spec: str, dtype: str = "float32"):
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.models.loading import load_model

    loaded = load_model(spec, dtype=dtype)
    return LanguageModel(loaded.model, loaded.tokenizer), loaded


def test_serve_subprocess_answers_completions_and_stops_on_sigterm(tiny_model, tiny_lm):
    spec = str(tiny_model)
    with ServeProcess(spec, "--port", "0", env={"UNICOMP_SERVE_API_KEY": "env-key"}) as server:
        assert server.url, server.stderr()
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
        assert "API key required" in server.lines[0]
        assert "warning" not in server.stderr()  # loopback: nothing to warn about
        models = httpx.get(f"{server.url}/models", headers={"Authorization": "Bearer env-key"}).json()
        assert [m["id"] for m in models["data"]] == [spec]
        r = post(f"{server.url}/completions", {"model": spec, "prompt": "The quick brown", "max_tokens": 6,
                                               "temperature": 0}, key="env-key")
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["text"] == tiny_lm.generate_until([("The quick brown", {"max_gen_toks": 6})])[0]
        assert post(f"{server.url}/completions", {"prompt": "hi"}).status_code == 401
        code = server.stop()
    assert code == 130, server.stderr()
    assert "interrupted: the server stopped" in server.stderr() and "Traceback" not in server.stderr()


def test_busy_port_and_bad_limits_are_one_line_errors_before_loading(tiny_model):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "unicomp", "serve", str(tiny_model), "--port", str(port)],
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0] and "--port" in errors[0], proc.stderr
    assert "loading" not in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "unicomp", "serve", str(tiny_model), "--max-tokens-limit", "0"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--max-tokens-limit must be at least 1" in proc.stderr


def test_non_loopback_host_without_a_key_warns(tiny_model):
    with ServeProcess(str(tiny_model), "--host", "0.0.0.0", "--port", "0",
                      env={"UNICOMP_SERVE_API_KEY": ""}) as server:
        assert server.url, server.stderr()
        warning = [line for line in server.stderr().splitlines() if line.startswith("warning:")]
        assert len(warning) == 1 and "0.0.0.0" in warning[0] and "--api-key" in warning[0]
        assert "no API key" in server.lines[0]
        port = server.url.rsplit(":", 1)[1].split("/")[0]  # talk to it over loopback only
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 200


def test_serves_a_packed_int4_checkpoint_with_its_kernels(tiny_model, tmp_path):
    """`unicomp compress ... --storage pack-quantized`, then `unicomp serve` in bf16: the packed int4
    kernels run (as `unicomp eval` would run them) and the text equals the in-process engine's."""
    out = tmp_path / "q4"
    proc = subprocess.run([sys.executable, "-m", "unicomp", "compress", "-m", str(tiny_model), "--method", "rtn",
                           "--bits", "4", "--group-size", "32", "--calibration", "none", "--storage",
                           "pack-quantized", "--out", str(out)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    lm, loaded = in_process_lm(str(out), dtype="bfloat16")
    assert loaded.record()["quantized_execution"]["execution"] == "kernels"
    prompts = ["The quick brown", "Question: What is"]
    expected = lm.generate_until([(p, {"max_gen_toks": 8}) for p in prompts])
    with ServeProcess(str(out), "--port", "0", "--dtype", "bfloat16") as server:
        assert server.url, server.stderr()
        assert "quantized model: kernels execution" in server.stderr()
        body = post(f"{server.url}/completions", {"prompt": prompts, "max_tokens": 8, "temperature": 0}).json()
    assert [c["text"] for c in body["choices"]] == expected


@pytest.mark.slow
def test_smollm2_chat_and_completion_over_unicomp_serve():
    """SmolLM2-135M-Instruct served by a real `unicomp serve`: a chat completion through its chat
    template, a completion, and the endpoint backend equal to the in-process engine."""
    from unicomp.evaluate.endpoint import EndpointConfig, EndpointModel

    lm, _ = in_process_lm("smollm2-135m-instruct")
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is the capital of France? Answer in one word."}]
    requests = [(messages, {"until": [], "max_gen_toks": 12}),
                ("The capital of Germany is", {"until": ["."], "max_gen_toks": 12}),
                ([{"role": "user", "content": "List three colors."}], {"until": ["\n\n"], "max_gen_toks": 12})]
    expected = lm.generate_until(requests)
    with ServeProcess("smollm2-135m-instruct", "--port", "0", "--batch-size", "4") as server:
        assert server.url, server.stderr()
        r = post(f"{server.url}/chat/completions", {"model": "smollm2-135m-instruct", "messages": messages,
                                                    "max_tokens": 12, "temperature": 0})
        assert r.status_code == 200, r.text
        chat = r.json()
        assert chat["object"] == "chat.completion"
        message = chat["choices"][0]["message"]
        assert message["role"] == "assistant" and "Paris" in message["content"]
        assert message["content"] == expected[0]
        assert chat["usage"]["prompt_tokens"] == len(lm.tok_encode(lm.render(messages)))
        r = post(f"{server.url}/completions", {"prompt": "The capital of Germany is", "max_tokens": 12,
                                               "temperature": 0, "stop": "."})
        assert r.json()["choices"][0]["text"] == expected[1] and "Berlin" in expected[1]
        assert r.json()["choices"][0]["finish_reason"] == "stop"
        config = EndpointConfig(base_url=server.url, model="smollm2-135m-instruct", api_key_env=None)
        assert EndpointModel(config).generate_until(requests) == expected
        too_long = post(f"{server.url}/completions", {"prompt": "word " * 9000, "max_tokens": 4})
        assert too_long.status_code == 400 and "8192 tokens" in error_of(too_long)
