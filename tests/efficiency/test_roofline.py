"""The roofline model on SmolLM2-135M's config against the same arithmetic done by hand: decode is
bandwidth-bound (bytes of every weight once per step), a long prefill compute-bound, and a format
only helps on a device with a kernel for it."""

from __future__ import annotations

import pytest
from transformers import LlamaConfig

from unicomp.efficiency.profiles import load_profile
from unicomp.efficiency.roofline import Format, project

# SmolLM2-135M's architecture (config.json of HuggingFaceTB/SmolLM2-135M)
SMOLLM2 = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                      num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)
LINEAR = 30 * (576 * 576 * 2 + 576 * 192 * 2 + 3 * 576 * 1536)  # q, o; k, v; gate, up, down
EMBED = 49152 * 576


def test_dense_bf16_decode_and_prefill_by_hand():
    l4 = load_profile("l4")
    out = project(SMOLLM2, Format("dense"), l4, batch=1, prompt=1024, new_tokens=16)
    weights = (LINEAR + EMBED) * 2  # tied: the head is the embedding, stored and read once
    kv = 2 * 30 * 3 * 64 * (1024 + 8 + 1) * 2  # keys and values, 3 kv heads of 64, bf16, at the middle step
    assert out["weight_bytes"] == weights
    assert out["decode_bound"] == "memory"
    assert out["decode_tokens_per_s"] == pytest.approx(300e9 / (weights + kv))
    # prefill: 2 x MACs over 1024 tokens (attention dense T x T, LM head on the last token only) / bf16 peak
    attention = 30 * 2 * 9 * 1024 * 1024 * 64
    flops = 2 * (1024 * LINEAR + attention + 576 * 49152)
    assert out["prefill_bound"] == "compute"
    assert out["prefill_s"] == pytest.approx(flops / 121e12)
    assert out["label"] == "modeled" and out["fits"]


def test_formats_help_only_where_a_kernel_exists():
    a100, h100 = load_profile("a100-sxm"), load_profile("h100-sxm")
    dense = project(SMOLLM2, Format("dense"), a100)
    w4 = project(SMOLLM2, Format("w4a16", group_size=64), a100)
    int4_bytes = LINEAR / 2 + LINEAR / 64 * 2 + EMBED * 2  # 4-bit codes + a bf16 scale per group of 64
    assert w4["weight_bytes"] == pytest.approx(int4_bytes)
    assert w4["decode_tokens_per_s"] > 1.5 * dense["decode_tokens_per_s"]
    # fp8 has no kernel on the A100: it runs dense there, at dense speed; on the H100 its prefill is faster
    fp8_a100 = project(SMOLLM2, Format("w8a8_fp8"), a100)
    assert not fp8_a100["kernel"] and fp8_a100["decode_tokens_per_s"] == dense["decode_tokens_per_s"]
    fp8_h100, dense_h100 = project(SMOLLM2, Format("w8a8_fp8"), h100), project(SMOLLM2, Format("dense"), h100)
    assert fp8_h100["kernel"] and fp8_h100["prefill_s"] < dense_h100["prefill_s"]
    # 2:4 halves the values (plus 2 bits of metadata each) where sparse kernels exist, not on Apple's GPU
    sparse = project(SMOLLM2, Format("sparse_2_4"), a100)
    assert sparse["weight_bytes"] == pytest.approx(LINEAR / 2 * 18 / 8 + EMBED * 2)
    assert not project(SMOLLM2, Format("sparse_2_4"), load_profile("apple-m2-max"))["kernel"]
    # untied: the input embedding is stored too, but a decode step reads only one row of it
    untied = SMOLLM2.to_dict() | {"tie_word_embeddings": False}
    far = project(LlamaConfig(**untied), Format("dense"), a100)
    assert far["weight_bytes"] == dense["weight_bytes"] + EMBED * 2
    assert far["decode_tokens_per_s"] == pytest.approx(dense["decode_tokens_per_s"])
