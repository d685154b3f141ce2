"""Quantized linears that compute with packed integers, and `pack_model` to swap them in.

Quantizers leave fake-quantized models: float weights on the grid plus `linear.quantized` (a
`QuantizedWeight`). That measures quality but not efficiency: memory stays at float size and
every matmul stays a float matmul. `pack_model` replaces each such linear with a module that
keeps only the integer codes (packed) and calls PyTorch's integer kernels, so resident memory
and speed reflect the compression. `to_quantized_weight()` recovers the exact codes for export.

Which module serves which weight is data (`KERNEL_TABLE`): the first row whose bit widths and
activation scheme match, and whose kernel accepts the shape and compute dtype, wins; everything
else gets `DequantLinear`, which is correct and small but not faster.

- `W8A8Linear` (8-bit symmetric per-channel weights, activations "int8-per-token"): each token
  (row of x) is quantized at run time on a symmetric grid, x ~ c * a with integer c in
  [-127, 127] and a = absmax(row) / 127 (an all-zero row gets a = fp32 tiny and c = 0); then
  int8 x int8 -> int32 with `torch._int_mm`, rescaled in fp32 by a * s_w.
- `Int4PackedLinear` (bits <= 4, weight-only): `_weight_int4pack_mm_for_cpu` dequantizes
  w = (q - 8) * scale + zero_term, so our grid maps exactly with scale = s and
  zero_term = (8 - z) * s (exact in fp32 because s is bf16-representable; rounded in bf16).
- `Int8WeightLinear` (8-bit symmetric per-channel, weight-only): `_weight_int8pack_mm` with
  signed codes q - 128 and one scale per output row.
- `DequantLinear`: anything else (group-wise or asymmetric 8-bit, shapes the kernels refuse).

Kernel constraints, found by experiment on torch 2.13 (CPU, AVX512 with avx512_bf16):
- int4 (CPU): N % 16 == 0; kernel group size in {32, 64, 128, 256} dividing K; activations fp32,
  bf16 or fp16 with scale_and_zeros of the same dtype; any M >= 1. In fp32 the result is exact
  but the kernel is ~10x slower than a dense fp32 matmul (reference path); bf16 is the fast path.
  A larger group (or per-channel) is expressed exactly by repeating its scale over kernel groups
  of the largest supported size dividing it; group size 16 is refused.
- int8 weight-only (CPU): fp32 works for any K (slow path); bf16 needs K % 16 == 0 - other K
  crash the process (segfault), so they are refused here, never tried.
- torch._int_mm (CPU): any M (1 included), K and N; passing a row-major [N, K] weight as its
  transposed view is the fast layout for decode. On CUDA it needs M > 16 and K, N multiples of 8:
  rows are padded to 17.
- CUDA int4 (`_convert_weight_to_int4pack` / `_weight_int4pack_mm`, untested here): bf16
  activations, N % 8 == 0, K a multiple of 16 * inner_k_tiles.

Run-time dtype: each module casts x to its compute dtype for the kernel and the result back to
x's dtype. Buffers keep their dtypes under `model.to(dtype)`: rounding fp32 scales or re-typing
codes would silently change the grid, so only device moves apply to them.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections import Counter
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unicomp.compress.quant.grid import QuantizedWeight, QuantScheme
from unicomp.compress.quant.native import int4_dequantize
from unicomp.efficiency.machine import cpu_flags
from unicomp.errors import UnicompError
from unicomp.models.options import torch_dtype

PER_TOKEN = "int8-per-token"
INT4_GROUP_SIZES = (256, 128, 64, 32)  # what the int4 kernels accept, largest first
INT4_CPU_N_MULTIPLE = 16
INT4_CUDA_N_MULTIPLE = 8
INT8_BF16_K_MULTIPLE = 16
CPU_KERNEL_DTYPES = (torch.float32, torch.bfloat16)


# ---------------------------------------------------------------------------------------------
# Compute dtype


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 dot products (x86 avx512_bf16 / amx_bf16, Arm bf16).

    Without them bf16 kernels emulate and are slower than fp32, so the default falls back to fp32.
    """
    flags = cpu_flags()
    if flags is None:
        capability = torch.backends.cpu.get_cpu_capability().upper()
        return "AMX" in capability or "BF16" in capability
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def default_compute_dtype(device: torch.device | str) -> torch.dtype:
    """bf16 where the hardware computes it natively (CUDA, bf16 CPUs), else fp32."""
    device = torch.device(device)
    if device.type == "cuda" or (device.type == "cpu" and cpu_supports_bf16()):
        return torch.bfloat16
    return torch.float32


def resolve_compute_dtype(name: str | torch.dtype, device: torch.device | str) -> torch.dtype:
    """"auto" -> `default_compute_dtype(device)`; otherwise a dtype name such as "bfloat16"."""
    if isinstance(name, torch.dtype):
        return name
    if name == "auto":
        return default_compute_dtype(device)
    try:
        return torch_dtype(name)  # the one dtype table (models/options.py)
    except UnicompError:
        raise UnicompError(f"unknown packed compute dtype {name!r}", "use auto, bfloat16 or float32") from None


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ---------------------------------------------------------------------------------------------
# Small helpers on QuantizedWeight


