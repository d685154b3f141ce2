"""The integer grid every weight quantizer in unicomp targets, in one place.

A quantized weight row is split into groups of `group_size` input columns (or one group per
row: per-channel). Each group has a scale s and an integer zero point z, and every stored
weight is an unsigned integer q in [0, 2^bits - 1] that dequantizes to (q - z) * s.

- asymmetric: [min(w, 0), max(w, 0)] of the group is spread over the 2^bits levels;
  z = round(-min / s) (GPTQ / AWQ reference convention).
- symmetric: s = 2 * absmax / (2^bits - 1) and z = 2^(bits-1), i.e. levels -8s .. 7s for
  4 bits; identical to compressed-tensors' signed symmetric grid (q - 8, zero point 0).

Scales are rounded to bf16 before any weight is rounded to the grid: the packed CPU kernels
take bf16 scales, so the grid the quantizer optimised against is the grid the kernel computes
with (no second rounding after quantization).

`g_idx[col]` says which group column `col` belongs to. It is `col // group_size` except after
GPTQ's activation ordering without static groups, where groups follow the processing order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unicomp.errors import UnicompError

SUPPORTED_BITS = (2, 3, 4, 8)


def check_bits(bits: int) -> int:
    if bits not in SUPPORTED_BITS:
        raise UnicompError(f"unsupported bit width {bits}", f"use one of {', '.join(map(str, SUPPORTED_BITS))}")
    return bits


@dataclass(frozen=True)
class QuantScheme:
    bits: int = 4
    symmetric: bool = True
    group_size: int | None = 128  # None: one group per output row (per-channel)

    def __post_init__(self) -> None:
        check_bits(self.bits)
        if self.group_size is not None and self.group_size <= 0:
            raise UnicompError(f"group size must be positive, got {self.group_size}", "use e.g. 128, or none for per-channel")

    @property
    def maxq(self) -> int:
        return 2 ** self.bits - 1

    def groups(self, in_features: int, where: str = "a layer") -> int:
        """Number of groups per row; refuses group sizes that do not divide the row."""
        if self.group_size is None:
            return 1
        if in_features % self.group_size:
            raise UnicompError(
                f"group size {self.group_size} does not divide the {in_features} input features of {where}",
                f"choose a group size that divides {in_features} (e.g. {_divisor_hint(in_features)}) or per-channel (group_size: null)",
            )
        return in_features // self.group_size

    def default_g_idx(self, in_features: int, device=None) -> torch.Tensor:
        size = self.group_size or in_features
        return torch.arange(in_features, device=device) // size


def _divisor_hint(n: int) -> str:
    for g in (128, 64, 32, 16):
        if n % g == 0:
            return str(g)
    return "a divisor"


def round_scale(scale: torch.Tensor) -> torch.Tensor:
    """Scales as the kernels store them: bf16 values, held in fp32; never zero."""
    scale = scale.clamp(min=1e-8)
    return scale.to(torch.bfloat16).float().clamp(min=torch.finfo(torch.bfloat16).tiny)


def fit_params(w: torch.Tensor, scheme: QuantScheme, clip: torch.Tensor | float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Min/max scale and zero point of each row of `w` ([rows, cols] = one group per row).

    `clip` (scalar or per-row) shrinks the range before fitting (AWQ's clipping search, GPTQ's
    MSE search). Returns fp32 scale [rows] and integer-valued fp32 zero [rows].
    """
    w = w.float()
    if scheme.symmetric:
        absmax = w.abs().amax(dim=1) * clip
        scale = round_scale(2 * absmax / scheme.maxq)
        zero = torch.full_like(scale, float(2 ** (scheme.bits - 1)))
    else:
        xmin = w.amin(dim=1).clamp(max=0) * clip
        xmax = w.amax(dim=1).clamp(min=0) * clip
        scale = round_scale((xmax - xmin) / scheme.maxq)
        zero = torch.round(-xmin / scale).clamp(0, scheme.maxq)
    return scale, zero


def group_params(w: torch.Tensor, scheme: QuantScheme, where: str = "a layer") -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero [rows, groups] of a whole weight with contiguous groups."""
    rows, cols = w.shape
    n = scheme.groups(cols, where)
    grouped = w.reshape(rows * n, cols // n)
    scale, zero = fit_params(grouped, scheme)
    return scale.reshape(rows, n), zero.reshape(rows, n)


def quantize(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, scheme: QuantScheme,
             g_idx: torch.Tensor | None = None) -> torch.Tensor:
    """Integer codes q in [0, maxq] (int32 [rows, cols]) of `w` on the grid (scale, zero [rows, groups])."""
    g_idx = scheme.default_g_idx(w.shape[1], w.device) if g_idx is None else g_idx
    s, z = scale[:, g_idx], zero[:, g_idx]
    return torch.clamp(torch.round(w.float() / s) + z, 0, scheme.maxq).to(torch.int32)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, g_idx: torch.Tensor | None = None,
               group_size: int | None = None) -> torch.Tensor:
    """fp32 weight (q - z) * s; groups from `g_idx`, else contiguous of `group_size` (None: per-channel)."""
    if g_idx is None:
        size = group_size or q.shape[1]
        g_idx = torch.arange(q.shape[1], device=q.device) // size
    return (q.float() - zero[:, g_idx]) * scale[:, g_idx]


def quantize_columns(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, maxq: int) -> torch.Tensor:
    """Round one column block x [rows, k] to the grid of per-row (scale, zero) [rows] and dequantize (GPTQ's inner step)."""
    q = torch.clamp(torch.round(x / scale.unsqueeze(1)) + zero.unsqueeze(1), 0, maxq)
    return (q - zero.unsqueeze(1)) * scale.unsqueeze(1)


@dataclass
class QuantizedWeight:
    """What a quantizer leaves on a linear (as `linear.quantized`) for packing and export.

    The linear's float weight is also set to the dequantized values, so the model keeps
    working unpacked (fake-quantized) until `pack_model` swaps in the integer kernels.
    """

    q: torch.Tensor  # int32 [out, in], values in [0, 2^bits - 1]
    scale: torch.Tensor  # fp32 [out, groups] (bf16-representable)
    zero: torch.Tensor  # fp32 integer-valued [out, groups]
    scheme: QuantScheme
    g_idx: torch.Tensor | None = None  # int [in]; None means contiguous groups
    # None: weight-only (activations stay float, "W4A16"); "int8-per-token": activations are
    # quantized dynamically per token to int8 at run time (SmoothQuant's W8A8).
    activations: str | None = None

    def dequantize(self) -> torch.Tensor:
        return dequantize(self.q, self.scale, self.zero, self.g_idx, self.scheme.group_size)


def attach(linear: torch.nn.Linear, qw: QuantizedWeight) -> None:
    """Record `qw` on the linear and make its float weight the dequantized grid values."""
    linear.weight.data.copy_(qw.dequantize().to(linear.weight.dtype))
    linear.quantized = qw  # type: ignore[attr-defined]


def on_grid(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, scheme: QuantScheme,
            g_idx: torch.Tensor | None = None) -> bool:
    """True when every value of `w` is (q - z) * s for an integer q in [0, maxq] of its group (test helper)."""
    g_idx = scheme.default_g_idx(w.shape[1], w.device) if g_idx is None else g_idx
    s, z = scale[:, g_idx], zero[:, g_idx]
    q = w.float() / s + z
    return bool(torch.all((q - q.round()).abs() < 1e-3) and torch.all(q.round() >= 0) and torch.all(q.round() <= scheme.maxq))
