"""Moving per-input-channel scales between a norm (or linear) and the linears it feeds.

SmoothQuant and AWQ both rely on one identity: for linears W reading y = previous(x),
W y = (W diag(s)) (diag(s)^-1 y). Dividing `previous`'s output channels by s and multiplying
the linears' input columns by s leaves the fp output unchanged while changing what the
quantizer sees (SmoothQuant: flatter activations; AWQ: salient weight columns scaled up).

The helpers here only fold scales; they never quantize, so before quantization a folded model
computes the same function as the original (up to fp rounding). Which pairs qualify comes from
`Anatomy.smoothing`; a linear `previous` qualifies only when its output width equals the
linears' input width (v_proj -> o_proj is skipped under grouped-query attention, where v_proj
produces fewer channels than o_proj reads, each shared by several heads).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from unicomp.errors import UnicompError
from unicomp.models.anatomy import Smoothing

MIN_SCALE = 1e-5
"""Smallest scale ever folded: SmoothQuant's reference clamp; keeps 1/s finite for dead channels."""


def previous_is_norm(layer: torch.nn.Module, smoothing: Smoothing) -> bool:
    """True when `previous` is a normalisation (anything that is not a linear)."""
    return not isinstance(layer.get_submodule(smoothing.previous), torch.nn.Linear)


def can_smooth(layer: torch.nn.Module, smoothing: Smoothing) -> bool:
    """Whether folding a scale across this pair is an identity for this layer's shapes.

    A norm always qualifies (its weight is per channel of what the linears read). A linear
    `previous` qualifies only when its outputs are exactly the linears' inputs, channel for
    channel; under grouped-query attention v_proj has fewer outputs than o_proj has inputs.
    """
    linears = [layer.get_submodule(name) for name in smoothing.linears]
    width = {lin.in_features for lin in linears}
    if len(width) != 1:
        return False
    prev = layer.get_submodule(smoothing.previous)
    if isinstance(prev, torch.nn.Linear):
        return prev.out_features == width.pop()
    weight = getattr(prev, "weight", None)
    return isinstance(weight, torch.Tensor) and weight.dim() == 1 and weight.numel() == width.pop()


def smoothable(layer: torch.nn.Module, entries: tuple[Smoothing, ...], *,
               norms_only: bool = False) -> Iterator[Smoothing]:
    """The entries of `entries` whose fold is an identity for this layer (optionally norms only)."""
    for entry in entries:
        if norms_only and not previous_is_norm(layer, entry):
            continue
        if can_smooth(layer, entry):
            yield entry


def _check_scale(scale: torch.Tensor, width: int, where: str) -> torch.Tensor:
    if scale.dim() != 1 or scale.numel() != width:
        raise UnicompError(f"smoothing scale for {where} has shape {tuple(scale.shape)}, expected ({width},)",
                           "this is a bug in the smoothing method")
    if not bool(torch.all(scale > 0)) or not bool(torch.isfinite(scale).all()):
        raise UnicompError(f"smoothing scale for {where} is not positive and finite",
                           "this is a bug in the smoothing method (scales must be clamped before folding)")
    return scale.float()


@torch.no_grad()
def scale_previous(prev: torch.nn.Module, scale: torch.Tensor, norm_weight_offset: float = 0.0) -> None:
    """Divide `prev`'s output channels by `scale` (in fp32, stored back in the module's dtype).

    A linear's rows (and bias) are divided. A norm computing x_hat * (offset + w) gets
    w' = (offset + w) / s - offset, so that offset + w' = (offset + w) / s; Gemma's RMSNorm
    multiplies by (1 + w), and dividing w alone would not divide its output.
    """
    weight = getattr(prev, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise UnicompError(f"cannot fold a scale into {type(prev).__name__}: it has no weight",
                           "SmoothQuant/AWQ cannot smooth across this norm type; "
                           "remove its entry from Anatomy.smoothing")
    if isinstance(prev, torch.nn.Linear):
        weight.data.copy_((weight.data.float() / scale.unsqueeze(1)).to(weight.dtype))
    else:
        new = (norm_weight_offset + weight.data.float()) / scale - norm_weight_offset
        weight.data.copy_(new.to(weight.dtype))
    bias = getattr(prev, "bias", None)
    if isinstance(bias, torch.Tensor):
        bias.data.copy_((bias.data.float() / scale).to(bias.dtype))


@torch.no_grad()
def scale_inputs(linear: torch.nn.Linear, scale: torch.Tensor) -> None:
    """Multiply the linear's input columns by `scale` (its bias is untouched: it is added after)."""
    w = linear.weight
    w.data.copy_((w.data.float() * scale.unsqueeze(0)).to(w.dtype))


def fold_scale(layer: torch.nn.Module, smoothing: Smoothing, scale: torch.Tensor,
               norm_weight_offset: float = 0.0) -> None:
    """Fold a positive per-channel `scale` across `smoothing`: previous / s, linears * s.

    Refuses pairs whose shapes do not allow it (see `can_smooth`) rather than silently
    changing the model's function.
    """
    if not can_smooth(layer, smoothing):
        raise UnicompError(f"cannot smooth {smoothing.previous} -> {', '.join(smoothing.linears)}: shapes differ",
                           "skip this entry (can_smooth) e.g. v_proj -> o_proj under grouped-query attention")
    linears = [layer.get_submodule(name) for name in smoothing.linears]
    scale = _check_scale(scale.to(linears[0].weight.device), linears[0].in_features, smoothing.previous)
    scale_previous(layer.get_submodule(smoothing.previous), scale, norm_weight_offset)
    for linear in linears:
        scale_inputs(linear, scale)
