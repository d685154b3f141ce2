"""AWQ (Lin et al. 2023): activation-aware weight-only quantization (W4A16 by default).

A few input channels of each linear carry much larger activations than the rest; rounding
errors in the weights of those "salient" columns dominate the output error. AWQ scales these
columns up before quantization (and the activations down by folding 1/s into the previous norm
or linear, an fp identity), so they get relatively finer grid steps. Per layer, as AutoAWQ
(`auto_scale.py`, `auto_clip.py`) does:

1. For every `Anatomy.smoothing` entry, in layer order: for alpha in {0, 1/grid, ..., (grid-1)/grid}
   take s = mean|x|^alpha normalised by sqrt(max(s) min(s)), fake-quantize the group's linears
   as Q(W s) / s, run the inspected module (self_attn, o_proj, mlp, down_proj) on cached
   inputs and keep the s with the lowest MSE to its fp output. alpha = 0 is plain RTN, so the
   search never does worse than RTN on the data it sees. The best s is folded into the
   previous module and the linears (whole layer at once, not true-sequential).
2. Weight clipping: for every linear except q/k (their error passes through softmax, which a
   per-linear output error does not model), each quantization group picks the shrink ratio of
   its range in {1, 1 - 1/grid, ..., > 0.5} minimising its partial output error on the cached
   inputs.
3. Every linear is quantized on the (clipped) grid and a QuantizedWeight attached.

Differences from AutoAWQ, on purpose: s uses mean|x| only (the paper's form; AutoAWQ's default
`duo_scaling` also divides by a per-channel weight magnitude); the clip search scores every
cached token through per-group Gram matrices instead of 512 sampled tokens (exact and cheaper);
the grid is unicomp's (bf16 scales, zero point over [min(w, 0), max(w, 0)]), so the search
optimises the very grid the packed kernels use.

Cost control: the searches run on at most `search_tokens` calibration tokens (whole sequences,
evenly spaced, so attention still sees complete contexts), re-captured by one extra layer pass;
mean|x| itself comes from every calibration token through the engine's accumulators. Inputs
are cached only for that subsample, so memory stays ~a few times the subsample's activations.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field, field_validator
from torch.func import functional_call

from unicomp.compress.base import Accumulator, LayerContext
from unicomp.compress.quant.grid import (QuantizedWeight, QuantScheme, attach, fit_params, quantize,
                                         quantize_columns)
from unicomp.compress.quant.rtn import QuantConfig, QuantMethod, weight_error_stats
from unicomp.compress.quant.smoothing import can_smooth, fold_scale
from unicomp.errors import UnicompError
from unicomp.models.anatomy import Smoothing
from unicomp.compress.registry import register

NO_CLIP = ("q_proj", "k_proj")
"""Linears AutoAWQ never clips: their outputs feed the attention softmax, where the per-linear
output MSE the clip search minimises says little about the attention output."""

MAX_SHRINK = 0.5
"""Clip ratios go from 1 down towards 1 - MAX_SHRINK (exclusive), as AutoAWQ's auto_clip."""


