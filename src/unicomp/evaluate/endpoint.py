"""Generation through an OpenAI-compatible HTTP endpoint (unicomp serve, vLLM, llama.cpp ...).

`EndpointModel.generate_until` keeps the contract of `LanguageModel.generate_until`: one text
per request, in request order, cut before the first stop string. So a generation task runs
unchanged against a model served elsewhere. Failures are errors, never a dropped or empty item:
a result that was not generated must not be scored as a wrong answer.

Prompt strings go to /completions, chat messages to /chat/completions (the server renders its
chat template). The API key is read from the environment at call time; it is never stored on
the object, logged, or part of `record()`.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from unicomp.errors import UnicompError

ProgressHook = Callable[[int], None]
Context = str | list[dict[str, str]]

DEFAULT_MAX_GEN_TOKS = 256  # as LanguageModel
_SHOWN = 200  # characters of a bad reply quoted in an error
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_RETRY_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAX_BACKOFF_S = 30.0


class EndpointConfig(BaseModel):
    """Where the model is served and how to talk to it."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["openai"] = "openai"
    base_url: str = Field(description="API root including /v1, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(description="model name the server expects (see GET {base_url}/models)")
    api_key_env: str | None = Field("OPENAI_API_KEY", description="environment variable holding the key (read "
                                                                  "at call time, never stored); None: send no key")
    chat: bool = Field(True, description="the endpoint serves /chat/completions (needed for chat-message prompts)")
    concurrency: int = Field(4, ge=1, description="requests in flight at once")
    max_retries: int = Field(3, ge=0, description="retries after connection errors, 429 and 5xx")
    timeout_s: float = Field(600.0, gt=0, description="seconds per request")


class EndpointModel:
    """A model behind an OpenAI-compatible endpoint, answering generate_until requests."""

    def __init__(self, config: EndpointConfig, *, max_length: int | None = None, add_bos_token: bool | None = None) -> None:
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        # the served model's context and BOS rule as the caller knows them: part of a result's settings
        self.max_length = max_length or 0
        self.add_bos_token = add_bos_token

    @property
    def supports_chat(self) -> bool:
        """Chat-message prompts go to /chat/completions, where the server applies its own template."""
        return self.config.chat

    def record(self) -> dict[str, Any]:
        """What identifies the model for provenance and cache keys (no key, no tuning knobs)."""
        return {"type": self.config.type, "base_url": self.base_url, "model": self.config.model}

    def loglikelihood(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_scoring("loglikelihood")

    def loglikelihood_rolling(self, *args: Any, **kwargs: Any) -> Any:
        raise self._no_scoring("loglikelihood_rolling")

    def _no_scoring(self, what: str) -> UnicompError:
        return UnicompError(f"the endpoint model {self.config.model} at {self.base_url} cannot answer {what} "
                            "requests (OpenAI-compatible servers return generated text, not scores)",
                            "run multiple-choice and perplexity tasks on the model in-process")

    def generate_until(self, requests: Sequence[tuple[Context, dict]],
                       progress: ProgressHook | None = None) -> list[str]:
        """The generated text of every request, in request order, cut before the first stop string."""
        requests = list(requests)
        if not requests:
            return []
        bodies = [self._body(i, context, kwargs) for i, (context, kwargs) in enumerate(requests)]
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env) if self.config.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        results: list[str | None] = [None] * len(requests)
        limits = httpx.Limits(max_connections=self.config.concurrency, max_keepalive_connections=self.config.concurrency)
        client = httpx.Client(timeout=self.config.timeout_s, limits=limits, headers=headers)
        pool = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="unicomp-endpoint")
        stop_event = threading.Event()
        futures = {pool.submit(self._one, client, i, path, body, stop_event): i for i, (path, body) in enumerate(bodies)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=futures.__getitem__):
                    results[futures[future]] = future.result()  # raises the item's error
                if progress is not None:
                    progress(len(done))
        except BaseException:
            # Fail fast: queued items never start, running ones stop retrying, and the client is
            # closed under requests still in flight instead of waiting up to timeout_s for them.
            stop_event.set()
            pool.shutdown(wait=False, cancel_futures=True)
            client.close()
            raise
        pool.shutdown()
        client.close()
        return [_cut(text, _stops(kwargs)) for text, (_, kwargs) in zip(results, requests)]  # type: ignore[arg-type]

    # ------------------------------------------------------------------ one request
    def _body(self, index: int, context: Context, kwargs: dict) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "max_tokens": int(kwargs.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS)),
            "temperature": float(kwargs.get("temperature") or 0.0),  # unset: greedy, as the engine
            "top_p": float(kwargs.get("top_p") or 1.0),
        }
        stops = _stops(kwargs)
        if stops:
            body["stop"] = stops
        if kwargs.get("seed") is not None:
            body["seed"] = int(kwargs["seed"])
        if isinstance(context, str):
            return "/completions", {**body, "prompt": context}
        if not self.config.chat:
            raise UnicompError(f"item {index} is a chat conversation, but the endpoint {self.base_url} is configured "
                               "with chat: false", "set chat: true if the server has /chat/completions, or use a "
                                                   "task without chat_template")
        return "/chat/completions", {**body, "messages": list(context)}

    def _one(self, client: httpx.Client, index: int, path: str, body: dict, stop_event: threading.Event) -> str:
        url = self.base_url + path
        payload = json.dumps(body)
        for attempt in range(self.config.max_retries + 1):
            if stop_event.is_set():
                raise UnicompError(f"item {index} was not sent: another item failed first")
            last = attempt == self.config.max_retries
            try:
                response = client.post(url, content=payload)
            except _RETRY_ERRORS as exc:
                if last:
                    raise UnicompError(
                        f"cannot reach the endpoint {url}: {_one_line(exc)} (after {attempt + 1} attempt(s))",
                        "start the server (e.g. `unicomp serve MODEL`) or check base_url") from None
                _sleep(_backoff(attempt), stop_event)
                continue
            except httpx.TimeoutException as exc:
                raise UnicompError(f"item {index}: no answer from {url} within {self.config.timeout_s:g} s "
                                   f"({type(exc).__name__})", "raise timeout_s, or lower max_gen_toks") from None
            except httpx.HTTPError as exc:  # the connection broke mid-reply: a truncated answer
                raise UnicompError(f"item {index}: the reply from {url} was cut off: {_one_line(exc)}",
                                   "check the server's log; it may have crashed or been restarted") from None
            if response.status_code in _RETRY_STATUS and not last:
                _sleep(_retry_after(response) or _backoff(attempt), stop_event)
                continue
            return self._text(index, url, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _text(self, index: int, url: str, response: httpx.Response) -> str:
        """The generated text of a reply, or an error naming the item and what came back."""
        shown = _quote(response.text)
        if response.status_code != 200:
            raise UnicompError(f"item {index}: {url} answered HTTP {response.status_code}: {shown}",
                               _status_fix(response.status_code, self.config.api_key_env, self.base_url))
        try:
            data = response.json()
        except ValueError:
            raise UnicompError(f"item {index}: {url} answered with malformed or truncated JSON: {shown}",
                               "check that base_url points at an OpenAI-compatible server") from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise UnicompError(f"item {index}: {url} answered without choices: {shown}",
                               "check that base_url points at an OpenAI-compatible server")
        choice = choices[0]
        text = choice.get("text") if "text" in choice else (choice.get("message") or {}).get("content")
        if not isinstance(text, str):
            raise UnicompError(f"item {index}: {url} answered a choice without text: {shown}",
                               "check that base_url points at an OpenAI-compatible server")
        return text


def _stops(kwargs: dict) -> list[str]:
    until = kwargs.get("until") or []
    return [s for s in ([until] if isinstance(until, str) else until) if s]


def _cut(text: str, stops: Sequence[str]) -> str:
    """Text before the earliest stop string (the server may not have stopped at it: some cap stops)."""
    for stop in stops:
        text = text.split(stop)[0]
    return text


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= _SHOWN else flat[:_SHOWN] + "...")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _backoff(attempt: int) -> float:
    return min(_MAX_BACKOFF_S, 0.5 * 2 ** attempt) * (0.75 + 0.5 * random.random())


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return min(_MAX_BACKOFF_S, max(0.0, float(value)))
    except ValueError:
        return None


def _sleep(seconds: float, stop_event: threading.Event) -> None:
    stop_event.wait(seconds)


def _status_fix(status: int, key_env: str | None, base_url: str) -> str:
    if status in (401, 403):
        return f"set the server's API key in ${key_env}" if key_env else "set api_key_env to the variable holding the key"
    if status == 404:
        hint = "" if base_url.endswith("/v1") else " (it usually ends with /v1)"
        return f"check base_url{hint} and the model name (GET {base_url}/models lists it)"
    if status in (400, 413, 422):
        return "the server refused the request: check max_gen_toks and prompt length against its limits"
    return "check the server's log"
