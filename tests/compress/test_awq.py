"""AWQ against RTN and independent computations, on a toy norm -> linear block and tiny real models."""

from __future__ import annotations

import contextlib

import pytest
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from tiny_models import logits, random_ids, tiny_llama, tiny_qwen2, tiny_tokenizer
from unicomp.compress.apply import compress_model
from unicomp.compress.base import LayerContext
from unicomp.compress.quant.awq import AWQ, AWQConfig, GroupOutputError, clip_ratios, fake_quantize, sample_sequences
from unicomp.compress.quant.grid import QuantScheme, dequantize, group_params, on_grid, quantize
from unicomp.compress.quant.rtn import RTN, QuantConfig
from unicomp.compress.sequential import capture_layer_inputs
from unicomp.errors import UnicompError
from unicomp.models.anatomy import Anatomy, Smoothing, anatomy_of


def rel_error(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y - ref).norm() / ref.norm())


# ------------------------------------------------------------ toy norm -> linear with outlier channels

class NormLinear(torch.nn.Module):
    """An RMSNorm whose weight makes a few channels 50x larger (salient inputs), feeding one linear."""

    def __init__(self, dim: int = 256, out: int = 128, outliers: int = 6, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.norm = LlamaRMSNorm(dim)
        self.fc = torch.nn.Linear(dim, out, bias=False)
        with torch.no_grad():
            self.norm.weight[torch.randperm(dim)[:outliers]] = 50.0

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(h))


TOY = Anatomy(layers="", embed_tokens="", final_norm="", lm_head="", linear_groups=(("fc",),),
              smoothing=(Smoothing("norm", ("fc",), "fc"),))


def awq_on_toy(block: NormLinear, train: torch.Tensor, **options) -> dict:
    """What the sequential engine does for one layer: accumulate mean|x| of fc's inputs, then compress_group."""
    method = AWQ(AWQConfig(group_size=32, **options))
    acc = method.accumulator("fc", block.fc)
    with torch.no_grad():
        acc.add(block.norm(train).reshape(-1, train.shape[-1]))
    ctx = LayerContext(layer=block, index=0, prefix="toy", anatomy=TOY, hidden=[train], kwargs=[{}],
                       autocast=contextlib.nullcontext)
    return method.compress_group(ctx, {"fc": block.fc}, {"fc": acc})["fc"]


@pytest.mark.parametrize("clip", [True, False])
def test_awq_beats_rtn_on_salient_channels_and_stays_on_the_grid(clip):
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(4, 64, 256, generator=g), torch.randn(4, 64, 256, generator=g)
    awq, rtn = NormLinear(), NormLinear()
    with torch.no_grad():
        reference = awq(test)
        RTN(QuantConfig(group_size=32, symmetric=False)).compress_linear("fc", rtn.fc, None)
    stats = awq_on_toy(awq, train, clip=clip, grid=10)
    with torch.no_grad():
        awq_err, rtn_err = rel_error(awq(test), reference), rel_error(rtn(test), reference)
    assert awq_err < 0.6 * rtn_err, (awq_err, rtn_err)
    assert stats["awq_alpha"] > 0 and stats["awq_loss"] <= stats["rtn_loss"]
    qw = awq.fc.quantized
    assert qw.scheme == QuantScheme(bits=4, symmetric=False, group_size=32) and qw.activations is None
    assert torch.equal(qw.dequantize(), awq.fc.weight)
    assert on_grid(awq.fc.weight, qw.scale, qw.zero, qw.scheme)
    assert int(qw.q.min()) >= 0 and int(qw.q.max()) <= 15


def test_without_clipping_and_at_alpha_zero_awq_is_rtn():
    """grid=1 searches only alpha = 0 (s = 1): no fold, no clip, exactly RTN's codes."""
    g = torch.Generator().manual_seed(1)
    train = torch.randn(2, 32, 256, generator=g)
    awq, rtn = NormLinear(), NormLinear()
    awq_on_toy(awq, train, clip=False, grid=1)
    RTN(QuantConfig(group_size=32, symmetric=False)).compress_linear("fc", rtn.fc, None)
    assert torch.equal(awq.fc.quantized.q, rtn.fc.quantized.q) and torch.equal(awq.norm.weight, rtn.norm.weight)


def test_fake_quantize_equals_the_grid_functions():
    w = torch.randn(16, 128) * torch.exp(torch.randn(128))
    for scheme in (QuantScheme(4, False, 32), QuantScheme(3, True, 64), QuantScheme(8, True, None)):
        scale, zero = group_params(w, scheme)
        expected = dequantize(quantize(w, scale, zero, scheme), scale, zero, group_size=scheme.group_size)
        assert torch.equal(fake_quantize(w, scheme), expected)


@pytest.mark.parametrize("tokens", [8, 200])  # fewer tokens than group columns (direct) and more (Gram)
def test_group_output_error_equals_brute_force(tokens):
    g = torch.Generator().manual_seed(2)
    x, d = torch.randn(tokens, 128, generator=g), torch.randn(12, 128, generator=g)
    brute = torch.stack([(x[:, j * 32:(j + 1) * 32] @ d[:, j * 32:(j + 1) * 32].T).pow(2).mean(dim=0)
                         for j in range(4)], dim=1)
    assert torch.allclose(GroupOutputError(x, 32)(d), brute, rtol=1e-4, atol=1e-5)


def test_clip_ratios_follow_autoawq():
    assert clip_ratios(20) == pytest.approx([1 - i / 20 for i in range(10)])
    assert clip_ratios(1) == [1.0]


# ------------------------------------------------------------ calibration subsample

