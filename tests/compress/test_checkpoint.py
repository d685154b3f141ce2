"""Compressed checkpoints: a normal transformers folder + unicomp.json, loading back bit-identically."""

from __future__ import annotations

import json

import pytest
import torch

from tiny_models import tiny_llama, tiny_tokenizer
from unicomp.compress.apply import compress_model
from unicomp.compress.checkpoint import read_manifest, save_compressed
from unicomp.compress.registry import make_method
from unicomp.compress.sparse_storage import compress_weight, decompress_weight
from unicomp.errors import UnicompError
from unicomp.models import fingerprint_model, load_model


def pruned_tiny():
    model = tiny_llama()
    report = compress_model(model, make_method("magnitude", {"sparsity": 0.5}))
    return model, report


@pytest.mark.parametrize("storage", ["dense", "sparse-bitmask"])
def test_save_and_load_back_bit_identically(tmp_path, storage):
    model, report = pruned_tiny()
    manifest = save_compressed(model, tiny_tokenizer(), tmp_path / "ckpt", report, base={"name": "tiny"}, storage=storage)
    loaded = load_model(str(tmp_path / "ckpt"))
    original = model.state_dict()
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, original[name]), name
    assert loaded.fingerprint == fingerprint_model(loaded.model)
    on_disk = read_manifest(tmp_path / "ckpt")
    assert on_disk["method"] == "magnitude" and on_disk["report"]["summary"]["sparsity"] == pytest.approx(0.5)
    assert on_disk["report"]["per_layer"] and on_disk["environment"]["packages"]["torch"]
    assert manifest["sizes"]["stored_bytes"] > 0
    if storage == "sparse-bitmask":
        config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
        assert config["quantization_config"]["format"] == "sparse-bitmask"


def test_sparse_bitmask_shrinks_half_sparse_weights(tmp_path):
    model = tiny_llama()
    model.model.layers[0].mlp.down_proj.weight.data = torch.randn(64, 128)  # bigger than the tiny default
    for layer in model.model.layers:
        for lin in (layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj):
            lin.weight.data = torch.randn_like(lin.weight)
    report = compress_model(model, make_method("magnitude", {"sparsity": 0.5}))
    dense = save_compressed(model, tiny_tokenizer(), tmp_path / "d", report, base={}, storage="dense")
    sparse = save_compressed(model, tiny_tokenizer(), tmp_path / "s", report, base={}, storage="sparse-bitmask")
    dense_linear = sum(p.stat().st_size for p in (tmp_path / "d").glob("*.safetensors"))
    sparse_linear = sum(p.stat().st_size for p in (tmp_path / "s").glob("*.safetensors"))
    assert sparse_linear < dense_linear
    assert sparse["sizes"]["dense_bytes"] == dense["sizes"]["dense_bytes"]


def test_bitmask_layout_round_trip_and_bits():
    w = torch.tensor([[0.0, 1.5, 0.0, -2.0, 0.0, 0.0, 0.0, 0.0, 3.0], [4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    parts = compress_weight(w)
    assert parts["compressed"].tolist() == [1.5, -2.0, 3.0, 4.0]
    assert parts["row_offsets"].tolist() == [0, 3]
    assert parts["bitmask"].shape == (2, 2)  # ceil(9 / 8) bytes per row
    assert parts["bitmask"][0, 0] == 0b00001010  # little-endian bit order: columns 1 and 3
    assert torch.equal(decompress_weight(parts), w)


def test_existing_output_folder_is_refused(tmp_path):
    model, report = pruned_tiny()
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "keep.txt").write_text("earlier results")
    with pytest.raises(UnicompError, match="already exists.*--overwrite"):
        save_compressed(model, tiny_tokenizer(), tmp_path / "ckpt", report, base={})
    assert (tmp_path / "ckpt" / "keep.txt").read_text() == "earlier results"
    # --overwrite replaces only what unicomp wrote: the user's folder stays as it was
    with pytest.raises(UnicompError, match="did not write"):
        save_compressed(model, tiny_tokenizer(), tmp_path / "ckpt", report, base={}, overwrite=True)
    assert (tmp_path / "ckpt" / "keep.txt").read_text() == "earlier results"
    save_compressed(model, tiny_tokenizer(), tmp_path / "mine", report, base={})
    (tmp_path / "mine" / "stale.txt").write_text("from an earlier save")
    save_compressed(model, tiny_tokenizer(), tmp_path / "mine", report, base={}, overwrite=True)
    assert not (tmp_path / "mine" / "stale.txt").exists() and read_manifest(tmp_path / "mine") is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "mine"]  # no temporary folder left


@pytest.mark.parametrize("method, options", [("magnitude", {"sparsity": 0.5}), ("rtn", {"bits": 4, "group_size": 32})])
def test_planned_storage_is_what_auto_resolves_to_after_compression(method, options):
    """A run keys its compression unit on the planned storage, so `auto` must plan what it later picks."""
    from unicomp.compress.checkpoint import planned_storage, resolve_storage

    model = tiny_llama()
    compressor = make_method(method, options)
    planned = planned_storage("auto", compressor)
    compress_model(model, compressor)
    assert planned == resolve_storage("auto", model) == ("dense" if method == "magnitude" else "compressed-tensors")
    assert planned_storage("sparse-bitmask", compressor) == "sparse-bitmask"  # explicit choices are kept
