"""SmoothQuant and the shared smoothing folds, on tiny real models and a toy norm -> linear block."""

from __future__ import annotations

import contextlib

import pytest
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from tiny_models import logits, random_ids, tiny_llama, tiny_qwen2, tiny_tokenizer
from unicomp.compress.apply import compress_model
from unicomp.compress.base import LayerContext
from unicomp.compress.quant.grid import QuantScheme, group_params, on_grid, quantize_columns
from unicomp.compress.quant.smoothing import can_smooth, fold_scale, smoothable
from unicomp.compress.quant.smoothquant import SmoothQuant, SmoothQuantConfig
from unicomp.errors import UnicompError
from unicomp.models.anatomy import Anatomy, Smoothing, anatomy_of


def tiny_gemma3(seed: int = 0) -> Gemma3ForCausalLM:
    """Gemma 3 text model: RMSNorm multiplies by (1 + weight), the MLP is fed by pre_feedforward_layernorm."""
    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(vocab_size=len(tiny_tokenizer()), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                           sliding_window=8, layer_types=["sliding_attention", "full_attention"],
                           bos_token_id=0, eos_token_id=0, pad_token_id=1)
    return Gemma3ForCausalLM(cfg).eval()


def tiny_llama_mha(seed: int = 0) -> LlamaForCausalLM:
    """As tiny_llama but one value head per query head, so v_proj -> o_proj can be smoothed too."""
    cfg = tiny_llama().config
    cfg.num_key_value_heads = cfg.num_attention_heads
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval()


def randomize_norms(model: torch.nn.Module, seed: int = 1) -> None:
    """Non-trivial norm weights, so a fold that ignored Gemma's (1 + w) offset would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(p + 0.3 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("make", [tiny_llama, tiny_llama_mha, tiny_gemma3])
def test_folding_arbitrary_scales_keeps_fp32_logits(make):
    """SmoothQuant keeps the fp32 output of a smoothed layer (before quantization) identical to the original."""
    model = make()
    randomize_norms(model)
    ids = torch.tensor(random_ids(2, 12, seed=3))
    before = logits(model, ids)
    anatomy = anatomy_of(model)
    g = torch.Generator().manual_seed(0)
    folded = []
    for layer in model.get_submodule(anatomy.layers):
        for entry in smoothable(layer, anatomy.smoothing):
            width = layer.get_submodule(entry.linears[0]).in_features
            fold_scale(layer, entry, torch.exp(torch.randn(width, generator=g)), anatomy.norm_weight_offset)
            folded.append(entry.previous)
    assert torch.allclose(logits(model, ids), before, atol=1e-5)
    assert ("self_attn.v_proj" in folded) == (make is tiny_llama_mha)  # GQA: v -> o skipped
    assert "mlp.up_proj" in folded and "input_layernorm" in folded


def test_grouped_query_attention_refuses_v_to_o():
    layer = tiny_llama().model.layers[0]
    v_to_o = Smoothing("self_attn.v_proj", ("self_attn.o_proj",), "self_attn.o_proj")
    assert not can_smooth(layer, v_to_o)
    with pytest.raises(UnicompError, match="shapes differ"):
        fold_scale(layer, v_to_o, torch.ones(64))


def test_fold_refuses_non_positive_scales():
    layer = tiny_llama().model.layers[0]
    entry = anatomy_of(tiny_llama()).smoothing[0]
    with pytest.raises(UnicompError, match="positive"):
        fold_scale(layer, entry, torch.zeros(64))


# ------------------------------------------------------------ toy norm -> linear with outlier channels

class NormLinear(torch.nn.Module):
    """The smallest block SmoothQuant applies to: an RMSNorm feeding one linear."""

    def __init__(self, dim: int, out: int, outliers: int, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.norm = LlamaRMSNorm(dim)
        self.fc = torch.nn.Linear(dim, out, bias=False)
        with torch.no_grad():  # a few channels 40x larger, as in real LLM activations, whose
            picked = torch.randperm(dim)[:outliers]  # weights are small, so they do not dominate the output
            self.norm.weight[picked] = 40.0
            self.fc.weight[:, picked] *= 0.1

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(h))


TOY = Anatomy(layers="", embed_tokens="", final_norm="", lm_head="", linear_groups=(("fc",),),
              smoothing=(Smoothing("norm", ("fc",), "fc"),))


def toy_context(block: torch.nn.Module, hidden: torch.Tensor) -> LayerContext:
    return LayerContext(layer=block, index=0, prefix="toy", anatomy=TOY, hidden=[hidden], kwargs=[{}],
                        autocast=contextlib.nullcontext)


def int8_per_token(x: torch.Tensor) -> torch.Tensor:
    """Dynamic symmetric int8 activations, one scale per token (the W8A8 kernels' scheme), dequantized."""
    step = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-8) / 127
    return torch.clamp(torch.round(x / step), -127, 127) * step


def w8_per_channel(w: torch.Tensor) -> torch.Tensor:
    scheme = QuantScheme(bits=8, symmetric=True, group_size=None)
    scale, zero = group_params(w, scheme)
    return quantize_columns(w, scale[:, 0], zero[:, 0], scheme.maxq)


