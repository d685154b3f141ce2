"""Runtime profiles of real (tiny) models: every number the JSON promises per batch size, what
ran (packed kernels vs dense) recorded, a pruned model flagged as running dense, and the runtime
signature (a profile's key) blind to weight values but not to kernels. No timing is asserted."""

from __future__ import annotations

import copy
import json

import torch
from tiny_models import tiny_llama

from unicomp.efficiency.runtime import Workload, kernels_used, measure_runtime, runtime_signature

TINY = Workload(prompt_tokens=16, new_tokens=4, decode_tokens=6, batch_sizes=[1, 3], repeats=2, threads=1)


def _int4(model):
    from unicomp.compress.apply import compress_model
    from unicomp.compress.quant.packed import pack_model
    from unicomp.compress.registry import make_method

    model = copy.deepcopy(model)
    compress_model(model, make_method("rtn", {"bits": 4, "group_size": 32}))
    pack_model(model, torch.bfloat16)
    return model.to(torch.bfloat16)


def test_profile_of_dense_and_packed_models():
    base = tiny_llama()
    dense = measure_runtime(base, TINY)
    assert dense["kernels"] == {"Linear": 15} and dense["dtype"] == "float32" and dense["threads"] == 1
    assert [b["batch"] for b in dense["batches"]] == [1, 3]
    for row in dense["batches"]:
        assert row["prefill_tokens_per_s"] > 0 and row["decode_tokens_per_s"] > 0 and row["peak_memory_bytes"] > 0
        assert row["prefill_s"]["min"] <= row["prefill_s"]["median"] <= row["prefill_s"]["max"]
        assert row["ttft_s"]["median"] >= row["prefill_s"]["min"]
        assert row["e2e_latency_s"]["median"] >= row["ttft_s"]["min"]
    packed = measure_runtime(_int4(base), TINY)
    assert packed["kernels"] == {"Int4PackedLinear": 14, "Linear": 1} and packed["dtype"] == "bfloat16"
    assert json.loads(json.dumps(packed)) == packed  # JSON-able as stored


def test_pruned_models_share_the_base_signature_and_are_flagged_dense():
    from unicomp.compress.apply import compress_model
    from unicomp.compress.registry import make_method

    base = tiny_llama()
    pruned = copy.deepcopy(base)
    compress_model(pruned, make_method("magnitude", {"sparsity": 0.5}))
    assert runtime_signature(pruned, TINY, "cpu") == runtime_signature(base, TINY, "cpu")
    assert runtime_signature(_int4(base), TINY, "cpu") != runtime_signature(base.to(torch.bfloat16), TINY, "cpu")
    assert runtime_signature(base, TINY.model_copy(update={"batch_sizes": [1]}), "cpu") != \
        runtime_signature(base, TINY, "cpu")
    threads = torch.get_num_threads()
    result = measure_runtime(pruned, TINY.model_copy(update={"batch_sizes": [1], "repeats": 1}))
    assert torch.get_num_threads() == threads
    assert result["linear_sparsity"] >= 0.35 and "no sparse kernel" in result["notes"][0]  # lm_head stays dense
    assert kernels_used(pruned) == {"Linear": 15}


def test_footprint_counts_logical_weights_and_effective_bits():
    from unicomp.efficiency.footprint import footprint
    from unicomp.efficiency.flops import per_token

    base = tiny_llama()
    dense = footprint(base, context=16)
    linear = sum(m.weight.numel() for n, m in base.named_modules() if isinstance(m, torch.nn.Linear) and "layers" in n)
    assert dense["decoder_linear_weights"] == linear and dense["bits_per_weight"] == 32.0
    assert dense["parameters"] == sum(p.numel() for p in base.parameters())  # the tied head counted once
    assert dense["flops_per_token"] == per_token(base.config, 16)["flops"]
    assert footprint(base.to(torch.bfloat16))["bits_per_weight"] == 16.0
    packed = footprint(_int4(tiny_llama()))
    # int4 codes plus, per group of 32 weights, the kernel's bf16 scale and zero term and the uint8 zero code
    # kept for export: 4 + (16 + 16 + 8) / 32 bits
    assert packed["bits_per_weight"] == 4 + 40 / 32 and packed["parameters"] == dense["parameters"]
    from unicomp.compress.apply import compress_model
    from unicomp.compress.registry import make_method

    pruned = tiny_llama()
    compress_model(pruned, make_method("magnitude", {"sparsity": 0.5}))
    assert footprint(pruned)["nonzeros"] == dense["nonzeros"] - linear // 2
