"""`unicomp serve`: load a model the way `unicomp eval` does and serve it with uvicorn.

The model is loaded by `unicomp.models.loading.load_model`, the loader every unicomp command
uses, so aliases, local folders, .gguf files, hub ids and unicomp's compressed checkpoints
(packed int4 / int8 kernels included) are served exactly as they are evaluated. The socket is
bound before uvicorn starts, so a busy port is a one-line error, and `--port 0` picks a free
port that the ready line reports.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from unicomp.errors import UnicompError

API_KEY_ENV = "UNICOMP_SERVE_API_KEY"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on host:port, or a one-line error saying why not."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UnicompError(f"cannot resolve --host {host!r}: {exc.strerror}",
                           "pass an address such as 127.0.0.1 or 0.0.0.0") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UnicompError(f"cannot listen on {host}:{port}: {exc.strerror}",
                           "pick another --port (or stop what uses it), or --port 0 for any free port") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def serve(spec: str, *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          dtype: str = "float32", device: str = "cpu", batch_size: int = 16,
          max_tokens_limit: int | None = None, max_request_bytes: int | None = None,
          trust_remote_code: bool = False, on_status: Callable[[str], None] = print,
          on_warning: Callable[[str], None] = print, on_ready: Callable[[str], None] = print) -> None:
    """Load `spec` and serve it until interrupted (Ctrl-C / SIGTERM stop it gracefully)."""
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.models.loading import load_model
    from unicomp.serve.app import DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TOKENS_LIMIT, create_app

    max_tokens_limit = DEFAULT_MAX_TOKENS_LIMIT if max_tokens_limit is None else max_tokens_limit
    max_request_bytes = DEFAULT_MAX_REQUEST_BYTES if max_request_bytes is None else max_request_bytes
    for name, value in (("--max-tokens-limit", max_tokens_limit), ("--max-request-bytes", max_request_bytes),
                        ("--batch-size", batch_size)):
        if value < 1:
            raise UnicompError(f"{name} must be at least 1, got {value}", f"pass a positive {name}")
    key = api_key or os.environ.get(API_KEY_ENV) or None
    sock = bind(host, port)  # before loading: a busy port fails in a second, not after the load
    try:
        on_status(f"loading {spec} ({dtype}, {device})")
        loaded = load_model(spec, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
        lm = LanguageModel(loaded.model, loaded.tokenizer, batch_size=batch_size)
        for note in loaded.notes:
            on_status(note)
        execution = getattr(loaded.model, "unicomp_execution", None)
        if execution:  # a quantized checkpoint: say whether packed kernels or the float reference run
            on_status(f"quantized model: {execution['execution']} execution "
                      f"({execution.get('compute_dtype', dtype)} compute)")
        if not is_loopback(host) and key is None:
            on_warning(f"serving on {host}, which other machines can reach, without an API key: anyone who can "
                       f"connect can use the model (pass --api-key or set {API_KEY_ENV})")
        app = create_app(lm, spec, key, max_request_bytes=max_request_bytes, max_tokens_limit=max_tokens_limit)
        _Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5),
                ready=lambda: on_ready(f"serving {spec} at {url_of(sock)} (OpenAI-compatible; "
                                       f"{'API key required' if key else 'no API key'}; Ctrl-C stops)"),
                ).run(sockets=[sock])
    finally:
        sock.close()


class _Server(uvicorn.Server):
    """uvicorn's Server, announcing readiness once the app has started and the socket listens."""

    def __init__(self, config: uvicorn.Config, ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._ready()


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run `app` with uvicorn on a background thread of this process; yields its base URL
    (`http://host:port/v1`). For notebooks and tests: no subprocess, no second model copy."""
    sock = bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="unicomp-serve", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise UnicompError(f"the server on {url_of(sock)} did not start", "see the log above")
            time.sleep(0.01)
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