class AWQConfig(QuantConfig):
    """W4A16 asymmetric groups of 128 by default, as AWQ's reference checkpoints."""

    symmetric: bool = False
    grid: int = Field(20, description="grid points of the scale search (alpha) and the clip search")
    clip: bool = Field(True, description="search a per-group clipping ratio after scaling (AutoAWQ auto_clip)")
    search_tokens: int | None = Field(
        4096, description="calibration tokens (whole sequences, evenly spaced) the searches run on; null = all")

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: int) -> int:
        if v < 1:
            raise UnicompError(f"awq grid must be at least 1, got {v}", "use e.g. 20 (AutoAWQ's default)")
        return v

    @field_validator("search_tokens")
    @classmethod
    def _search_tokens(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise UnicompError(f"awq search_tokens must be positive, got {v}", "use e.g. 4096, or null for all tokens")
        return v


class MeanAbs(Accumulator):
    """Per-input-channel mean |x| over every calibration token (fp32): AWQ's saliency measure."""

    def __init__(self, in_features: int) -> None:
        self.total = torch.zeros(in_features, dtype=torch.float32)
        self.tokens = 0

    def add(self, x: torch.Tensor) -> None:
        s = x.detach().float().abs().sum(dim=0)
        if self.total.device != s.device:
            self.total = self.total.to(s.device)
        self.total = self.total + s
        self.tokens += x.shape[0]

    @property
    def mean(self) -> torch.Tensor:
        return self.total / max(self.tokens, 1)


# ---------------------------------------------------------------- grid with clipping

def grid_params(w: torch.Tensor, scheme: QuantScheme, clip: torch.Tensor | float = 1.0,
                where: str = "a layer") -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero [rows, groups] of `w` whose group ranges are shrunk by `clip` (scalar or [rows, groups]).

    Values outside a shrunk range are clamped to the end codes by `quantize`: that is the clipping.
    """
    rows, cols = w.shape
    n = scheme.groups(cols, where)
    _, scale, zero = _fit_groups(w, scheme, clip, where)
    return scale.reshape(rows, n), zero.reshape(rows, n)


def _fit_groups(w: torch.Tensor, scheme: QuantScheme, clip: torch.Tensor | float,
                where: str = "a layer") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`w` as one row per group [rows * groups, group_size] (fp32) with each row's (clipped) scale and zero."""
    rows, cols = w.shape
    n = scheme.groups(cols, where)
    groups = w.float().reshape(rows * n, cols // n)
    scale, zero = fit_params(groups, scheme, clip.reshape(-1) if isinstance(clip, torch.Tensor) else clip)
    return groups, scale, zero


def fake_quantize(w: torch.Tensor, scheme: QuantScheme, clip: torch.Tensor | float = 1.0) -> torch.Tensor:
    """`w` rounded to its own (clipped) grid and dequantized, fp32: the same values `quantize` +
    `dequantize` give, computed group-wise by reshaping (the searches call this hundreds of times)."""
    groups, scale, zero = _fit_groups(w, scheme, clip)
    return quantize_columns(groups, scale, zero, scheme.maxq).reshape(w.shape)


# ---------------------------------------------------------------- calibration subsample

def _take_rows(obj: Any, rows: torch.Tensor, batch: int) -> Any:
    """Select batch rows of every per-row tensor in a layer's keyword arguments.

    Only tensors of 2+ dims whose first dim is the batch are per-row (masks [b, 1, s, s],
    rotary [b, s, d]); broadcast ones ([1, s, d]) and 1-D ones are shared by every row.
    """
    if isinstance(obj, torch.Tensor):
        return obj[rows] if obj.dim() >= 2 and obj.shape[0] == batch else obj
    if isinstance(obj, tuple):
        return tuple(_take_rows(o, rows, batch) for o in obj)
    if isinstance(obj, list):
        return [_take_rows(o, rows, batch) for o in obj]
    if isinstance(obj, dict):
        return {k: _take_rows(v, rows, batch) for k, v in obj.items()}
    return obj


def sample_sequences(hidden: list[torch.Tensor], kwargs: list[dict[str, Any]],
                     max_tokens: int | None) -> list[tuple[torch.Tensor, dict[str, Any]]]:
    """A deterministic, evenly spaced subset of whole calibration sequences of about `max_tokens` tokens.

    Whole sequences (not scattered tokens) so that attention, which AWQ inspects for q/k/v,
    still sees each token's full context. At least one sequence is always kept.
    """
    batches = list(zip(hidden, kwargs))
    total = sum(h.shape[:-1].numel() for h in hidden)
    if max_tokens is None or total <= max_tokens:
        return batches
    seqs = [(i, r) for i, h in enumerate(hidden) for r in range(h.shape[0])]
    want = max(1, min(len(seqs), int(max_tokens * len(seqs) // total)))
    picks = torch.linspace(0, len(seqs) - 1, want).round().long().unique().tolist()
    by_batch: dict[int, list[int]] = {}
    for p in picks:
        i, r = seqs[p]
        by_batch.setdefault(i, []).append(r)
    out = []
    for i, rows in by_batch.items():
        h, kw = batches[i]
        if len(rows) == h.shape[0]:
            out.append((h, kw))
        else:
            idx = torch.tensor(rows, device=h.device)
            out.append((h[idx], _take_rows(kw, idx, h.shape[0])))
    return out


def _input_key(anatomy: Any, name: str, present: dict[str, Any]) -> str:
    """Linears reading the same tensor share one cached input: the first of their group present."""
    for group in anatomy.shared_inputs:
        if name in group:
            return next(n for n in group if n in present)
    return name


@dataclass
class LayerInputs:
    """What each target linear of the layer reads, on the search subsample (fp32, [b, s, in] per batch)."""

    kwargs: list[dict[str, Any]]  # the layer's keyword arguments per subsample batch
    x: dict[str, list[torch.Tensor]]  # by input key
    key: dict[str, str]  # linear name -> input key

    def of(self, name: str) -> list[torch.Tensor]:
        return self.x[self.key[name]]

    def flat(self, name: str) -> torch.Tensor:
        return torch.cat([x.reshape(-1, x.shape[-1]) for x in self.of(name)])

    def divide(self, name: str, scale: torch.Tensor) -> None:
        """After folding s into `name`'s columns its input is x / s (new tensors, shared by its group)."""
        key = self.key[name]
        self.x[key] = [x / scale for x in self.x[key]]


def capture_inputs(ctx: LayerContext, linears: dict[str, torch.nn.Linear], max_tokens: int | None) -> LayerInputs:
    """Run the (still uncompressed) layer once on the subsample with hooks caching every linear's input."""
    sample = sample_sequences(ctx.hidden, ctx.kwargs, max_tokens)
    keys = {name: _input_key(ctx.anatomy, name, linears) for name in linears}
    cache: dict[str, list[torch.Tensor]] = {key: [] for key in set(keys.values())}

    def hook_for(key: str):
        def hook(module, inputs, output) -> None:
            cache[key].append(inputs[0].detach().float().clone())
        return hook

    handles = [linears[key].register_forward_hook(hook_for(key)) for key in cache]
    try:
        with ctx.autocast():
            for h, kw in sample:
                ctx.layer(h, **kw)
    finally:
        for handle in handles:
            handle.remove()
    return LayerInputs(kwargs=[kw for _, kw in sample], x=cache, key=keys)


# ---------------------------------------------------------------- scale search

def _relative(inspect_name: str, linear_name: str) -> str:
    """Parameter name of `linear_name`'s weight inside the inspected module."""
    if linear_name == inspect_name:
        return "weight"
    if not linear_name.startswith(inspect_name + "."):
        raise UnicompError(f"AWQ inspects {inspect_name} but {linear_name} is not inside it",
                           "fix the Smoothing entry in unicomp/models/anatomy.py: `inspect` must contain its linears")
    return linear_name[len(inspect_name) + 1:] + ".weight"


def _takes_layer_kwargs(module: torch.nn.Module) -> bool:
    """Attention modules need the layer's masks and rotary embeddings; MLPs and linears take x only."""
    return "attention_mask" in inspect.signature(module.forward).parameters


@dataclass
class Inspected:
    """A module whose output AWQ compares, with the inputs to run it on."""

    module: torch.nn.Module
    xs: list[torch.Tensor]
    kwargs: list[dict[str, Any]]
    autocast: Any

    def __post_init__(self) -> None:
        self.dtype = next(self.module.parameters()).dtype
        self.with_kwargs = _takes_layer_kwargs(self.module)

    def run(self, weights: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """fp32 outputs per batch, with `weights` (relative names) in place of the module's own."""
        params = {k: v.to(self.dtype) for k, v in weights.items()}
        outs = []
        with self.autocast():
            for x, kw in zip(self.xs, self.kwargs):
                out = functional_call(self.module, params, (x.to(self.dtype),), kw if self.with_kwargs else {})
                outs.append((out[0] if isinstance(out, tuple) else out).float())
        return outs


def _mse(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    sq = sum(float((x - y).pow(2).sum()) for x, y in zip(a, b))
    return sq / max(sum(x.numel() for x in a), 1)


def awq_scale(x_mean: torch.Tensor, alpha: float) -> torch.Tensor:
    """s = mean|x|^alpha, normalised by sqrt(max s * min s) so scales straddle 1 (AutoAWQ)."""
    s = x_mean.float().pow(alpha).clamp(min=1e-4)
    s = s / (s.max() * s.min()).sqrt()
    return torch.where(torch.isfinite(s), s, torch.ones_like(s))


@dataclass
class ScaleChoice:
    alpha: float
    scale: torch.Tensor
    loss: float
    rtn_loss: float  # loss at alpha = 0 (s = 1): plain round-to-nearest of the group


def search_scale(inspected: Inspected, weights: dict[str, torch.Tensor], x_mean: torch.Tensor,
                 scheme: QuantScheme, grid: int) -> ScaleChoice:
    """The alpha whose scales give the lowest inspected-output MSE after fake-quantizing `weights`.

    `weights` maps the group's linears (names relative to the inspected module) to their fp32
    weights; the module's other parameters stay fp, as in AutoAWQ.
    """
    reference = inspected.run({})
    losses: list[tuple[float, float, torch.Tensor]] = []
    for i in range(grid):
        alpha = i / grid
        s = awq_scale(x_mean, alpha)
        trial = {k: fake_quantize(w * s, scheme) / s for k, w in weights.items()}
        losses.append((_mse(inspected.run(trial), reference), alpha, s))
    loss, alpha, s = min(losses, key=lambda t: t[0])  # first minimum: ties keep the smaller alpha
    return ScaleChoice(alpha=alpha, scale=s, loss=loss, rtn_loss=losses[0][0])


# ---------------------------------------------------------------- clip search

class GroupOutputError:
    """Mean squared partial output error of each (output row, group) for a weight change D.

    err[o, g] = mean_t (x_t,g . D_o,g)^2. With more tokens than group columns this is
    D_o,g^T H_g D_o,g with H_g = X_g^T X_g / T, computed once; otherwise directly. Either way
    the cost and memory stay within a few weight-sized tensors.
    """

    def __init__(self, x: torch.Tensor, group_size: int | None) -> None:
        tokens, cols = x.shape
        self.gs = group_size or cols
        self.n = cols // self.gs
        xg = x.float().reshape(tokens, self.n, self.gs)
        if self.gs <= tokens:
            self.gram: torch.Tensor | None = torch.einsum("tgc,tgd->gcd", xg, xg) / tokens
            self.x = None
        else:
            self.gram, self.x = None, xg

    def __call__(self, d: torch.Tensor) -> torch.Tensor:
        dg = d.float().reshape(d.shape[0], self.n, self.gs)
        if self.gram is not None:
            return (torch.einsum("ogc,gcd->ogd", dg, self.gram) * dg).sum(dim=-1)
        return torch.einsum("tgc,ogc->tog", self.x, dg).pow(2).mean(dim=0)


def clip_ratios(grid: int) -> list[float]:
    """1, 1 - 1/grid, ... while above 1 - MAX_SHRINK (AutoAWQ: 1.0 .. 0.55 for grid 20)."""
    return [1 - i / grid for i in range(max(1, int(MAX_SHRINK * grid)))]


def search_clip(w: torch.Tensor, x: torch.Tensor, scheme: QuantScheme, grid: int) -> torch.Tensor:
    """Per (row, group) shrink ratio of the grid range minimising the group's output error on `x`."""
    w = w.float()
    error = GroupOutputError(x, scheme.group_size)
    best_err: torch.Tensor | None = None
    best = torch.ones(w.shape[0], error.n, device=w.device)
    for ratio in clip_ratios(grid):
        err = error(fake_quantize(w, scheme, ratio) - w)
        if best_err is None:
            best_err = err
            continue
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best = torch.where(better, torch.full_like(best, ratio), best)
    return best


def quantize_clipped(linear: torch.nn.Linear, scheme: QuantScheme, clip: torch.Tensor | float,
                     where: str) -> dict[str, Any]:
    """Quantize the linear on its clipped grid and attach the codes (weight becomes their dequantized values)."""
    w = linear.weight.data.float().clone()
    scale, zero = grid_params(w, scheme, clip, where)
    attach(linear, QuantizedWeight(q=quantize(w, scale, zero, scheme), scale=scale, zero=zero, scheme=scheme))
    return weight_error_stats(w, linear.weight.data)


# ---------------------------------------------------------------- the method

@register
class AWQ(QuantMethod):
    name = "awq"
    Config = AWQConfig
    summary_line = "activation-aware scaling searched per layer, weight clipping, then round to nearest (W4A16)"

    def accumulator(self, name: str, linear: torch.nn.Linear) -> Accumulator:
        return MeanAbs(linear.in_features)

    def compress_linear(self, name: str, linear: torch.nn.Linear, stats: Accumulator | None) -> dict[str, Any]:
        raise UnicompError("awq compresses whole decoder layers (it moves scales between modules), not single linears",
                           "run it through compress_model / run_sequential, which call compress_group")

    def _x_mean(self, name: str, stats: dict[str, Accumulator], inputs: LayerInputs) -> torch.Tensor:
        """mean|x| over all calibration tokens; from the subsample when no accumulator saw the layer."""
        acc = stats.get(name)
        if isinstance(acc, MeanAbs) and acc.tokens:
            return acc.mean
        return inputs.flat(name).abs().mean(dim=0)

    def _smooth(self, ctx: LayerContext, entry: Smoothing, linears: dict[str, torch.nn.Linear],
                stats: dict[str, Accumulator], inputs: LayerInputs) -> ScaleChoice:
        """Search the best scale of one smoothing entry, fold it, and update the cached inputs."""
        cfg = self.config
        inspected = Inspected(ctx.layer.get_submodule(entry.inspect), inputs.of(entry.linears[0]), inputs.kwargs,
                              ctx.autocast)
        weights = {_relative(entry.inspect, n): linears[n].weight.detach().float() for n in entry.linears}
        x_mean = self._x_mean(entry.linears[0], stats, inputs).to(linears[entry.linears[0]].weight.device)
        choice = search_scale(inspected, weights, x_mean, cfg.scheme, cfg.grid)
        fold_scale(ctx.layer, entry, choice.scale, ctx.anatomy.norm_weight_offset)
        inputs.divide(entry.linears[0], choice.scale)
        return choice

    def compress_group(self, ctx: LayerContext, linears: dict[str, torch.nn.Linear],
                       stats: dict[str, Accumulator]) -> dict[str, dict[str, Any]]:
        """Scale search and fold per smoothing entry, then clip search and quantization per linear."""
        cfg = self.config
        with torch.inference_mode(False), torch.no_grad():
            inputs = capture_inputs(ctx, linears, cfg.search_tokens)
            chosen: dict[str, dict[str, Any]] = {}
            for entry in ctx.anatomy.smoothing:
                if not all(n in linears for n in entry.linears) or not can_smooth(ctx.layer, entry):
                    continue
                choice = self._smooth(ctx, entry, linears, stats, inputs)
                info = {"awq_alpha": choice.alpha, "awq_loss": choice.loss, "rtn_loss": choice.rtn_loss}
                chosen.update({n: info for n in entry.linears})
            return {name: {**self._quantize(ctx, name, linear, inputs), "awq_alpha": None, **chosen.get(name, {})}
                    for name, linear in linears.items()}

    def _quantize(self, ctx: LayerContext, name: str, linear: torch.nn.Linear, inputs: LayerInputs) -> dict[str, Any]:
        """Clip search (unless disabled or q/k), then quantize and attach. `weight_rel_error` is
        relative to the scaled fp weight the grid was fitted to."""
        cfg = self.config
        clip: torch.Tensor | float = 1.0
        if cfg.clip and name.rsplit(".", 1)[-1] not in NO_CLIP:
            clip = search_clip(linear.weight.data, inputs.flat(name), cfg.scheme, cfg.grid)
        stats = quantize_clipped(linear, cfg.scheme, clip, f"{ctx.prefix}.{name}")
        return {**stats, "clip_mean_ratio": float(clip.mean()) if isinstance(clip, torch.Tensor) else None}

    def summarize(self, per_layer: dict[str, dict[str, Any]]) -> dict[str, Any]:
        summary = super().summarize(per_layer)
        alphas = [v["awq_alpha"] for v in per_layer.values() if v.get("awq_alpha") is not None]
        clips = [v["clip_mean_ratio"] for v in per_layer.values() if v.get("clip_mean_ratio") is not None]
        return {**summary, "mean_alpha": sum(alphas) / len(alphas) if alphas else None,
                "mean_clip_ratio": sum(clips) / len(clips) if clips else None,
                "search_tokens": self.config.search_tokens, "grid": self.config.grid, "clip": self.config.clip}