def check_quantized_weight(qw: QuantizedWeight, where: str = "a linear") -> None:
    """Refuse shapes and zero points no packed module can store (1-byte zero points in [0, 255])."""
    if qw.q.dim() != 2 or qw.scale.dim() != 2 or qw.scale.shape != qw.zero.shape or qw.scale.shape[0] != qw.q.shape[0]:
        raise UnicompError(f"malformed QuantizedWeight on {where}: q {tuple(qw.q.shape)}, scale {tuple(qw.scale.shape)}, "
                           f"zero {tuple(qw.zero.shape)}", "q must be [out, in] and scale/zero [out, groups]")
    if qw.q.shape[1] % qw.scale.shape[1]:
        raise UnicompError(f"{qw.scale.shape[1]} groups do not divide the {qw.q.shape[1]} inputs of {where}",
                           "quantize with a group size that divides the input features")
    groups = qw.scale.shape[1]
    if qw.g_idx is not None and (tuple(qw.g_idx.shape) != (qw.q.shape[1],) or bool(qw.g_idx.min() < 0)
                                 or bool(qw.g_idx.max() >= groups)):
        raise UnicompError(f"g_idx of {where} is not one group index in [0, {groups}) per input column",
                           "pass g_idx of shape [in_features] (or None for contiguous groups)")
    zero = qw.zero.float()
    if not (torch.equal(zero, zero.round()) and bool(zero.min() >= 0) and bool(zero.max() <= 255)):
        raise UnicompError(f"zero points of {where} are not integers in [0, 255]",
                           "quantize with unicomp.compress.quant.grid (integer zero points)")


def _group_size(qw: QuantizedWeight) -> int:
    return qw.q.shape[1] // qw.scale.shape[1]


def _contiguous_g_idx(in_features: int, group_size: int, device: torch.device) -> torch.Tensor:
    return torch.arange(in_features, device=device) // group_size


def _grouping_perm(qw: QuantizedWeight) -> torch.Tensor | None:
    """Column order that makes `g_idx`'s groups contiguous (None when they already are).

    GPTQ's act-order without static groups assigns groups in processing order; gathering the
    columns (and x's features) by this permutation turns that back into contiguous groups.
    Raises ValueError when the groups do not all have group_size members.
    """
    if qw.g_idx is None:
        return None
    contiguous = _contiguous_g_idx(qw.q.shape[1], _group_size(qw), qw.q.device)
    g_idx = qw.g_idx.to(device=qw.q.device, dtype=torch.int64)
    if torch.equal(g_idx, contiguous):
        return None
    perm = torch.argsort(g_idx, stable=True)
    if not torch.equal(g_idx[perm], contiguous):
        raise ValueError("g_idx groups have unequal sizes")
    return perm


def _bf16_exact(t: torch.Tensor) -> bool:
    return torch.equal(t.float().to(torch.bfloat16).float(), t.float())


def _int8_per_channel_violation(qw: QuantizedWeight) -> str | None:
    """Why a weight does not fit the int8 kernels (8-bit, per-channel, symmetric) or None."""
    if qw.scheme.bits != 8:
        return f"int8 kernels hold 8-bit codes, not {qw.scheme.bits}-bit"
    if qw.scale.shape[1] != 1:
        return "int8 kernels need one scale per output row (per-channel), not group-wise 8-bit"
    if not bool(torch.all(qw.zero == 128)):
        return "int8 kernels need symmetric 8-bit weights (zero point 128)"
    return None


def _zero_codes(zero: torch.Tensor) -> torch.Tensor:
    """Integer-valued fp32 zero points as one byte each (checked to be in [0, 255])."""
    return zero.float().round().to(torch.uint8)


# ---------------------------------------------------------------------------------------------
# Kernels


def _cuda_int4_available() -> bool:
    return (torch.cuda.is_available() and hasattr(torch.ops.aten, "_weight_int4pack_mm")
            and hasattr(torch.ops.aten, "_convert_weight_to_int4pack"))


def _cuda_inner_k_tiles(in_features: int) -> int:
    return next(t for t in (8, 4, 2) if in_features % (16 * t) == 0)


def _int4_pack(q: torch.Tensor) -> torch.Tensor:
    """int32 codes [N, K] in [0, 15] -> the int4 kernel's packed layout on q's device."""
    if q.device.type == "cuda":  # CUDA layout: pairs of codes per byte, then tiled by the op
        pairs = (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8)
        return torch.ops.aten._convert_weight_to_int4pack(pairs, _cuda_inner_k_tiles(q.shape[1]))
    return torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.to(torch.int32).contiguous(), 1)


def _int4_mm(x: torch.Tensor, packed: torch.Tensor, group_size: int, scale_and_zeros: torch.Tensor) -> torch.Tensor:
    if packed.is_cuda:
        return torch.ops.aten._weight_int4pack_mm(x, packed, group_size, scale_and_zeros)
    return torch.ops.aten._weight_int4pack_mm_for_cpu(x, packed, group_size, scale_and_zeros)


def _nibbles(packed: torch.Tensor) -> torch.Tensor:
    """Every 4-bit field of a packed tensor, in storage order (low nibble first)."""
    raw = packed.contiguous().view(torch.uint8).reshape(-1)
    return torch.stack([raw & 15, raw >> 4], dim=-1).reshape(-1)


# Prefill dispatch: at this many rows (tokens) or more a weight-only kernel's dequantizing GEMM loses
# to dequantize-then-dense-GEMM (measured: docs/benchmarks.md); decode (one row) keeps the packed kernel.
PREFILL_ROWS = 32
W8A8_CHUNK_ELEMENTS = 512 * 1536  # rows x out features of a W8A8 prefill chunk: 3 MiB of int32 (measured best)
_CPU_BLOCK_N = 64  # the CPU int4 packing: per block of 64 rows, per column k, 32 bytes (row j | row j+32 << 4)


