"""MACs from the config alone against torch.utils.flop_counter on real forward passes (prefill
and a cached decode step), for SmolLM2-135M and a tiny Gemma 3 with sliding-window layers.

The cross-check runs eager attention: on the CPU, flop_counter does not count PyTorch's SDPA
kernel consistently (it reports half the attention work of a prefill and none of a decode step)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from unicomp.efficiency.flops import forward_macs, per_token


def _counted(model, ids, **kw) -> tuple[int, object]:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(ids, use_cache=True, **kw)
    return counter.get_total_flops(), out


def _check(model, batch: int, prompt: int) -> None:
    model.config._attn_implementation = "eager"
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt), generator=torch.Generator().manual_seed(0))
    flops, out = _counted(model, ids)
    assert 2 * forward_macs(model.config, prompt, batch=batch)["total"] == pytest.approx(flops, rel=0.01)
    step, _ = _counted(model, ids[:, :1], past_key_values=out.past_key_values, logits_to_keep=1)
    assert 2 * forward_macs(model.config, 1, past=prompt, batch=batch, logits="last")["total"] == \
        pytest.approx(step, rel=0.01)
    if batch == 1:
        assert per_token(model.config, prompt)["flops"] == pytest.approx(step, rel=0.01)


def test_tiny_gemma3_with_sliding_windows_shorter_than_the_prompt():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=6,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=32, sliding_window=8,
                           max_position_embeddings=256)
    assert cfg.layer_types.count("sliding_attention") == 5  # the window matters in the decode step
    _check(Gemma3ForCausalLM(cfg).eval(), batch=2, prompt=20)


def test_smollm2_135m():
    from unicomp.models.loading import load_model

    model = load_model("smollm2-135m-instruct", dtype="float32").model
    _check(model, batch=1, prompt=48)
    # the per-token figure a report quotes: 2 x (weights in matmuls) plus attention over the context
    macs = forward_macs(model.config, 1, past=0, logits="last")
    params = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embed" not in n)
    assert macs["linear"] == params  # every 2-D weight but the (tied) embedding is one MAC per token
