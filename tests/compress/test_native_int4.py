"""The native int4 dequantization (compress/quant/native.py): built with the system C compiler on
first use, bit-identical to the PyTorch version for every dtype and shape the prefill sees, and
switched off cleanly (PyTorch fallback) by UNICOMP_NATIVE_KERNELS=0."""

from __future__ import annotations

import shutil

import pytest
import torch

from unicomp.compress.quant import native
from unicomp.compress.quant import packed as P
from unicomp.compress.quant.grid import QuantizedWeight, QuantScheme

needs_compiler = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                    reason="no C compiler: unicomp uses the PyTorch fallback")


def _module(n: int, k: int, group: int, dtype: torch.dtype, seed: int, symmetric: bool) -> P.Int4PackedLinear:
    g = torch.Generator().manual_seed(seed)
    # scales across many binades (1e-4 .. 1), so the fp32 -> bf16 rounding meets ties and carries
    scale = torch.exp(torch.empty(n, k // group).uniform_(-9, 0, generator=g)).to(torch.bfloat16).float()
    zero = torch.full_like(scale, 8.0) if symmetric else torch.randint(0, 16, scale.shape, generator=g).float()
    q = torch.randint(0, 16, (n, k), generator=g, dtype=torch.int32)
    qw = QuantizedWeight(q=q, scale=scale, zero=zero, scheme=QuantScheme(bits=4, group_size=group, symmetric=symmetric))
    return P.Int4PackedLinear.from_quantized(qw, compute_dtype=dtype)


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize(("n", "k", "group", "symmetric"), [
    (1536, 576, 64, True),  # SmolLM2's gate/up
    (576, 1536, 128, False),  # its down projection, asymmetric zeros
    (192, 576, 32, False),  # k/v, the smallest kernel group
])
def test_native_dequantization_is_the_pytorch_one_bit_for_bit(n, k, group, symmetric, dtype):
    module = _module(n, k, group, dtype, seed=n + k, symmetric=symmetric)
    dense = native.int4_dequantize(module.packed, module.scale_and_zeros, n, k, module.group_size)
    assert dense is not None, "the native kernel did not build although a C compiler is present"
    assert dense.dtype == dtype and dense.shape == (k, n)
    assert torch.equal(dense.t(), module.dense_weight_torch())
    assert torch.equal(module.dense_weight(), module.dense_weight_torch())


@needs_compiler
def test_the_library_is_built_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNICOMP_CACHE", str(tmp_path))
    native.int4_library.cache_clear()
    try:
        assert native.int4_library() is not None
        built = list((tmp_path / "kernels").glob("int4_dequant-*.so"))
        assert len(built) == 1
        stamp = built[0].stat().st_mtime_ns
        native.int4_library.cache_clear()
        assert native.int4_library() is not None  # a second process reuses the build
        assert [p.stat().st_mtime_ns for p in (tmp_path / "kernels").glob("*.so")] == [stamp]
    finally:
        native.int4_library.cache_clear()


def test_switched_off_the_pytorch_version_computes_the_same_prefill(monkeypatch):
    module = _module(128, 256, 64, torch.bfloat16, seed=5, symmetric=True)
    x = torch.randn(P.PREFILL_ROWS, 256, generator=torch.Generator().manual_seed(6)).to(torch.bfloat16)
    with_native = module(x)
    monkeypatch.setenv("UNICOMP_NATIVE_KERNELS", "0")
    native.int4_library.cache_clear()
    try:
        assert native.int4_dequantize(module.packed, module.scale_and_zeros, 128, 256, module.group_size) is None
        assert torch.equal(module(x), with_native)
    finally:
        native.int4_library.cache_clear()


@needs_compiler
def test_the_portable_build_for_cpus_without_avx512_gives_the_same_bits(tmp_path, monkeypatch):
    """Built for baseline x86-64 (or the machine's own ISA elsewhere), the library takes the
    auto-vectorized loop instead of the AVX-512 one; both must be bit-identical."""
    import platform

    monkeypatch.setenv("UNICOMP_CACHE", str(tmp_path))
    compiler = [shutil.which("cc") or shutil.which("gcc")]
    flags = tuple(f for f in native.FLAGS if f != "-march=native")
    if platform.machine() in ("x86_64", "AMD64"):
        flags += ("-march=x86-64-v2",)
    lib = native.load(native.build(compiler, flags))
    for dtype in (torch.bfloat16, torch.float32):
        module = _module(576, 1536, 64, dtype, seed=9, symmetric=False)
        out = torch.empty(1536, 576, dtype=dtype)
        fn = lib.unicomp_int4_dequant_bf16 if dtype == torch.bfloat16 else lib.unicomp_int4_dequant_f32
        fn(module.packed.data_ptr(), module.scale_and_zeros.data_ptr(), out.data_ptr(), 576, 1536, 64)
        assert torch.equal(out.t(), module.dense_weight_torch())


def test_a_prefill_through_consecutive_packed_layers_is_unchanged_by_the_shared_scratch():
    """Every layer dequantizes into the same per-thread buffer: each GEMM must finish with its own
    weight before the next layer overwrites it, and an input gradient (autograd keeps the weight)
    must see the layer's own weight, not a later layer's."""
    first = _module(256, 128, 64, torch.float32, seed=11, symmetric=True)
    second = _module(128, 256, 64, torch.float32, seed=12, symmetric=False)
    x = torch.randn(P.PREFILL_ROWS, 128, generator=torch.Generator().manual_seed(13))
    w1, w2 = first.dense_weight_torch(), second.dense_weight_torch()
    with torch.no_grad():
        assert torch.equal(second(first(x)), (x @ w1.t()) @ w2.t())
    x.requires_grad_(True)
    second(first(x)).sum().backward()
    expected = (torch.ones(P.PREFILL_ROWS, 128) @ w2) @ w1
    assert torch.allclose(x.grad, expected, rtol=1e-5, atol=1e-4)


@needs_compiler
def test_prefill_takes_the_native_path(monkeypatch):
    """With a compiler the PyTorch version is not needed at all: a prefill must not call it."""
    module = _module(128, 256, 64, torch.bfloat16, seed=14, symmetric=False)
    x = torch.randn(P.PREFILL_ROWS, 256, generator=torch.Generator().manual_seed(15)).to(torch.bfloat16)
    expected = x @ module.dense_weight_torch().t()

    def refuse(self: P.Int4PackedLinear) -> torch.Tensor:
        raise AssertionError("the PyTorch dequantization ran although the native kernel is available")

    monkeypatch.setattr(P.Int4PackedLinear, "dense_weight_torch", refuse)
    assert module.native_exact
    assert torch.equal(module(x), expected)


def test_weights_the_native_kernel_cannot_reproduce_take_the_pytorch_path():
    """fp32 scales with more than 20 significant bits (q * scale inexact: the result would depend on
    whether the compiler fuses multiply and add) and subnormal-sized scales (the AVX-512 rounding
    flushes them) are dequantized by PyTorch, so the bits never depend on having a compiler."""
    g = torch.Generator().manual_seed(16)
    q = torch.randint(0, 16, (128, 256), generator=g, dtype=torch.int32)
    zero = torch.randint(0, 16, (128, 4), generator=g).float()
    scheme = QuantScheme(bits=4, group_size=64, symmetric=False)
    full = torch.rand(128, 4, generator=g) * 0.02 + 0.001  # fp32, 24 significant bits
    tiny = torch.full((128, 4), 2.0 ** -126).to(torch.bfloat16).float()
    for scale, dtype in ((full, torch.float32), (tiny, torch.bfloat16)):
        qw = QuantizedWeight(q=q, scale=scale, zero=zero, scheme=scheme)
        module = P.Int4PackedLinear.from_quantized(qw, compute_dtype=dtype)
        assert not module.native_exact
        assert torch.equal(module.dense_weight(), module.dense_weight_torch())
    ordinary = P.Int4PackedLinear.from_quantized(
        QuantizedWeight(q=q, scale=full.to(torch.bfloat16).float(), zero=zero, scheme=scheme), compute_dtype=torch.float32)
    assert ordinary.native_exact  # bf16-representable scales qualify in fp32 too
