"""One thread owns the model: it drains the requests waiting at that moment and generates for
all of them in one engine call.

Why: the engine batches (and gives the same answer for a prompt whatever else is in its
batch), so serving N concurrent clients costs about one batched generation, not N sequential
ones; and a model used from two threads at once is neither fast nor safe. Every use of the
model and tokenizer (measuring prompts too) happens on this thread, under `lock`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from unicomp.errors import UnicompError
from unicomp.serve import engine
from unicomp.serve.protocol import RequestError

log = logging.getLogger("unicomp.serve")


@dataclass
class Job:
    """One prompt to complete. `max_tokens` None means: as many as fit (up to the server cap)."""

    context: engine.Context
    sampling: dict[str, Any]  # until, temperature, top_p, seed
    max_tokens: int | None
    future: Future = field(default_factory=Future)


class GenerationWorker:
    """Queue of jobs, one thread, one engine call per drained batch."""

    def __init__(self, lm: Any, *, max_tokens_limit: int, max_batch: int = 64) -> None:
        self.lm = lm
        self.max_tokens_limit = max_tokens_limit
        self.max_batch = max_batch
        self.lock = threading.Lock()
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # jobs per engine call, newest last
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.holding = False  # the worker has taken a job and waits for the model (tests synchronise on it)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="unicomp-serve-worker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        while True:  # whatever arrived after the stop sentinel is refused, not left hanging
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(RequestError(503, "the server is shutting down", kind="server_error"))

    def submit(self, job: Job) -> Future:
        if self._thread is None:
            raise RequestError(503, "the server is not running", kind="server_error")
        self._queue.put(job)
        return job.future

    def waiting(self) -> int:
        """Jobs queued and not yet taken by the worker."""
        return self._queue.qsize()

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            self.holding = True
            with self.lock:
                # Drain under the lock: whatever arrived while the model was busy joins this batch.
                jobs = [first]
                while len(jobs) < self.max_batch:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stopping = True
                        break
                    jobs.append(job)
                self._process(jobs)
            self.holding = False

    def _process(self, jobs: list[Job]) -> None:
        ready: list[tuple[Job, tuple[engine.Context, dict]]] = []
        for job in jobs:
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                ready.append((job, self._prepare(job)))
            except RequestError as exc:
                job.future.set_exception(exc)
            except Exception as exc:  # noqa: BLE001 - one bad prompt must not stop the server
                job.future.set_exception(_as_request_error(exc))
        if not ready:
            return
        self.batch_sizes.append(len(ready))
        try:
            generations = engine.generate(self.lm, [request for _, request in ready])
        except Exception as exc:  # noqa: BLE001
            if len(ready) == 1:
                ready[0][0].future.set_exception(_as_request_error(exc))
                return
            # Find the request the engine refused; the others still get their answers (the
            # engine's results do not depend on the batch, so this changes no output).
            for job, request in ready:
                try:
                    job.future.set_result(engine.generate(self.lm, [request])[0])
                except Exception as one:  # noqa: BLE001
                    job.future.set_exception(_as_request_error(one))
            return
        for (job, _), generation in zip(ready, generations):
            job.future.set_result(generation)

    def _prepare(self, job: Job) -> tuple[engine.Context, dict]:
        """The engine request, or a 400 when the prompt and max_tokens do not fit the context."""
        n = engine.prompt_tokens(self.lm, job.context)
        window = engine.context_window(self.lm)
        if n == 0:
            raise RequestError(400, "the prompt is empty: it encodes to no tokens, and a model needs at least one "
                                    "to continue from", param="prompt")
        if job.max_tokens is None:
            max_new = min(self.max_tokens_limit, window - n)
            if max_new < 1:
                raise RequestError(400, f"the prompt has {n} tokens but the model's context is {window} tokens, "
                                        "which leaves no room to generate; shorten the prompt",
                                   param="messages", code="context_length_exceeded")
        else:
            max_new = job.max_tokens
            if n + max_new > window:
                raise RequestError(400, f"the prompt has {n} tokens and max_tokens is {max_new}: {n + max_new} "
                                        f"tokens, more than the model's context of {window} tokens; shorten "
                                        "the prompt or lower max_tokens",
                                   param="max_tokens", code="context_length_exceeded")
        return job.context, {**job.sampling, "max_gen_toks": max_new}


def _as_request_error(exc: Exception) -> RequestError:
    if isinstance(exc, RequestError):
        return exc
    if isinstance(exc, UnicompError):
        return RequestError(400, exc.one_line())
    log.exception("generation failed")
    return RequestError(500, f"generation failed: {type(exc).__name__}: {exc}", kind="server_error")
