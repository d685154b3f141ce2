"""A real server over the tiny model, run in this process (uvicorn on a thread, loopback, a
free port)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serve_helpers import TINY_MAX_TOKENS, TINY_NAME


@pytest.fixture(scope="session")
def tiny_lm(tiny_model):
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.models.loading import load_model

    loaded = load_model(str(tiny_model), dtype="float32")
    return LanguageModel(loaded.model, loaded.tokenizer, batch_size=4)


@pytest.fixture(scope="module")
def tiny_server(tiny_lm) -> Iterator[tuple[str, object]]:
    """(base URL ending in /v1, the app) of a server with no API key and a 64-token cap."""
    from unicomp.serve import create_app
    from unicomp.serve.server import serve_in_thread

    app = create_app(tiny_lm, TINY_NAME, max_tokens_limit=TINY_MAX_TOKENS, max_request_bytes=20_000)
    with serve_in_thread(app) as url:
        yield url, app

