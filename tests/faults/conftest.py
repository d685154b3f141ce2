"""Fixtures of the fault suite (helpers live in fault_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny_models import tiny_llama, tiny_tokenizer


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer Llama with a real tokenizer, saved as a normal transformers folder."""
    folder = tmp_path_factory.mktemp("models") / "tiny"
    tiny_llama().save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder
