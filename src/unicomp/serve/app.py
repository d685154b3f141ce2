"""The OpenAI-compatible HTTP API over one in-process model.

Routes: GET /v1/models, POST /v1/completions, POST /v1/chat/completions. Bodies are read and
validated here (size cap first, then the schema, then the server's max_tokens cap); generation
is queued to the single `GenerationWorker`. Errors always have OpenAI's shape
`{"error": {"message", "type", "param", "code"}}`, so OpenAI clients show the message.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from unicomp.serve import engine, protocol
from unicomp.serve.protocol import ChatRequest, CompletionRequest, RequestError
from unicomp.serve.worker import GenerationWorker, Job

DEFAULT_MAX_REQUEST_BYTES = 1_000_000
DEFAULT_MAX_TOKENS_LIMIT = 2048
COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # OpenAI's default for /v1/completions
_ROUTES = "GET /v1/models, POST /v1/completions and POST /v1/chat/completions"


def create_app(lm: Any, model_name: str, api_key: str | None = None, *,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
               max_tokens_limit: int = DEFAULT_MAX_TOKENS_LIMIT, max_batch: int = 64) -> FastAPI:
    """An app serving `lm` (a LanguageModel) under the name `model_name`.

    `api_key`: when set, every /v1 request needs `Authorization: Bearer <api_key>`.
    The generation worker starts and stops with the app's lifespan (uvicorn runs it).
    """
    worker = GenerationWorker(lm, max_tokens_limit=max_tokens_limit, max_batch=max_batch)
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        worker.start()
        try:
            yield
        finally:
            await asyncio.to_thread(worker.stop)

    app = FastAPI(title="unicomp serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.worker = worker
    app.state.model_name = model_name

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:  # 404/405, OpenAI's shape
        message = f"{exc.detail}: {request.method} {request.url.path}; this server answers {_ROUTES}"
        return JSONResponse(RequestError(exc.status_code, message).body(), status_code=exc.status_code)

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise RequestError(401, "missing or wrong API key: send the header 'Authorization: Bearer <key>' "
                                    "with the key the server was started with", kind="authentication_error",
                               code="invalid_api_key")

    async def read_body(request: Request) -> bytes:
        """The body, refused with 413 as soon as it is known to exceed the cap (before reading it
        all when Content-Length says so)."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_request_bytes:
            raise _too_large(int(declared), max_request_bytes)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_request_bytes:
                raise _too_large(size, max_request_bytes)
            chunks.append(chunk)
        return b"".join(chunks)

    def check_model(requested: str | None) -> None:
        if requested is not None and requested != model_name:
            raise RequestError(404, f"the model {requested!r} is not served here; this server serves {model_name!r}",
                               param="model", code="model_not_found")

    def check_cap(max_tokens: int | None) -> None:
        if max_tokens is not None and max_tokens > max_tokens_limit:
            raise RequestError(400, f"max_tokens={max_tokens} is more than this server allows ({max_tokens_limit}); "
                                    "lower it, or restart the server with a larger --max-tokens-limit",
                               param="max_tokens")

    async def run(jobs: list[Job]) -> list[Any]:
        futures = [asyncio.wrap_future(worker.submit(job)) for job in jobs]
        return list(await asyncio.gather(*futures))

    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        authorize(request)
        return protocol.models_response(model_name, created)

    @app.post("/v1/completions")
    async def completions(request: Request) -> dict:
        authorize(request)
        body = protocol.parse(CompletionRequest, await read_body(request))
        check_model(body.model)
        max_tokens = body.max_tokens if body.max_tokens is not None else COMPLETIONS_DEFAULT_MAX_TOKENS
        check_cap(max_tokens)
        sampling = _sampling(body)
        generations = await run([Job(p, sampling, max_tokens) for p in body.prompts()])
        return protocol.completion_response(model_name, generations)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict:
        authorize(request)
        body = protocol.parse(ChatRequest, await read_body(request))
        check_model(body.model)
        check_cap(body.limit())
        if not engine.has_chat_template(lm):
            raise RequestError(400, f"the model {model_name!r} has no chat template, so it cannot take chat messages; "
                                    "send a prompt to /v1/completions instead", param="messages")
        messages = [m.as_dict() for m in body.messages]
        [generation] = await run([Job(messages, _sampling(body), body.limit())])
        return protocol.chat_response(model_name, generation)

    return app


def _sampling(body: protocol._Sampling) -> dict[str, Any]:
    """Engine kwargs. Sampling without a seed gets a fresh random one: the engine's unseeded
    default is fixed, and two identical unseeded requests must not return the same sample."""
    seed = body.seed
    if body.temperature > 0 and seed is None:
        seed = secrets.randbits(31)
    return {"until": body.stops(), "temperature": body.temperature, "top_p": body.top_p, "seed": seed}


def _too_large(size: int, limit: int) -> RequestError:
    return RequestError(413, f"the request body has {size} bytes, more than this server accepts ({limit}); "
                             "send a shorter request or restart the server with a larger --max-request-bytes")