def tiny_gemma3() -> Gemma3ForCausalLM:
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=len(tiny_tokenizer()), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                           sliding_window=4, layer_types=["sliding_attention"], bos_token_id=0, eos_token_id=0,
                           pad_token_id=1)
    return Gemma3ForCausalLM(cfg).eval()


def test_sampled_sequences_replay_exactly_as_rows_of_their_batch():
    """Sliding-window Gemma 3 has a per-row mask: subsampled rows must get their rows of it."""
    model = tiny_gemma3()
    batches = [torch.tensor(random_ids(3, 10, seed=4)), torch.tensor(random_ids(3, 10, seed=5))]
    hidden, kwargs = capture_layer_inputs(model, batches)
    picked = sample_sequences(hidden, kwargs[0], max_tokens=25)
    assert sum(h.shape[0] * h.shape[1] for h, _ in picked) == 20  # 2 of 6 sequences: ends of the evenly spaced range
    assert kwargs[0][0]["attention_mask"].shape[0] == 3 and picked[0][1]["attention_mask"].shape[0] == 1
    layer = model.model.layers[0]
    with torch.no_grad():
        for (h, kw), (full, full_kw), row in zip(picked, zip(hidden, kwargs[0]), (0, 2)):
            out = layer(h, **kw)
            assert out.shape == (1, 10, 64)
            assert torch.allclose(out, layer(full, **full_kw)[row:row + 1], atol=1e-6)
    assert sample_sequences(hidden, kwargs[0], max_tokens=None) == list(zip(hidden, kwargs[0]))


# ------------------------------------------------------------ config

def test_defaults_are_w4_asymmetric_groups_of_128():
    cfg = AWQConfig()
    assert (cfg.bits, cfg.group_size, cfg.symmetric) == (4, 128, False)
    assert (cfg.grid, cfg.clip, cfg.search_tokens) == (20, True, 4096)
    for bad in ({"grid": 0}, {"search_tokens": 0}, {"bits": 5}):
        with pytest.raises(UnicompError):
            AWQConfig(**bad)


def test_group_size_must_divide_every_linear_before_any_work():
    cal = type("Cal", (), {"samples": random_ids(2, 8), "record": {}})()
    with pytest.raises(UnicompError, match="does not divide"):
        compress_model(tiny_llama(), AWQ(AWQConfig(group_size=48)), cal)


def test_single_linears_are_refused():
    with pytest.raises(UnicompError, match="whole decoder layers"):
        AWQ(AWQConfig()).compress_linear("fc", torch.nn.Linear(4, 4), None)


# ------------------------------------------------------------ end to end

def with_outlier_channels(model: torch.nn.Module) -> torch.nn.Module:
    """Scale a few norm channels 20x so attention and MLP inputs have salient channels, as real LLMs do."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for layer in model.model.layers:
            for norm in (layer.input_layernorm, layer.post_attention_layernorm):
                norm.weight[torch.randperm(norm.weight.numel(), generator=g)[:4]] *= 20
    return model


@pytest.mark.parametrize("make", [tiny_llama, tiny_qwen2])
def test_compress_model_quantizes_every_linear_and_beats_rtn(make):
    original, awq, rtn = (with_outlier_channels(make()) for _ in range(3))
    cal = type("Cal", (), {"samples": random_ids(4, 16), "record": {"n": 4}})()
    ids = torch.tensor(random_ids(2, 12, seed=7))
    report = compress_model(awq, AWQ(AWQConfig(group_size=32, grid=10)), cal, batch_size=4)
    compress_model(rtn, RTN(QuantConfig(group_size=32, symmetric=False)), cal)
    anatomy = anatomy_of(awq)
    for index, layer in enumerate(awq.get_submodule(anatomy.layers)):
        for name in anatomy.linears:
            linear = layer.get_submodule(name)
            qw = linear.quantized
            assert torch.equal(qw.dequantize(), linear.weight) and on_grid(linear.weight, qw.scale, qw.zero, qw.scheme)
            stats = report.per_layer[f"{anatomy.layers}.{index}.{name}"]
            assert (stats["clip_mean_ratio"] is None) == name.endswith(("q_proj", "k_proj"))
            assert (stats["awq_alpha"] is None) == (name == "self_attn.o_proj")  # GQA: v -> o not smoothed
    assert report.calibration == {"n": 4} and 0 <= report.summary["mean_alpha"] < 1
    ref = logits(original, ids)
    awq_err, rtn_err = rel_error(logits(awq, ids), ref), rel_error(logits(rtn, ids), ref)
    assert awq_err < 0.25 and awq_err < 0.9 * rtn_err, (awq_err, rtn_err)


def test_gemma3_scales_fold_through_one_plus_weight_norms():
    """Gemma 3: (1 + w) norms and pre_feedforward_layernorm feeding the MLP; every linear ends on its grid."""
    model, original = tiny_gemma3(), tiny_gemma3()
    cal = type("Cal", (), {"samples": random_ids(4, 16), "record": {}})()
    report = compress_model(model, AWQ(AWQConfig(group_size=32, grid=5)), cal)
    layer = model.model.layers[0]
    assert report.per_layer["model.layers.0.mlp.up_proj"]["awq_alpha"] is not None
    for name in anatomy_of(model).linears:
        linear = layer.get_submodule(name)
        assert on_grid(linear.weight, linear.quantized.scale, linear.quantized.zero, linear.quantized.scheme)
    ids = torch.tensor(random_ids(2, 12, seed=7))
    assert rel_error(logits(model, ids), logits(original, ids)) < 0.5