def test_smoothing_reduces_w8a8_error_on_outlier_channels():
    block = NormLinear(256, 128, outliers=6)
    train, test = torch.randn(4, 64, 256), torch.randn(4, 64, 256)
    with torch.no_grad():
        reference = block(test)
        unsmoothed = int8_per_token(block.norm(test)) @ w8_per_channel(block.fc.weight.float()).T
        method = SmoothQuant(SmoothQuantConfig(alpha=0.8))
        acc = method.accumulator("fc", block.fc)
        acc.add(block.norm(train).reshape(-1, 256))
        stats = method.compress_group(toy_context(block, train), {"fc": block.fc}, {"fc": acc})
        smoothed = int8_per_token(block.norm(test)) @ block.fc.weight.T  # weight is now the int8 grid values

    def err(y: torch.Tensor) -> float:
        return float((y - reference).norm() / reference.norm())

    assert stats["fc"]["smoothed_from"] == "norm"
    assert err(smoothed) < 0.3 * err(unsmoothed), (err(smoothed), err(unsmoothed))


def test_absmax_statistics_are_the_per_channel_max():
    method = SmoothQuant(SmoothQuantConfig())
    acc = method.accumulator("fc", torch.nn.Linear(8, 4))
    a, b = torch.randn(5, 8), torch.randn(3, 8) * 3
    acc.add(a)
    acc.add(b)
    assert torch.equal(acc.absmax.absmax, torch.cat([a, b]).abs().amax(dim=0)) and acc.tokens == 8


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.2, 1.5])
def test_alpha_outside_open_unit_interval_is_refused(alpha):
    with pytest.raises(UnicompError, match="alpha"):
        SmoothQuantConfig(alpha=alpha)


def test_defaults_and_fixed_bits():
    cfg = SmoothQuantConfig()
    assert cfg.alpha == 0.8 and cfg.weights == "gptq"  # the paper's recipe (llm-compressor's W8A8)
    assert cfg.scheme == QuantScheme(bits=8, symmetric=True, group_size=None)
    with pytest.raises(Exception):
        SmoothQuantConfig(bits=4)  # extra options are forbidden: W8A8 only


# ------------------------------------------------------------ end to end

@pytest.mark.parametrize("weights", ["gptq", "rtn"])
@pytest.mark.parametrize("make", [tiny_llama, tiny_qwen2])
def test_compress_model_smooths_norms_and_quantizes_every_linear_to_int8(make, weights):
    model, original = make(), make()
    randomize_norms(model)
    randomize_norms(original)
    ids = torch.tensor(random_ids(2, 12, seed=7))
    cal = type("Cal", (), {"samples": random_ids(6, 16), "record": {"n": 6}})()
    report = compress_model(model, SmoothQuant(SmoothQuantConfig(weights=weights)), cal, batch_size=4)
    anatomy = anatomy_of(model)
    for index, layer in enumerate(model.get_submodule(anatomy.layers)):
        for name in anatomy.linears:
            qw = layer.get_submodule(name).quantized
            assert qw.activations == "int8-per-token" and qw.scheme.bits == 8 and qw.scheme.group_size is None
            assert torch.equal(qw.dequantize(), layer.get_submodule(name).weight)
            assert on_grid(layer.get_submodule(name).weight, qw.scale, qw.zero, qw.scheme)
            smoothed = report.per_layer[f"{anatomy.layers}.{index}.{name}"]["smoothed_from"]
            assert (smoothed is None) == (name in ("self_attn.o_proj", "mlp.down_proj"))
        ref_layer = original.get_submodule(anatomy.layers)[index]
        assert not torch.equal(layer.input_layernorm.weight, ref_layer.input_layernorm.weight)
    assert report.summary["smoothed_linears"] == 5 * len(model.get_submodule(anatomy.layers))
    out, ref = logits(model, ids), logits(original, ids)
    assert float((out - ref).norm() / ref.norm()) < 0.05  # weight-only int8 in the fake-quantized model


class _SmoothOnly(SmoothQuant):
    """Smoothing alone, for the reference below."""

    def compress_group(self, ctx, linears, stats):
        with torch.inference_mode(False), torch.no_grad():
            self.smooth_layer(ctx, linears, stats)
        return {name: {} for name in linears}


def test_smoothquant_gptq_equals_gptq_run_on_the_explicitly_smoothed_model():
    """Reference for the first layer (whose inputs both runs share): smooth the model first, with the
    same scales, then run GPTQ W8 per-channel (one pass per layer, as the recipe) on it, whose Hessians
    come from the smoothed inputs themselves; ours transforms the unsmoothed Hessian by
    diag(1/s) H diag(1/s). The int8 weights agree (up to a rare rounding flip at a near-tie)."""
    from unicomp.compress.quant.gptq import GPTQ, GPTQConfig

    class OnePassGPTQ(GPTQ):
        true_sequential = False

    cal = type("Cal", (), {"samples": random_ids(8, 16), "record": {"n": 8}})()
    ours, reference, smooth_only = tiny_llama(), tiny_llama(), tiny_llama()
    for model in (ours, reference, smooth_only):
        randomize_norms(model)
    compress_model(ours, SmoothQuant(SmoothQuantConfig(weights="gptq")), cal, batch_size=4)
    compress_model(smooth_only, _SmoothOnly(SmoothQuantConfig()), cal, batch_size=4)
    reference.load_state_dict(smooth_only.state_dict())
    compress_model(reference, OnePassGPTQ(GPTQConfig(bits=8, group_size=None, symmetric=True)), cal, batch_size=4)
    a, b = ours.model.layers[0], reference.model.layers[0]
    assert torch.allclose(a.input_layernorm.weight, b.input_layernorm.weight, rtol=1e-5)
    assert torch.allclose(a.post_attention_layernorm.weight, b.post_attention_layernorm.weight, rtol=1e-5)
    for name in anatomy_of(ours).linears:
        qa, qb = a.get_submodule(name).quantized, b.get_submodule(name).quantized
        assert (qa.q == qb.q).float().mean() > 0.995, name
        assert torch.allclose(qa.scale, qb.scale, rtol=1e-4)
        assert qa.activations == "int8-per-token"
