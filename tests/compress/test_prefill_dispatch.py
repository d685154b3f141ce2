"""Prefill dispatch of the weight-only packed linears: from PREFILL_ROWS tokens on, the weight is
dequantized and multiplied by a dense GEMM; below, the packed kernel runs. The dequantized int4
weight is exactly what the int4 kernel computes with (read back through the kernel itself on an
identity input), and both paths give the same outputs up to the compute dtype's rounding."""

from __future__ import annotations

import pytest
import torch

from unicomp.compress.quant import packed as P
from unicomp.compress.quant.grid import QuantizedWeight, QuantScheme


def _qw(n: int, k: int, bits: int, group: int | None, seed: int = 0, symmetric: bool = True) -> QuantizedWeight:
    g = torch.Generator().manual_seed(seed)
    groups = 1 if group is None else k // group
    scale = (torch.rand(n, groups, generator=g) * 0.02 + 0.001).to(torch.bfloat16).float()
    zero = (torch.full((n, groups), float(2 ** (bits - 1))) if symmetric
            else torch.randint(0, 2 ** bits, (n, groups), generator=g).float())
    q = torch.randint(0, 2 ** bits, (n, k), generator=g, dtype=torch.int32)
    return QuantizedWeight(q=q, scale=scale, zero=zero, scheme=QuantScheme(bits=bits, group_size=group, symmetric=symmetric))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_int4_dense_weight_is_the_kernels_weight_and_prefill_matches(dtype):
    module = P.Int4PackedLinear.from_quantized(_qw(128, 256, 4, 64), compute_dtype=dtype)
    assert module.can_dequantize()
    eye = torch.eye(module.in_features, dtype=dtype)
    kernel_weight = P._int4_mm(eye, module.packed, module.group_size, module.scale_and_zeros).t()
    assert torch.equal(module.dense_weight(), kernel_weight)  # bit for bit
    assert module.dense_weight().shape == (module.out_features, module.in_features)
    x = torch.randn(P.PREFILL_ROWS + 5, module.in_features, generator=torch.Generator().manual_seed(1)).to(dtype)
    dispatched = module(x)
    kernel = P._int4_mm(x, module.packed, module.group_size, module.scale_and_zeros)
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
    assert torch.allclose(dispatched.float(), kernel.float(), rtol=tol, atol=tol * kernel.float().abs().max().item())
    one = module(x[:1])  # decode keeps the packed kernel: identical to calling it
    assert torch.equal(one, P._int4_mm(x[:1].contiguous(), module.packed, module.group_size, module.scale_and_zeros))


def test_int8_weight_only_prefill_matches_the_kernel():
    module = P.Int8WeightLinear.from_quantized(_qw(64, 128, 8, None), compute_dtype=torch.bfloat16)
    x = torch.randn(P.PREFILL_ROWS, 128, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
    kernel = torch.ops.aten._weight_int8pack_mm(x, module.weight_int8, module.scales)
    dispatched = module(x)
    assert torch.allclose(dispatched.float(), kernel.float(), rtol=2e-2, atol=2e-2 * kernel.float().abs().max().item())


def test_the_cpu_int4_layout_is_checked_against_the_packer():
    assert P._cpu_int4_layout_known()  # the reshape reading agrees with the layout learned from the packer


@pytest.mark.parametrize(("n", "k", "bits", "group", "symmetric"), [
    (192, 576, 4, 64, False),  # SmolLM2's k/v shape, asymmetric zero points
    (128, 512, 4, 512, True),  # one group spanning two kernel groups of 256 (scales repeated)
    (64, 256, 3, 32, False),  # 3-bit codes, the smallest kernel group
])
def test_int4_dense_weight_is_the_textbook_dequantization_and_the_kernels(n, k, bits, group, symmetric):
    """The fast dequantization (fp32 against contiguous per-group scales, written transposed) gives
    exactly the weight of the formula (q - z) * s rounded once to bf16, and the kernel's own."""
    qw = _qw(n, k, bits, group, seed=3, symmetric=symmetric)
    module = P.Int4PackedLinear.from_quantized(qw, compute_dtype=torch.bfloat16)
    textbook = ((qw.q.float() - qw.zero.repeat_interleave(group, 1)) * qw.scale.repeat_interleave(group, 1))
    kernel_weight = P._int4_mm(torch.eye(k, dtype=torch.bfloat16), module.packed, module.group_size,
                               module.scale_and_zeros).t()
    assert torch.equal(module.dense_weight(), kernel_weight)
    # the kernel stores zero_term = (8 - z) * s rounded to bf16 (unit roundoff 2^-8: error <= 8 s 2^-8)
    # and the weight is rounded once more (<= 15 s 2^-8): the textbook value agrees within 23 s 2^-8 < s / 8
    assert torch.allclose(module.dense_weight().float(), textbook, rtol=0, atol=float(qw.scale.max()) / 8)


def test_w8a8_long_prefill_in_row_chunks_equals_one_pass():
    """Past W8A8_CHUNK_ELEMENTS the int8 matmul runs in row chunks written straight into the output's
    dtype; per-token quantization and integer products are row-independent, so it is bit-identical."""
    qw = _qw(96, 64, 8, None, seed=4)
    qw.activations = P.PER_TOKEN
    module = P.W8A8Linear.from_quantized(qw)
    rows = P.W8A8_CHUNK_ELEMENTS // module.out_features
    x = torch.randn(2 * rows + 7, 64, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    codes, scale = P.quantize_per_token(x)
    one_pass = ((P._int_mm(codes, module.weight_int8.t()) * scale) * module.weight_scale).to(torch.bfloat16)
    assert torch.equal(module(x), one_pass)


def test_per_token_quantization_of_long_inputs_in_row_chunks_equals_one_pass():
    k = 48
    rows = P.W8A8_CHUNK_ELEMENTS // k
    x = torch.randn(2 * rows + 3, k, generator=torch.Generator().manual_seed(6)).to(torch.bfloat16)
    x[rows + 1] = 0  # an all-zero row inside the second chunk keeps the tiny scale and zero codes
    codes, scale = P.quantize_per_token(x)
    one_codes, one_scale = P._quantize_rows(x)
    assert torch.equal(codes, one_codes) and torch.equal(scale, one_scale)
    assert not codes[rows + 1].any() and scale[rows + 1].item() == torch.finfo(torch.float32).tiny
