"""Plain HTTP for the serve tests (what any OpenAI client sends, without a client library)."""

from __future__ import annotations

import httpx

TINY_NAME = "tiny-llama"
TINY_MAX_TOKENS = 64


def post(url: str, body: dict | bytes, key: str | None = None, timeout: float = 60) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if isinstance(body, bytes):
        return httpx.post(url, content=body, headers={**headers, "Content-Type": "application/json"}, timeout=timeout)
    return httpx.post(url, json=body, headers=headers, timeout=timeout)


def error_of(response: httpx.Response) -> str:
    """The message of an OpenAI-style error body (fails the test if the shape is wrong)."""
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]["message"]


class ServeProcess:
    """`unicomp serve ARGS` as a real subprocess; `url` is read from its ready line.

    stderr goes to a file (never a pipe nobody reads); stop() sends SIGTERM like a user's kill.
    """

    def __init__(self, *args: str, env: dict | None = None, ready_timeout: float = 300) -> None:
        import os
        import subprocess
        import sys
        import tempfile
        import threading

        self.stderr_file = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "unicomp", "serve", *args], stdout=subprocess.PIPE,
                                     stderr=self.stderr_file, text=True, env={**os.environ, **(env or {})})
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        self._ready.wait(ready_timeout)
        ready = [line for line in self.lines if line.startswith("serving ")]
        self.url = ready[0].split(" at ")[1].split()[0] if ready else None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("serving "):
                self._ready.set()
        self._ready.set()  # exited before it was ready

    def stderr(self) -> str:
        if self.stderr_file.closed:
            return self._stderr
        self.stderr_file.seek(0)
        return self.stderr_file.read()

    def stop(self, timeout: float = 30) -> int:
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self._stderr = self.stderr()
        self.stderr_file.close()
