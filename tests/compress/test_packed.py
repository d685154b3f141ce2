"""Packed integer linears against independent float64 computations, with the real CPU kernels."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import tiny_models
from unicomp.compress.apply import compress_model
from unicomp.compress.quant.grid import QuantizedWeight, QuantScheme, on_grid
from unicomp.compress.quant.packed import (DequantLinear, Int4PackedLinear, Int8WeightLinear, PackedLinear,
                                           W8A8Linear, choose_module, cpu_supports_bf16, default_compute_dtype,
                                           linear_weight_bytes, pack_linear, pack_model, quantize_per_token)
from unicomp.compress.registry import make_method
from unicomp.errors import UnicompError

CPU = torch.device("cpu")
DTYPES = [torch.float32, torch.bfloat16]
# Bound on |y - y_exact| relative to sum_k |x_k| |w_k| (the magnitude of the dot product's terms):
# fp32 accumulation over a few hundred terms, and three bf16 roundings (input, weight/zero term, output).
REL_BOUND = {torch.float32: 1e-5, torch.bfloat16: 2.0 ** -6}


def random_qw(out_f: int, in_f: int, bits: int, symmetric: bool, group_size: int | None, seed: int = 0,
              activations: str | None = None, g_idx: torch.Tensor | None = None) -> QuantizedWeight:
    """A valid grid with random codes, bf16-representable scales and integer zeros (not fit to any weight)."""
    g = torch.Generator().manual_seed(seed)
    groups = 1 if group_size is None else in_f // group_size
    maxq = 2 ** bits - 1
    q = torch.randint(0, maxq + 1, (out_f, in_f), generator=g, dtype=torch.int32)
    scale = (torch.rand(out_f, groups, generator=g) * 0.05 + 1e-3).to(torch.bfloat16).float()
    if symmetric:
        zero = torch.full((out_f, groups), float(2 ** (bits - 1)))
    else:
        zero = torch.randint(0, maxq + 1, (out_f, groups), generator=g).float()
    scheme = QuantScheme(bits=bits, symmetric=symmetric, group_size=group_size)
    return QuantizedWeight(q=q, scale=scale, zero=zero, scheme=scheme, g_idx=g_idx, activations=activations)


def act_order_g_idx(in_f: int, group_size: int, seed: int = 0) -> torch.Tensor:
    """GPTQ act-order without static groups: groups follow a random processing order of the columns."""
    order = torch.randperm(in_f, generator=torch.Generator().manual_seed(seed))
    g_idx = torch.empty(in_f, dtype=torch.int32)
    g_idx[order] = (torch.arange(in_f) // group_size).to(torch.int32)
    return g_idx


def inputs(rows: int, in_f: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, in_f, generator=g) * torch.exp(torch.randn(in_f, generator=g))


def assert_matches_dequant(module: PackedLinear, qw: QuantizedWeight, x: torch.Tensor, dtype: torch.dtype,
                           bias: torch.Tensor | None = None) -> torch.Tensor:
    """Module output vs float64 dequantize-then-matmul, within the rounding of `dtype`.

    W8A8 also rounds each activation to its token's int8 grid: at most half a step, absmax / 254.
    """
    y = module(x)
    assert y.dtype == x.dtype and y.shape == (*x.shape[:-1], qw.q.shape[0])
    assert torch.isfinite(y).all()
    w = qw.dequantize().double()
    flat = x.reshape(-1, x.shape[-1]).double()
    exact = flat @ w.T + (0 if bias is None else bias.double())
    # the int4 kernel's zero term (8 - z) * s is rounded on its own, so bound with its magnitude too
    g_idx = qw.scheme.default_g_idx(qw.q.shape[1]) if qw.g_idx is None else qw.g_idx.long()
    magnitude = flat.abs() @ (w.abs() + 8 * qw.scale.double()[:, g_idx]).T
    err = (y.reshape(flat.shape[0], -1).double() - exact).abs()
    bound = REL_BOUND[dtype] * magnitude + 1e-7
    if module.activations == "int8-per-token":
        bound = bound + (flat.abs().amax(dim=1, keepdim=True) / 254) * w.abs().sum(dim=1)
    assert bool((err <= bound).all()), f"max excess {(err - bound).max().item():.3g}"
    return y


def assert_same_qw(a: QuantizedWeight, b: QuantizedWeight) -> None:
    assert torch.equal(a.q, b.q) and a.q.dtype == b.q.dtype == torch.int32
    assert torch.equal(a.scale, b.scale) and torch.equal(a.zero, b.zero)
    assert a.scheme == b.scheme and a.activations == b.activations
    assert (a.g_idx is None) == (b.g_idx is None)
    if a.g_idx is not None:
        assert torch.equal(a.g_idx, b.g_idx) and a.g_idx.dtype == b.g_idx.dtype


def test_compute_dtype_detection():
    flags = open("/proc/cpuinfo").read()
    assert cpu_supports_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)
    assert default_compute_dtype("cpu") == (torch.bfloat16 if cpu_supports_bf16() else torch.float32)


# (a) the layout mapping is exact -------------------------------------------------------------------------

@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("bits", [2, 3, 4])
@pytest.mark.parametrize("symmetric", [True, False])
def test_int4_layout_is_exact(bits, symmetric, group_size):
    qw = random_qw(48, 256, bits, symmetric, group_size, seed=bits * 1000 + group_size)
    module = Int4PackedLinear.from_quantized(qw, None, torch.float32)
    w_t = module(torch.eye(256))  # row i = column i of the weight, as the kernel computes it
    expected = qw.dequantize().T
    assert torch.allclose(w_t, expected, rtol=1e-6, atol=0)
    assert on_grid(w_t.T, qw.scale, qw.zero, qw.scheme)


def test_int4_per_channel_reuses_the_scale_over_kernel_groups():
    qw = random_qw(32, 192, 4, False, None, seed=3)  # group of 192 = 3 kernel groups of 64
    module = Int4PackedLinear.from_quantized(qw, None, torch.float32)
    assert (module.group_size, module.repeat) == (64, 3)
    assert torch.allclose(module(torch.eye(192)), qw.dequantize().T, rtol=1e-6, atol=0)
    assert_same_qw(module.to_quantized_weight(), qw)


# (b) every module kind against dequantize-then-matmul, on fresh inputs -----------------------------------

KINDS = {
    "int4": (Int4PackedLinear, dict(bits=4, symmetric=False, group_size=32)),
    "int8": (Int8WeightLinear, dict(bits=8, symmetric=True, group_size=None)),
    "w8a8": (W8A8Linear, dict(bits=8, symmetric=True, group_size=None, activations="int8-per-token")),
    "dequant-8bit-groups": (DequantLinear, dict(bits=8, symmetric=False, group_size=64)),
    "dequant-3bit-odd-rows": (DequantLinear, dict(bits=3, symmetric=True, group_size=32)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kind", list(KINDS))
def test_module_matches_dequantize_then_matmul(kind, dtype):
    cls, spec = KINDS[kind]
    out_f = 40 if kind == "dequant-3bit-odd-rows" else 48
    qw = random_qw(out_f, 128, seed=7, **spec)
    original = copy.deepcopy(qw)
    bias = torch.randn(out_f)
    chosen, _ = choose_module(qw, dtype, CPU)
    assert chosen is cls
    module = cls.from_quantized(qw, bias, dtype)
    # poison the quantizer's tensors: the module must own its storage
    qw.q.fill_(0)
    qw.scale.fill_(float("nan"))
    qw.zero.fill_(0)
    x1 = inputs(6, 128, seed=1).reshape(2, 3, 128)
    y1 = assert_matches_dequant(module, original, x1, dtype, bias)
    x2 = inputs(6, 128, seed=2).reshape(2, 3, 128)
    y2 = assert_matches_dequant(module, original, x2, dtype, bias)
    assert not torch.allclose(y1, y2)  # fresh inputs give fresh outputs (no cached result)
    assert module(x2.bfloat16()).dtype == torch.bfloat16
    assert_same_qw(module.to_quantized_weight(), original)


# (c) W8A8 against an independent float64 reference -------------------------------------------------------

@pytest.mark.parametrize("rows", [1, 5, 33])
def test_w8a8_reference(rows):
    qw = random_qw(64, 96, 8, True, None, seed=rows, activations="int8-per-token")
    bias = torch.randn(64)
    module = W8A8Linear.from_quantized(qw, bias, torch.bfloat16)
    for seed in (11, 12):
        x = inputs(rows, 96, seed=seed)
        if rows > 1:
            x[0] = 0.0  # an all-zero token must give the bias, not NaN
        x64 = x.double()
        a = x64.abs().amax(dim=1, keepdim=True) / 127
        ratio = x64 / a.clamp(min=1e-300)
        codes = ratio.round().clamp(-127, 127)
        w_codes = qw.q.double() - 128
        ref = (codes @ w_codes.T) * a * qw.scale.double().T + bias.double()
        y = module(x).double()
        # fp32 and float64 may round a code differently only at an exact .5 tie: allow one step there
        near_tie = ((ratio - ratio.floor() - 0.5).abs() < 1e-4).double()
        slack = (near_tie @ w_codes.abs().T) * a * qw.scale.double().T
        tol = 1e-5 * (codes.abs() @ w_codes.abs().T) * a * qw.scale.double().T + slack + 1e-6
        assert bool(((y - ref).abs() <= tol).all())
        assert torch.isfinite(y).all()
        mine, scale = quantize_per_token(x)
        assert mine.dtype == torch.int8 and int(mine.abs().max()) <= 127
        assert bool(((mine.double() - codes).abs() <= near_tie).all())


# (d) act-order g_idx: permuted columns ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_g_idx_permutation(dtype):
    g_idx = act_order_g_idx(128, 32, seed=5)
    qw = random_qw(32, 128, 4, False, 32, seed=5, g_idx=g_idx)
    module, reason = pack_linear(_linear_with(qw), dtype)
    assert isinstance(module, Int4PackedLinear) and module.perm is not None and reason is None
    x = inputs(7, 128, seed=9)
    assert_matches_dequant(module, qw, x, dtype)
    if dtype == torch.float32:
        assert torch.allclose(module(torch.eye(128)), qw.dequantize().T, rtol=1e-6, atol=0)
    assert_same_qw(module.to_quantized_weight(), qw)


def test_unequal_groups_fall_back_to_dequant():
    g_idx = act_order_g_idx(128, 32, seed=6)
    g_idx[g_idx == 3] = 2  # group 2 has 64 members, group 3 none
    qw = random_qw(32, 128, 4, True, 32, seed=6, g_idx=g_idx)
    module, reason = pack_linear(_linear_with(qw), torch.float32)
    assert isinstance(module, DequantLinear) and "unequal" in reason
    assert_matches_dequant(module, qw, inputs(4, 128, seed=1), torch.float32)
    assert_same_qw(module.to_quantized_weight(), qw)


# kernel constraints become fallbacks, never crashes ------------------------------------------------------

@pytest.mark.parametrize("spec, dtype, reason", [
    (dict(out_f=40, in_f=128, bits=4, symmetric=True, group_size=32), torch.bfloat16, "divisible by 16"),
    (dict(out_f=32, in_f=128, bits=4, symmetric=True, group_size=16), torch.bfloat16, "multiple of 32"),
    (dict(out_f=32, in_f=200, bits=8, symmetric=True, group_size=None), torch.bfloat16, "in_features divisible by 16"),
    (dict(out_f=32, in_f=128, bits=8, symmetric=False, group_size=None), torch.float32, "symmetric"),
])
def test_refused_shapes_fall_back(spec, dtype, reason):
    spec = dict(spec)
    out_f, in_f = spec.pop("out_f"), spec.pop("in_f")
    qw = random_qw(out_f, in_f, seed=2, **spec)
    module, why = pack_linear(_linear_with(qw), dtype)
    assert isinstance(module, DequantLinear) and reason in why
    assert_matches_dequant(module, qw, inputs(3, in_f, seed=4), dtype)
    kernel = {4: Int4PackedLinear, 8: Int8WeightLinear}[spec["bits"]]
    with pytest.raises(UnicompError, match=reason):
        kernel.from_quantized(qw, None, dtype)


def test_buffers_keep_dtype_when_model_is_cast():
    qw = random_qw(32, 64, 8, True, None, seed=1, activations="int8-per-token")
    module = W8A8Linear.from_quantized(qw, torch.randn(32), torch.float32)
    before = {n: b.dtype for n, b in module.named_buffers()}
    module.to(torch.bfloat16)
    assert {n: b.dtype for n, b in module.named_buffers()} == before
    assert_same_qw(module.to_quantized_weight(), qw)


# (e) whole model: tiny llama after RTN ------------------------------------------------------------------

@pytest.fixture(scope="module")
def rtn_llama():
    model = tiny_models.tiny_llama(seed=0)
    compress_model(model, make_method("rtn", {"bits": 4, "group_size": 32}))
    ids = torch.randint(2, 300, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fake_logits = [model(ids).logits, model(ids.flip(1)).logits]
    return model, ids, fake_logits


@pytest.mark.parametrize("dtype, atol", [("float32", 1e-5), ("bfloat16", 0.01)])  # relative to max |logit|
def test_pack_model_tiny_llama(rtn_llama, dtype, atol):
    fake, ids, fake_logits = rtn_llama
    bf16_bytes = linear_weight_bytes(copy.deepcopy(fake).to(torch.bfloat16))
    model = copy.deepcopy(fake)
    summary = pack_model(model, dtype)
    assert summary == {"packed": 14, "modules": {"Int4PackedLinear": 14}, "compute_dtype": dtype, "fallbacks": {},
                       "shared_activation_codes": 0}  # weight-only: nothing to share
    assert not any(isinstance(m, nn.Linear) for m in model.model.layers.modules())
    with torch.no_grad():
        logits = [model(ids).logits, model(ids.flip(1)).logits]  # two inputs: no stale outputs
    for got, want in zip(logits, fake_logits):
        assert torch.isfinite(got).all()
        assert (got - want).abs().max().item() < atol * want.abs().max().item()
    assert (fake_logits[0] - fake_logits[1]).abs().max().item() > 3 * atol * fake_logits[0].abs().max().item()
    ratio = linear_weight_bytes(model) / bf16_bytes
    assert ratio < (0.35 if dtype == "bfloat16" else 0.45), ratio
    # export sees exactly what the quantizer produced
    for name, module in model.model.layers.named_modules():
        if isinstance(module, PackedLinear):
            assert_same_qw(module.to_quantized_weight(), fake.model.layers.get_submodule(name).quantized)


def test_pack_model_mixed_kinds_and_errors():
    model = tiny_models.tiny_qwen2(seed=1)  # q/k/v have biases
    compress_model(model, make_method("rtn", {"bits": 8, "group_size": None}))
    for layer in model.model.layers:
        layer.mlp.down_proj.quantized.activations = "int8-per-token"
    ids = torch.randint(2, 300, (1, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fake_logits = model(ids).logits
    summary = pack_model(model, "bfloat16")
    assert summary["modules"] == {"Int8WeightLinear": 12, "W8A8Linear": 2}
    with torch.no_grad():
        logits = model(ids).logits
    assert (logits - fake_logits).abs().max().item() < 0.2
    with pytest.raises(UnicompError, match="no quantized linear"):
        pack_model(model)
    with pytest.raises(UnicompError, match="unknown packed compute dtype"):
        pack_model(tiny_models.tiny_llama(), "int3")  # refused before looking for quantized linears


def test_w8a8_siblings_quantize_their_shared_input_once_and_never_reuse_stale_codes():
    """q/k/v and gate/up share one set of int8 activation codes: same logits as quantizing per linear."""
    model = tiny_models.tiny_llama(seed=2)
    compress_model(model, make_method("rtn", {"bits": 8, "group_size": None}))
    for module in model.modules():
        if getattr(module, "quantized", None) is not None:
            module.quantized.activations = "int8-per-token"
    summary = pack_model(model, "bfloat16")
    layers = len(model.model.layers)
    assert summary["shared_activation_codes"] == 2 * layers  # one for q/k/v, one for gate/up, per layer
    attn = model.model.layers[0].self_attn
    assert attn.q_proj.shared_codes is attn.v_proj.shared_codes is not None
    assert attn.o_proj.shared_codes is None
    unshared = copy.deepcopy(model)
    for module in unshared.modules():
        if isinstance(module, W8A8Linear):
            module.shared_codes = None
    g = torch.Generator().manual_seed(4)
    inputs = [torch.randint(2, 300, (2, 12), generator=g) for _ in range(3)]
    with torch.no_grad():
        for ids in inputs:  # fresh inputs one after another: a stale entry would show up here
            assert torch.equal(model(ids).logits, unshared(ids).logits)
    # the cache holds nothing between calls, and a tensor modified in place is re-quantized
    shared = attn.q_proj.shared_codes
    assert shared._source is None
    x = torch.randn(3, 64)
    codes = [shared.codes(x, lead=i == 0)[0] for i in range(3)]  # one call of the group: q, k, v
    assert codes[0] is codes[2] and shared._source is None
    x.mul_(-1)  # same storage, new content: the next call must not see the old codes
    assert torch.equal(shared.codes(x, lead=True)[0], -codes[0])
    x.mul_(-1)  # a call cut short after q: the next call's q still quantizes afresh
    assert torch.equal(shared.codes(x, lead=True)[0], codes[0])
    assert attn.q_proj.leads_shared_codes and not attn.k_proj.leads_shared_codes


# (f) round trip -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("bits, symmetric, group_size, shape", [
    (4, True, 128, (64, 256)), (3, False, 32, (16, 96)), (2, False, None, (48, 128)), (4, False, 64, (80, 576)),
])
def test_int4_round_trip(dtype, bits, symmetric, group_size, shape):
    qw = random_qw(*shape, bits, symmetric, group_size, seed=shape[1],
                   g_idx=torch.arange(shape[1]) // (group_size or shape[1]))
    module = Int4PackedLinear.from_quantized(qw, None, dtype)
    assert_same_qw(module.to_quantized_weight(), qw)


def _linear_with(qw: QuantizedWeight) -> nn.Linear:
    out_f, in_f = qw.q.shape
    linear = nn.Linear(in_f, out_f, bias=False)
    linear.quantized = qw
    return linear


def test_malformed_weights_are_refused():
    qw = random_qw(32, 64, 4, True, 32, seed=1, g_idx=torch.full((64,), 2))  # only groups 0 and 1 exist
    with pytest.raises(UnicompError, match="g_idx"):
        pack_linear(_linear_with(qw), torch.float32)
    qw = random_qw(32, 64, 4, True, 32, seed=1)
    with pytest.raises(UnicompError, match="weight-only"):
        Int4PackedLinear.from_quantized(QuantizedWeight(qw.q, qw.scale, qw.zero, qw.scheme,
                                                        activations="int8-per-token"), None, torch.float32)


def test_linear_weight_bytes_counts_shared_storage_once():
    model = tiny_models.tiny_llama(seed=2)
    layer = model.model.layers[0]
    before = linear_weight_bytes(model)
    layer.self_attn.o_proj.weight = layer.self_attn.q_proj.weight  # same [64, 64] storage twice
    assert linear_weight_bytes(model) == before - 64 * 64 * 4
