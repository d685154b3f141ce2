"""Shared test settings: the local dataset mirror, and a shared cache for converted models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/tiny_models.py

MIRROR = Path(os.environ.get("UNICOMP_DATA_DIR") or ROOT.parent / "shared" / "data").resolve()
# Absolute: the README's command passes ../shared/data, and subprocesses run in other folders.
os.environ["UNICOMP_DATA_DIR"] = str(MIRROR)


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not MIRROR.is_dir():
        pytest.fail(f"dataset mirror not found at {MIRROR}; set UNICOMP_DATA_DIR")
    return MIRROR


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer Llama with a real tokenizer, saved once per session as a transformers folder."""
    from tiny_models import save_tiny_llama

    return save_tiny_llama(tmp_path_factory.mktemp("models") / "tiny")
