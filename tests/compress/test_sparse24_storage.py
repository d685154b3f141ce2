"""compressed-tensors' sparse-24-bitmask layout for 2:4-pruned models: per module a [R, C/2]
values tensor, a bitmask with exactly two bits in every group of four, and the shape; a model
saved in it loads back bit-identically at ~17 bits per fp32 weight, and weights that are not 2:4
(or a method that is not 2:4 pruning) are refused in one line before anything is written."""

from __future__ import annotations

import json

import pytest
import torch
from compressed_tensors.utils.helpers import unpack_bitmasks

from tiny_models import tiny_llama, tiny_tokenizer
from unicomp.compress.apply import compress_model
from unicomp.compress.checkpoint import save_compressed
from unicomp.compress.registry import make_method
from unicomp.compress.sparse_storage import compress_weight_24
from unicomp.errors import UnicompError
from unicomp.models import load_model


def test_layout_by_hand():
    w = torch.tensor([[0.0, 1.5, 0.0, -2.0, 3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 4.0, 5.0, 0.0, 0.0]])
    parts = compress_weight_24(w)
    assert parts["shape"].tolist() == [[2], [8]]
    # the two largest |w| of every group of 4, in row-major order (a group with fewer nonzeros keeps zeros)
    assert parts["compressed"].shape == (2, 4)
    mask = unpack_bitmasks(parts["bitmask"], [2, 8])  # compressed-tensors' own unpacker
    assert mask.reshape(-1, 4).sum(dim=1).tolist() == [2, 2, 2, 2]
    assert torch.equal(w[mask].reshape(2, 4), parts["compressed"])
    dense = torch.zeros(2, 8)
    dense[mask] = parts["compressed"].reshape(-1)
    assert torch.equal(dense, w)
    with pytest.raises(UnicompError, match="not 2:4 sparse: 1 groups of 4 hold more than 2 nonzeros"):
        compress_weight_24(torch.tensor([[1.0, 2.0, 3.0, 0.0]]))


def test_a_2of4_model_round_trips_and_shrinks(tmp_path):
    model = tiny_llama()
    report = compress_model(model, make_method("magnitude", {"sparsity": 0.5, "pattern": "2:4"}))
    dense = save_compressed(model, tiny_tokenizer(), tmp_path / "d", report, base={}, storage="dense")
    sparse = save_compressed(model, tiny_tokenizer(), tmp_path / "s", report, base={}, storage="sparse-24-bitmask")
    config = json.loads((tmp_path / "s" / "config.json").read_text())["quantization_config"]
    assert config["format"] == config["sparsity_config"]["format"] == "sparse-24-bitmask"
    assert config["sparsity_config"]["sparsity_structure"] == "2:4"
    from safetensors.torch import load_file

    tensors = load_file(tmp_path / "s" / "model.safetensors")
    q = "model.layers.0.self_attn.q_proj"
    assert tensors[f"{q}.compressed"].shape == (64, 32) and f"{q}.weight" not in tensors
    loaded = load_model(str(tmp_path / "s")).model
    original = model.state_dict()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name
    linear = sum(t.numel() for n, t in original.items() if "layers" in n and n.endswith("proj.weight"))
    saved = sparse["sizes"]["stored_bytes"]
    assert saved < dense["sizes"]["stored_bytes"] - linear * 4 * 0.4  # ~15 of 32 bits saved per linear weight


def test_unstructured_pruning_is_refused_before_work(tmp_path):
    from unicomp.compress.checkpoint import check_storage

    with pytest.raises(UnicompError, match="sparse-24-bitmask holds 2:4-pruned weights.*'unstructured'"):
        check_storage("sparse-24-bitmask", make_method("wanda", {"sparsity": 0.5}))
    with pytest.raises(UnicompError, match="sparse-24-bitmask stores pruned float weights, but gptq quantizes"):
        check_storage("sparse-24-bitmask", make_method("gptq", {"bits": 4}))