def _cpu_int4_codes(packed: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """uint8 codes [n, k] of a CPU-packed int4 weight, by reshapes (n a multiple of 64)."""
    raw = packed.view(torch.uint8).reshape(n // _CPU_BLOCK_N, k, _CPU_BLOCK_N // 2)
    return torch.cat([raw & 15, raw >> 4], dim=2).transpose(1, 2).reshape(n, k)


@functools.lru_cache(maxsize=1)
def _cpu_int4_layout_known() -> bool:
    """Whether this torch packs int4 weights in the layout `_cpu_int4_codes` reads (checked once
    against the layout learned from the packer itself)."""
    q = torch.randint(0, 16, (2 * _CPU_BLOCK_N, 64), generator=torch.Generator().manual_seed(0), dtype=torch.int32)
    packed = _int4_pack(q)
    try:
        return bool(torch.equal(_cpu_int4_codes(packed, *q.shape).to(torch.int32), q)
                    and torch.equal(_int4_unpack(packed, *q.shape), q))
    except RuntimeError:
        return False


def _int4_unpack(packed: torch.Tensor, out_features: int, in_features: int) -> torch.Tensor:
    """Inverse of `_int4_pack`, learned from the packer itself rather than hard-coding its layout.

    The packer only moves nibbles, so packing the base-16 digits of each position's flat index
    tells, for every nibble of the packed tensor, which (row, column) it came from. That keeps
    export exact on any layout (CPU blocked, CUDA tiled, future versions).
    """
    n, k = out_features, in_features
    index = torch.arange(n * k, device=packed.device, dtype=torch.int64)
    source = torch.zeros(n * k, device=packed.device, dtype=torch.int64)
    for shift in range(0, max((n * k - 1).bit_length(), 1), 4):
        digits = ((index >> shift) & 15).to(torch.int32).reshape(n, k)
        found = _nibbles(_int4_pack(digits))
        if found.numel() != n * k:
            raise UnicompError(f"int4 layout holds {found.numel()} codes for a {n}x{k} weight",
                               "this torch version's int4 packing is not supported for export; unpack on CPU")
        source |= found.to(torch.int64) << shift
    q = torch.empty(n * k, device=packed.device, dtype=torch.int32)
    q[source] = _nibbles(packed).to(torch.int32)
    return q.reshape(n, k)


def quantize_per_token(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 codes [M, K] and fp32 scales [M, 1] of each row: x ~ codes * scale.

    scale = absmax(row) / 127 (fp32 tiny for an all-zero row), codes = round(x / scale), so the grid
    is symmetric and -128 never occurs (|x / scale| <= 127 (1 + 2^-23) after the two fp32
    roundings, which rounds to 127, so no clamp is needed). Few ops on purpose: at decode (one
    token) this function, not the int8 matmul, dominates a W8A8 linear's time. The absmax is taken
    in the input dtype (exact) and the division in fp32 (bf16 / fp16 inputs promote).
    """
    rows = max(1, W8A8_CHUNK_ELEMENTS // max(1, x.shape[-1]))
    if x.dim() != 2 or x.shape[0] <= rows or x.device.type != "cpu":
        return _quantize_rows(x)
    # long prefills: rows in cache-sized chunks (8,192 x 1,536 took 30 ms in one pass, its fp32 quotient
    # alone 50 MB of fresh pages); rows are independent, so the result is the same
    codes = torch.empty(x.shape, dtype=torch.int8, device=x.device)
    scale = torch.empty(x.shape[0], 1, dtype=torch.float32, device=x.device)
    for start in range(0, x.shape[0], rows):
        codes[start:start + rows], scale[start:start + rows] = _quantize_rows(x[start:start + rows])
    return codes, scale


def _quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scale = x.abs().amax(dim=-1, keepdim=True).float().div_(127).clamp_(min=torch.finfo(torch.float32).tiny)
    return torch.div(x, scale).round_().to(torch.int8), scale


class SharedActivationCodes:
    """The int8 codes of one input tensor, reused by the linears that read that very tensor.

    q/k/v (and gate/up) read the same hidden states (the anatomy's `shared_inputs`), so quantizing
    it once instead of three times saves most of a W8A8 layer's per-token overhead at decode. An
    entry is reused only for a tensor with the cached one's storage, shape, strides and dtype (the
    cached tensor is held, so its storage cannot be recycled meanwhile), on the same device, and
    only by the `size` linears of one group: the group's first linear (q_proj, gate_proj: the one
    the model calls first) always quantizes afresh, and the entry is dropped after `size` uses.
    So an entry lives within one call of the group, even when a call was cut short. Not
    thread-safe: one forward at a time per model.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._source: torch.Tensor | None = None
        self._codes: tuple[torch.Tensor, torch.Tensor] | None = None
        self._uses = 0

    def codes(self, x: torch.Tensor, lead: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        src = self._source
        if lead or not (src is not None and src.data_ptr() == x.data_ptr() and src.shape == x.shape
                and src.stride() == x.stride() and src.dtype == x.dtype and src.device == x.device):
            self._source, self._codes, self._uses = x, quantize_per_token(x), 0
        codes = self._codes
        assert codes is not None
        self._uses += 1
        if self._uses >= self.size:
            self.clear()
        return codes

    def clear(self) -> None:
        self._source, self._codes, self._uses = None, None, 0


def _int_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """int8 [M, K] @ int8 [K, N] -> int32; pads rows where CUDA's kernel needs M > 16."""
    rows = a.shape[0]
    if a.device.type == "cuda" and rows <= 16:
        padded = a.new_zeros(17, a.shape[1])
        padded[:rows] = a
        return torch._int_mm(padded, b)[:rows]
    return torch._int_mm(a, b)


def _pack_nibbles(q: torch.Tensor) -> torch.Tensor:
    """Codes [N, K] in [0, 15] -> uint8 [N, ceil(K / 2)], low nibble = even column."""
    if q.shape[1] % 2:
        q = F.pad(q, (0, 1))
    q = q.to(torch.uint8)
    return q[:, 0::2] | (q[:, 1::2] << 4)


def _unpack_nibbles(packed: torch.Tensor, in_features: int) -> torch.Tensor:
    return torch.stack([packed & 15, packed >> 4], dim=-1).reshape(packed.shape[0], -1)[:, :in_features]


# ---------------------------------------------------------------------------------------------
# Modules


class PackedLinear(nn.Module, ABC):
    """Shape, bias and dtype handling shared by the packed linears; subclasses do the 2-D matmul.

    Everything is a buffer (nothing trains), and buffers keep their dtype when the model is cast.
    """

    def __init__(self, qw: QuantizedWeight, bias: torch.Tensor | None, compute_dtype: torch.dtype) -> None:
        super().__init__()
        self.out_features, self.in_features = qw.q.shape
        self.scheme: QuantScheme = qw.scheme
        self.activations: str | None = qw.activations
        self.compute_dtype = compute_dtype
        # None: the QuantizedWeight had no g_idx (export reproduces that, not a default g_idx)
        self.g_idx_dtype: torch.dtype | None = None if qw.g_idx is None else qw.g_idx.dtype
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def violation(cls, qw: QuantizedWeight, compute_dtype: torch.dtype, device: torch.device) -> str | None:
        """Why this module's kernel cannot hold `qw` (shape, dtype, device), or None when it can."""
        return None

    @classmethod
    def from_quantized(cls, qw: QuantizedWeight, bias: torch.Tensor | None = None,
                       compute_dtype: torch.dtype = torch.float32) -> "PackedLinear":
        """Build the module from a quantizer's output; refuses what its kernel cannot compute."""
        check_quantized_weight(qw)
        reason = cls.violation(qw, compute_dtype, qw.q.device)
        if reason is not None:
            raise UnicompError(f"{cls.__name__} cannot hold this weight: {reason}",
                               "use pack_linear / pack_model, which fall back to DequantLinear")
        return cls(qw, bias, compute_dtype)

    @abstractmethod
    def to_quantized_weight(self) -> QuantizedWeight:
        """The exact codes, scales, zeros and g_idx this module computes with (for export)."""

    @abstractmethod
    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        """x [M, in_features] (any float dtype) -> [M, out_features] (any float dtype)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., in_features] in any float dtype -> [..., out_features] in the same dtype."""
        if x.shape[-1] != self.in_features:
            raise UnicompError(f"{type(self).__name__} expects {self.in_features} input features, got {x.shape[-1]}",
                               "feed the layer the same hidden size it was quantized for")
        # Hot at decode (one token, ~10 us of kernel per call): buffers are read from `_buffers` directly
        # (nn.Module's attribute fallback costs ~0.5 us each) and no-op casts are skipped.
        flat = x.reshape(-1, self.in_features)
        if flat.shape[0] == 0:
            y = x.new_zeros(0, self.out_features)
        else:
            y = self._matmul(flat)
            if y.dtype != x.dtype:
                y = y.to(x.dtype)
        bias = self._buffers["bias"]
        if bias is not None:
            y = y + bias.to(y.dtype)
        return y.reshape(*x.shape[:-1], self.out_features)

    def _restore(self, q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor,
                 g_idx: torch.Tensor | None = None) -> QuantizedWeight:
        """A QuantizedWeight with the original g_idx convention (None stays None)."""
        if self.g_idx_dtype is None:
            g_idx = None
        else:
            if g_idx is None:
                g_idx = _contiguous_g_idx(self.in_features, self.in_features // scale.shape[1], q.device)
            g_idx = g_idx.to(self.g_idx_dtype)
        return QuantizedWeight(q=q.to(torch.int32), scale=scale.float(), zero=zero.float(), scheme=self.scheme,
                               g_idx=g_idx, activations=self.activations)

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001 - torch's signature
        """Follow device moves only: `model.to(torch.bfloat16)` must not round scales or codes."""
        some = next(b for b in self._buffers.values() if b is not None)
        device = fn(torch.zeros((), device=some.device)).device
        for name, buf in self._buffers.items():
            if buf is not None:
                self._buffers[name] = buf.to(device=device)
        return self

    def extra_repr(self) -> str:
        s = self.scheme
        return (f"in_features={self.in_features}, out_features={self.out_features}, bits={s.bits}, "
                f"group_size={s.group_size}, symmetric={s.symmetric}, activations={self.activations}, "
                f"compute_dtype={dtype_name(self.compute_dtype)}, bias={self.bias is not None}")


class Int4PackedLinear(PackedLinear):
    """2/3/4-bit weights, two codes per byte, through PyTorch's int4 weight-only kernel."""

    def __init__(self, qw: QuantizedWeight, bias: torch.Tensor | None, compute_dtype: torch.dtype) -> None:
        super().__init__(qw, bias, compute_dtype)
        group = _group_size(qw)
        self.group_size = _int4_kernel_group(group)  # kernel group: original group = repeat of them
        self.repeat = group // self.group_size
        perm = _grouping_perm(qw)
        q = qw.q if perm is None else qw.q[:, perm]
        scale = qw.scale.float().repeat_interleave(self.repeat, dim=1)
        zero = qw.zero.float().repeat_interleave(self.repeat, dim=1)
        scale_and_zeros = torch.stack([scale.t(), ((8 - zero) * scale).t()], dim=-1)
        self.register_buffer("packed", _int4_pack(q.to(torch.int32)))
        self.register_buffer("scale_and_zeros", scale_and_zeros.to(compute_dtype).contiguous())
        self.register_buffer("zero", _zero_codes(qw.zero))  # exact zeros for export (bf16 rounds zero_term)
        self.register_buffer("perm", None if perm is None else perm.to(torch.int32))
        self.native_exact = _native_exact(self.scale_and_zeros[..., 0])

    @classmethod
    def violation(cls, qw: QuantizedWeight, compute_dtype: torch.dtype, device: torch.device) -> str | None:
        n = qw.q.shape[0]
        if qw.scheme.bits > 4:
            return f"the int4 kernel holds codes of at most 4 bits, not {qw.scheme.bits}"
        if qw.activations is not None:
            return "the int4 kernel is weight-only; these activations are quantized"
        if device.type == "cuda":
            if not _cuda_int4_available():
                return "this torch build has no CUDA int4 kernel"
            if compute_dtype != torch.bfloat16:
                return "the CUDA int4 kernel computes in bfloat16 only"
            if n % INT4_CUDA_N_MULTIPLE:
                return f"the CUDA int4 kernel needs out_features divisible by {INT4_CUDA_N_MULTIPLE}, got {n}"
        elif device.type == "cpu":
            if compute_dtype not in CPU_KERNEL_DTYPES:
                return f"the CPU int4 kernel is used with float32 or bfloat16, not {dtype_name(compute_dtype)}"
            if n % INT4_CPU_N_MULTIPLE:
                return f"the CPU int4 kernel needs out_features divisible by {INT4_CPU_N_MULTIPLE}, got {n}"
        else:
            return f"no int4 kernel on {device.type}"
        if _int4_kernel_group(_group_size(qw)) is None:
            return f"group size {_group_size(qw)} is not a multiple of 32 (kernel groups: 32, 64, 128, 256)"
        try:
            _grouping_perm(qw)
        except ValueError:
            return "g_idx groups have unequal sizes"
        if compute_dtype == torch.bfloat16 and not _bf16_exact(qw.scale):
            return "scales are not bf16-representable"
        return None

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        buffers = self._buffers
        if x.dtype != self.compute_dtype:
            x = x.to(self.compute_dtype)
        perm = buffers["perm"]
        if perm is not None:
            x = x.index_select(1, perm)
        if x.shape[0] >= PREFILL_ROWS and self.can_dequantize():
            # the weight lives only for this GEMM, unless autograd keeps it for a backward pass
            return F.linear(x, self.dense_weight(reuse=not (x.requires_grad and torch.is_grad_enabled())))
        return _int4_mm(x.contiguous(), buffers["packed"], self.group_size, buffers["scale_and_zeros"])

    def can_dequantize(self) -> bool:
        return (self.packed.device.type == "cpu" and self.out_features % _CPU_BLOCK_N == 0
                and _cpu_int4_layout_known())

    def dense_weight(self, reuse: bool = False) -> torch.Tensor:
        """The weight the kernel computes with, [out, in] in the compute dtype (in the kernel's
        column order when act-order permuted it): (q - 8) * scale + zero_term per group.

        It runs once per linear per prefill, so its speed is prefill's: the native C kernel
        (compress/quant/native.py) when a C compiler is available, else `dense_weight_torch`;
        both are bit-identical to the int4 kernel (tests/compress/test_prefill_dispatch.py).
        reuse: the native kernel writes into a per-thread scratch buffer that the next reuse call
        overwrites (for a weight consumed at once)."""
        native = int4_dequantize(self.packed, self.scale_and_zeros, self.out_features, self.in_features,
                                 self.group_size, reuse=reuse) if self.native_exact else None
        return self.dense_weight_torch() if native is None else native.t()

    def dense_weight_torch(self) -> torch.Tensor:
        """`dense_weight` in PyTorch ops: the fallback without a C compiler, and the C kernel's reference.

        The packing keeps, per block of 64 rows and per column, 32 bytes (row j | row j + 32 << 4);
        the codes are unpacked and transposed to [in, out] while still one byte each (cheap), so the
        arithmetic runs on contiguous rows against the kernel's own [groups, out] scales. It runs in
        fp32 (broadcasting bf16 ops are several times slower on CPU), as q * scale + (zero_term - 8 *
        scale): the same real number as the kernel's, and rounded the same, since q * scale and
        zero_term - 8 * scale are exact in fp32. One rounding to the compute dtype at the end."""
        n, k, g = self.out_features, self.in_features, self.group_size
        raw = self.packed.view(torch.uint8).reshape(n // _CPU_BLOCK_N, k, _CPU_BLOCK_N // 2)
        codes = torch.cat([raw & 15, raw >> 4], dim=2).transpose(0, 1).contiguous()  # [in, out], one byte each
        weight = codes.float().view(k // g, g, n)
        sz = self.scale_and_zeros.float()  # [groups, out, 2]
        scale = sz[..., 0].unsqueeze(1).contiguous()
        torch.addcmul(torch.add(sz[..., 1], sz[..., 0], alpha=-8).unsqueeze(1), weight, scale, out=weight)
        return weight.view(k, n).to(self.compute_dtype).t()

    def to_quantized_weight(self) -> QuantizedWeight:
        q = _int4_unpack(self.packed, self.out_features, self.in_features)
        g_idx = None
        if self.perm is not None:
            perm = self.perm.long()
            q = torch.empty_like(q).index_copy_(1, perm, q)
            group = self.group_size * self.repeat
            g_idx = torch.empty_like(perm).index_copy_(0, perm, _contiguous_g_idx(self.in_features, group, perm.device))
        scale = self.scale_and_zeros[:: self.repeat, :, 0].t().float()
        return self._restore(q, scale, self.zero, g_idx)


def _native_exact(scale: torch.Tensor) -> bool:
    """Whether the native dequantization gives this weight PyTorch's bits exactly: q * scale must be exact
    in fp32 whether or not a compiler fuses it into the add (scales of at most 20 significant bits: every
    bf16 scale, not every fp32 one), and no weight may be subnormal (the AVX-512 rounding flushes those;
    scales of at least 2^-100 rule it out). Other weights take the PyTorch path."""
    s = scale.detach().float().abs().contiguous()
    return bool(((s.view(torch.int32) & 0xF) == 0).all() and ((s == 0) | (s >= 2.0 ** -100)).all())


def _int4_kernel_group(group_size: int) -> int | None:
    """Largest kernel group size that tiles `group_size` (None: the kernel cannot express it)."""
    return next((g for g in INT4_GROUP_SIZES if group_size % g == 0), None)


class Int8WeightLinear(PackedLinear):
    """8-bit symmetric per-channel weights (signed codes q - 128) through `_weight_int8pack_mm`."""

    def __init__(self, qw: QuantizedWeight, bias: torch.Tensor | None, compute_dtype: torch.dtype) -> None:
        super().__init__(qw, bias, compute_dtype)
        self.register_buffer("weight_int8", (qw.q - 128).to(torch.int8).contiguous())
        self.register_buffer("scales", qw.scale[:, 0].to(compute_dtype, copy=True).contiguous())

    @classmethod
    def violation(cls, qw: QuantizedWeight, compute_dtype: torch.dtype, device: torch.device) -> str | None:
        if qw.activations is not None:
            return "the int8 weight-only kernel does not quantize activations"
        if device.type != "cpu":
            return "the int8 weight-only kernel is used on CPU only"
        if compute_dtype not in CPU_KERNEL_DTYPES:
            return f"the int8 weight-only kernel is used with float32 or bfloat16, not {dtype_name(compute_dtype)}"
        reason = _int8_per_channel_violation(qw)
        if reason is not None:
            return reason
        if compute_dtype == torch.bfloat16:
            if qw.q.shape[1] % INT8_BF16_K_MULTIPLE:  # other K crash the kernel
                return f"the bf16 int8 kernel needs in_features divisible by {INT8_BF16_K_MULTIPLE}, got {qw.q.shape[1]}"
            if not _bf16_exact(qw.scale):
                return "scales are not bf16-representable"
        return None

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        buffers = self._buffers
        if x.dtype != self.compute_dtype:
            x = x.to(self.compute_dtype)
        x = x.contiguous()
        if x.shape[0] >= PREFILL_ROWS:  # prefill: a dense GEMM on the codes, the per-row scale after
            return F.linear(x, buffers["weight_int8"].to(self.compute_dtype)).mul_(buffers["scales"])
        return torch.ops.aten._weight_int8pack_mm(x, buffers["weight_int8"], buffers["scales"])

    def to_quantized_weight(self) -> QuantizedWeight:
        q = self.weight_int8.to(torch.int32) + 128
        scale = self.scales.float().unsqueeze(1)
        return self._restore(q, scale, torch.full_like(scale, 128.0))


class W8A8Linear(PackedLinear):
    """int8 weights x int8 per-token activations -> int32 with `torch._int_mm` (SmoothQuant's W8A8).

    The compute dtype does not apply: activations are quantized from fp32 and the int32 result is
    rescaled in fp32 (both exact steps that bf16 would round).
    """

    def __init__(self, qw: QuantizedWeight, bias: torch.Tensor | None, compute_dtype: torch.dtype) -> None:
        super().__init__(qw, bias, compute_dtype)
        self.register_buffer("weight_int8", (qw.q - 128).to(torch.int8).contiguous())  # [N, K]; .t() is fast
        self.register_buffer("weight_scale", qw.scale[:, 0].to(torch.float32, copy=True).contiguous())
        # set by pack_model for linears that read one tensor (see SharedActivationCodes)
        self.shared_codes: SharedActivationCodes | None = None
        self.leads_shared_codes = False  # the group's first linear always quantizes afresh

    @classmethod
    def violation(cls, qw: QuantizedWeight, compute_dtype: torch.dtype, device: torch.device) -> str | None:
        if qw.activations != PER_TOKEN:
            return f"W8A8 quantizes activations; this weight has activations={qw.activations!r}"
        reason = _int8_per_channel_violation(qw)
        if reason is not None:
            return reason
        n, k = qw.q.shape
        if device.type == "cuda" and (n % 8 or k % 8):
            return f"CUDA int8 matmul needs in/out features divisible by 8, got {k}/{n}"
        if device.type not in ("cpu", "cuda"):
            return f"no int8 matmul on {device.type}"
        return None

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.shared_codes
        codes, x_scale = quantize_per_token(x) if shared is None else shared.codes(x, lead=self.leads_shared_codes)
        weight, weight_scale = self._buffers["weight_int8"].t(), self._buffers["weight_scale"]
        rows = max(1, W8A8_CHUNK_ELEMENTS // self.out_features)
        if codes.shape[0] <= rows or codes.device.type != "cpu":  # the chunk size is a CPU cache size
            return (_int_mm(codes, weight) * x_scale).mul_(weight_scale)
        # long prefills: the int32 and fp32 [rows, out] intermediates stay cache-sized, and the result is
        # written once in x's dtype (unchunked, 8,192 rows took 3.5x a bf16 GEMM; chunked, ~0.8x)
        out = torch.empty(codes.shape[0], self.out_features, dtype=x.dtype, device=x.device)
        for start in range(0, codes.shape[0], rows):
            end = start + rows
            out[start:end] = (_int_mm(codes[start:end], weight) * x_scale[start:end]).mul_(weight_scale)
        return out

    def to_quantized_weight(self) -> QuantizedWeight:
        q = self.weight_int8.to(torch.int32) + 128
        scale = self.weight_scale.unsqueeze(1)
        return self._restore(q, scale, torch.full_like(scale, 128.0))


class DequantLinear(PackedLinear):
    """Fallback for any grid: 1-byte (or, up to 4 bits, half-byte) codes dequantized on every call.

    No speedup, but correct, compact and able to hold what the kernels refuse. Activations marked
    "int8-per-token" are fake-quantized on the same grid W8A8Linear uses.
    """

    def __init__(self, qw: QuantizedWeight, bias: torch.Tensor | None, compute_dtype: torch.dtype) -> None:
        super().__init__(qw, bias, compute_dtype)
        self.nibbles = qw.scheme.bits <= 4
        codes = _pack_nibbles(qw.q) if self.nibbles else qw.q.to(torch.uint8, copy=True)
        self.register_buffer("codes", codes.contiguous())
        self.register_buffer("scale", qw.scale.to(torch.float32, copy=True).contiguous())
        self.register_buffer("zero", _zero_codes(qw.zero))
        contiguous = qw.g_idx is None or torch.equal(
            qw.g_idx.long(), _contiguous_g_idx(self.in_features, _group_size(qw), qw.g_idx.device))
        self.register_buffer("g_idx", None if contiguous else qw.g_idx.clone())

    def _q(self) -> torch.Tensor:
        return _unpack_nibbles(self.codes, self.in_features) if self.nibbles else self.codes

    def _group_index(self) -> torch.Tensor:
        if self.g_idx is not None:
            return self.g_idx.long()
        return _contiguous_g_idx(self.in_features, self.in_features // self.scale.shape[1], self.codes.device)

    def dequantized_weight(self) -> torch.Tensor:
        g = self._group_index()
        return (self._q().float() - self.zero.float()[:, g]) * self.scale[:, g]

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        if self.activations == PER_TOKEN:
            codes, x_scale = quantize_per_token(x)
            x = codes.float() * x_scale
        return F.linear(x.to(self.compute_dtype), self.dequantized_weight().to(self.compute_dtype))

    def to_quantized_weight(self) -> QuantizedWeight:
        return self._restore(self._q(), self.scale, self.zero, self.g_idx)


# Which packed module serves which weights: (module, bit widths, activation quantization).
# The first row whose bits and activations match and whose kernel accepts the weight wins;
# everything else is served by DequantLinear.
KERNEL_TABLE: tuple[tuple[type[PackedLinear], tuple[int, ...], str | None], ...] = (
    (W8A8Linear, (8,), PER_TOKEN),
    (Int4PackedLinear, (2, 3, 4), None),
    (Int8WeightLinear, (8,), None),
)


def choose_module(qw: QuantizedWeight, compute_dtype: torch.dtype,
                  device: torch.device) -> tuple[type[PackedLinear], str | None]:
    """The module for `qw`, and why the kernel meant for it refused (None when none refused)."""
    refusal = None
    for module, bits, activations in KERNEL_TABLE:
        if qw.scheme.bits in bits and qw.activations == activations:
            reason = module.violation(qw, compute_dtype, device)
            if reason is None:
                return module, None
            refusal = refusal or f"{module.__name__}: {reason}"
    if qw.activations not in (None, PER_TOKEN):
        raise UnicompError(f"unknown activation quantization {qw.activations!r}", f"use None or {PER_TOKEN!r}")
    return DequantLinear, refusal


def _on_device(qw: QuantizedWeight, device: torch.device) -> QuantizedWeight:
    move = lambda t: None if t is None else t.to(device)  # noqa: E731
    return QuantizedWeight(q=move(qw.q), scale=move(qw.scale), zero=move(qw.zero), scheme=qw.scheme,
                           g_idx=move(qw.g_idx), activations=qw.activations)


def pack_linear(linear: nn.Linear, compute_dtype: torch.dtype,
                where: str = "a linear") -> tuple[PackedLinear, str | None]:
    """The packed replacement of a quantized linear (on its device), and any fallback reason."""
    qw = getattr(linear, "quantized", None)
    if qw is None:
        raise UnicompError(f"{where} has no quantized weight to pack", "quantize the model before packing it")
    qw = _on_device(qw, linear.weight.device)
    check_quantized_weight(qw, where)
    if tuple(qw.q.shape) != (linear.out_features, linear.in_features):
        raise UnicompError(f"quantized weight of {where} is {tuple(qw.q.shape)} but the linear is "
                           f"{(linear.out_features, linear.in_features)}", "re-quantize after changing the layer")
    module, reason = choose_module(qw, compute_dtype, qw.q.device)
    return module(qw, linear.bias, compute_dtype), reason


def pack_model(model: nn.Module, compute_dtype: str | torch.dtype = "auto") -> dict[str, Any]:
    """Replace every linear carrying `.quantized` by its packed module, in place.

    Returns a summary: number of modules of each kind, the compute dtype(s), and why linears fell
    back to DequantLinear (reason -> count), so a silent loss of speed is visible in reports.
    """
    resolve_compute_dtype(compute_dtype, "cpu")  # a bad name fails before any work
    targets = [(name, m) for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and getattr(m, "quantized", None) is not None]
    if not targets:
        raise UnicompError("the model has no quantized linear layers to pack", "quantize it first (e.g. with rtn or gptq)")
    kinds: Counter[str] = Counter()
    fallbacks: Counter[str] = Counter()
    dtypes: set[str] = set()
    for name, linear in targets:
        dtype = resolve_compute_dtype(compute_dtype, linear.weight.device)
        packed, reason = pack_linear(linear, dtype, where=name)
        _replace(model, name, packed)
        kinds[type(packed).__name__] += 1
        dtypes.add(dtype_name(dtype))
        if reason is not None:
            fallbacks[reason] += 1
    shared = share_activation_codes(model)
    return {"packed": len(targets), "modules": dict(kinds), "compute_dtype": ", ".join(sorted(dtypes)),
            "fallbacks": dict(fallbacks), "shared_activation_codes": shared}


def share_activation_codes(model: nn.Module) -> int:
    """Let W8A8 linears that read one tensor (the anatomy's `shared_inputs`) quantize it once.

    Returns the number of groups wired; a model without a known anatomy simply gets none.
    """
    from unicomp.models.anatomy import ANATOMIES

    anatomy = ANATOMIES.get(type(model).__name__)
    if anatomy is None:
        return 0
    groups = 0
    for layer in model.get_submodule(anatomy.layers):
        for names in anatomy.shared_inputs:
            members = [layer.get_submodule(n) for n in names]
            if len(members) > 1 and all(isinstance(m, W8A8Linear) for m in members):
                shared = SharedActivationCodes(len(members))
                for position, m in enumerate(members):
                    m.shared_codes, m.leads_shared_codes = shared, position == 0
                groups += 1
    return groups


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def linear_weight_bytes(model: nn.Module) -> int:
    """Resident bytes of the linear layers' weight storage inside the decoder layers.

    Packed modules count all their buffers (codes, scales, zeros, permutation, bias); nn.Linear
    counts weight and bias. Each storage is counted once, so shared or tied tensors are not
    double-counted.
    """
    from unicomp.models.anatomy import decoder_layers

    seen: set[tuple[torch.device, int]] = set()
    total = 0
    for module in decoder_layers(model).modules():
        if isinstance(module, PackedLinear):
            tensors = [b for b in module.buffers(recurse=False) if b is not None]
        elif isinstance(module, nn.Linear):
            tensors = [t for t in (module.weight, module.bias) if t is not None]
        else:
            continue
        for tensor in tensors:
            storage = tensor.untyped_storage()
            key = (tensor.device, storage.data_ptr())
            if key not in seen:
                seen.add(key)
                total += storage.nbytes()
    return total


# ---------------------------------------------------------------------------- how a loaded model runs
EXECUTIONS = ("auto", "kernels", "reference")


def simulate_activation_quantization(model: nn.Module) -> int:
    """On fake-quantized linears whose activations are quantized (W8A8), round each token's input to
    the same per-token int8 grid `W8A8Linear` uses, in float. Returns the number of hooked linears.

    With float weights already on their grid this computes what the integer kernel computes (up to
    fp32 summation order), so fp32 quality runs need no slow fp32 integer kernels."""

    def hook(module: nn.Module, args: tuple) -> tuple:
        x = args[0]
        codes, scales = quantize_per_token(x.reshape(-1, x.shape[-1]))
        return ((codes.to(torch.float32) * scales).reshape(x.shape).to(x.dtype), *args[1:])

    count = 0
    for module in model.modules():
        qw = getattr(module, "quantized", None)
        if isinstance(module, nn.Linear) and qw is not None and qw.activations == PER_TOKEN:
            module.register_forward_pre_hook(hook)
            count += 1
    return count


def prepare_execution(model: nn.Module, execution: str = "auto") -> dict[str, Any]:
    """Make a freshly loaded quantized model run the way `execution` says, in place.

    - "kernels": packed integer modules (`pack_model`), computing in the model's dtype: what a
      deployment runs, and what efficiency numbers must use.
    - "reference": the dequantized float weights stay (they are exactly the grid values) and W8A8
      activations are rounded per token in float: the same numbers the packed kernels give in
      fp32, without the fp32 int4 kernel's ~10x slowdown. Quality runs of fp32 models use it.
    - "auto": kernels when the model computes in bf16/fp16 (or on CUDA), reference in fp32.
    """
    if execution not in EXECUTIONS:
        raise UnicompError(f"unknown quantized execution {execution!r}", f"use one of {', '.join(EXECUTIONS)}")
    param = next(model.parameters())
    if execution == "auto":
        execution = "reference" if param.dtype == torch.float32 and param.device.type == "cpu" else "kernels"
    if execution == "kernels":
        summary = pack_model(model, compute_dtype=param.dtype)
        return {"execution": "kernels", **summary}
    hooked = simulate_activation_quantization(model)
    return {"execution": "reference", "activation_quantized_linears": hooked, "compute_dtype": dtype_name(param.dtype)}
