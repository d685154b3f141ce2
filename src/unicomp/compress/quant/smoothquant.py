"""SmoothQuant (Xiao et al. 2023): migrate activation outliers into weights, then W8A8.

Per-token int8 activations fail on LLMs because a few input channels carry values 10-100x
larger than the rest, so one token's int8 step is set by its outlier channels and the other
channels round to a handful of levels. SmoothQuant divides each channel j of a norm's output by

    s_j = max|X_j|^alpha / max_i |W_ij|^(1 - alpha)      (max over all linears reading X)

and multiplies the linears' input columns by s_j: the fp function is unchanged, activation
ranges flatten, and the weights (quantized per output channel, where a column scale costs
little) absorb the difference. alpha is the migration strength (0.8 as recommended for
Llama-class models by the reference and llm-compressor's examples).

As in the reference and llm-compressor's default mappings, only pairs whose `previous` is a
norm are smoothed (input_layernorm -> q/k/v, post_attention_layernorm or Gemma's
pre_feedforward_layernorm -> gate/up); o_proj and down_proj are quantized unsmoothed.

Every target linear then gets int8 symmetric per-channel weights, recorded with
`activations="int8-per-token"`. `weights: gptq` (default: the paper's recipe, llm-compressor's W8A8
= SmoothQuantModifier(0.8) then GPTQModifier) quantizes them with GPTQ on the Hessian of the
smoothed inputs. As in llm-compressor's sequential pipeline, one calibration pass per decoder layer
collects the smoothing statistics and the Hessians of all its linears (later layers see the
quantized earlier ones; inside a layer nothing is re-run), and a smoothed linear reads x / s, so
its Hessian is a smoothed linear reads x / s, so its Hessian is
diag(1/s) H diag(1/s), computed from the H collected before smoothing. `weights: rtn` rounds
to nearest (the SmoothQuant paper's own W8A8). Only weights are quantized here: in the unpacked
(fake-quantized) model activations stay float. The dynamic per-token int8 activation
quantization happens in the packed W8A8 module (quant/packed.py), which reads that field.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, field_validator

from unicomp.compress.base import Accumulator, LayerContext, MethodConfig
from unicomp.compress.hessian import Hessian
from unicomp.compress.quant.grid import QuantizedWeight, QuantScheme, attach, group_params, quantize
from unicomp.compress.quant.rtn import QuantMethod, weight_error_stats
from unicomp.compress.quant.smoothing import MIN_SCALE, fold_scale, smoothable
from unicomp.errors import UnicompError
from unicomp.compress.registry import register

W8_PER_CHANNEL = QuantScheme(bits=8, symmetric=True, group_size=None)
ACTIVATIONS = "int8-per-token"


class SmoothQuantConfig(MethodConfig):
    """alpha: how much of the activations' range moves into the weights (0: none, 1: all);
    weights: how the smoothed int8 weights are found."""

    alpha: float = 0.8
    weights: Literal["gptq", "rtn"] = "gptq"
    actorder: bool = Field(True, description="gptq: columns by decreasing Hessian diagonal")
    dampening: float = Field(0.01, gt=0, lt=1, description="gptq: fraction of mean(diag H) added to the diagonal")

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v: float) -> float:
        if not 0.0 < v < 1.0:
            raise UnicompError(f"smoothquant alpha must be strictly between 0 and 1, got {v}",
                               "use e.g. 0.5 (OPT) to 0.85 (Llama); 0.8 is the default")
        return v

    @property
    def scheme(self) -> QuantScheme:
        """Fixed W8 per-channel symmetric grid: what int8 GEMM kernels with per-token activations expect."""
        return W8_PER_CHANNEL


class SmoothStats(Accumulator):
    """Per-channel max |x| for the smoothing scales and, for GPTQ weights, the inputs' Hessian."""

    def __init__(self, in_features: int, device: torch.device, hessian: bool) -> None:
        self.absmax = AbsMax(in_features)
        self.hessian = Hessian(in_features, device) if hessian else None

    @property
    def tokens(self) -> int:
        return self.absmax.tokens

    def add(self, x: torch.Tensor) -> None:
        self.absmax.add(x)
        if self.hessian is not None:
            self.hessian.add(x)


class AbsMax(Accumulator):
    """Per-input-channel max |x| over every calibration token (fp32)."""

    def __init__(self, in_features: int) -> None:
        self.absmax = torch.zeros(in_features, dtype=torch.float32)
        self.tokens = 0

    def add(self, x: torch.Tensor) -> None:
        m = x.detach().float().abs().amax(dim=0)
        if self.absmax.device != m.device:
            self.absmax = self.absmax.to(m.device)
        self.absmax = torch.maximum(self.absmax, m)
        self.tokens += x.shape[0]


def smoothing_scale(act_absmax: torch.Tensor, weights: list[torch.Tensor], alpha: float) -> torch.Tensor:
    """s_j = max|X_j|^alpha / max|W_:,j|^(1-alpha), clamped as the reference (smooth_ln_fcs) does."""
    w_absmax = torch.stack([w.detach().float().abs().amax(dim=0) for w in weights]).amax(dim=0).clamp(min=MIN_SCALE)
    act = act_absmax.float().to(w_absmax.device)
    return (act.pow(alpha) / w_absmax.pow(1.0 - alpha)).clamp(min=MIN_SCALE)


def quantize_w8(linear: torch.nn.Linear) -> dict[str, Any]:
    """int8 symmetric per-channel weights on the shared grid, attached for W8A8 packing."""
    w = linear.weight.data.float().clone()
    scale, zero = group_params(w, W8_PER_CHANNEL)
    attach(linear, QuantizedWeight(q=quantize(w, scale, zero, W8_PER_CHANNEL), scale=scale, zero=zero,
                                   scheme=W8_PER_CHANNEL, activations=ACTIVATIONS))
    return weight_error_stats(w, linear.weight.data)


@register
class SmoothQuant(QuantMethod):
    name = "smoothquant"
    Config = SmoothQuantConfig
    quantizes_activations = True
    summary_line = "migrate activation outliers into weights (per-channel scales), then int8 weights for W8A8"

    def accumulator(self, name: str, linear: torch.nn.Linear) -> Accumulator:
        return SmoothStats(linear.in_features, linear.weight.device, hessian=self.config.weights == "gptq")

    def smooth_layer(self, ctx: LayerContext, linears: dict[str, torch.nn.Linear],
                     stats: dict[str, Accumulator]) -> dict[str, dict[str, Any]]:
        """Fold SmoothQuant scales into every norm -> linears pair of the layer (an fp identity).

        Returns, per smoothed linear, what was done (for the per-layer report; "scale" is dropped
        before reporting).
        """
        done: dict[str, dict[str, Any]] = {}
        for entry in smoothable(ctx.layer, ctx.anatomy.smoothing, norms_only=True):
            if not all(n in linears and isinstance(stats.get(n), SmoothStats) for n in entry.linears):
                continue
            act = stats[entry.linears[0]].absmax.absmax  # type: ignore[attr-defined]  # shared input: one accumulator
            scale = smoothing_scale(act, [linears[n].weight for n in entry.linears], self.config.alpha)
            fold_scale(ctx.layer, entry, scale, ctx.anatomy.norm_weight_offset)
            info = {"smoothed_from": entry.previous, "smooth_scale_min": float(scale.min()),
                    "smooth_scale_max": float(scale.max()), "scale": scale}
            done.update({n: info for n in entry.linears})
        return done

    def _gptq(self) -> Any:
        from unicomp.compress.quant.gptq import GPTQ, GPTQConfig

        return GPTQ(GPTQConfig(bits=8, group_size=None, symmetric=True, actorder=self.config.actorder,
                               dampening=self.config.dampening))

    def compress_group(self, ctx: LayerContext, linears: dict[str, torch.nn.Linear],
                       stats: dict[str, Accumulator]) -> dict[str, dict[str, Any]]:
        """Smooth the group's norm -> linears pairs, then quantize every linear's weights to int8."""
        with torch.inference_mode(False), torch.no_grad():
            smoothed = self.smooth_layer(ctx, linears, stats)
            results = {}
            gptq = self._gptq() if self.config.weights == "gptq" else None
            prepared: dict[int, Any] = {}
            for name, linear in linears.items():
                info = dict(smoothed.get(name, {"smoothed_from": None}))
                scale = info.pop("scale", None)
                if gptq is None:
                    results[name] = {**quantize_w8(linear), **info}
                    continue
                acc = stats[name]
                if id(acc) not in prepared:  # shared input (q/k/v, gate/up): one Hessian, smoothed once
                    h = acc.hessian  # type: ignore[attr-defined]
                    if scale is not None:
                        inv = 1.0 / scale.float().to(h.h.device)
                        h.h = h.h * inv[:, None] * inv[None, :]
                    prepared[id(acc)] = (h, gptq.prepare(f"{ctx.prefix}.{name}", h))
                h, ready = prepared[id(acc)]
                report = gptq.quantize_linear(f"{ctx.prefix}.{name}", linear, h, ready)
                linear.quantized.activations = ACTIVATIONS  # type: ignore[attr-defined]
                results[name] = {**report, **info}
            return results

    def compress_linear(self, name: str, linear: torch.nn.Linear, stats: Accumulator | None) -> dict[str, Any]:
        """Without its layer there is nothing to smooth into: int8 per-channel weights (GPTQ's when
        this linear's Hessian was collected, else round to nearest)."""
        with torch.inference_mode(False), torch.no_grad():
            hessian = getattr(stats, "hessian", None)
            if self.config.weights == "gptq" and hessian is not None:
                gptq = self._gptq()
                report = gptq.quantize_linear(name, linear, hessian, gptq.prepare(name, hessian))
                linear.quantized.activations = ACTIVATIONS  # type: ignore[attr-defined]
                return {**report, "smoothed_from": None}
            return {**quantize_w8(linear), "smoothed_from": None}

    def summarize(self, per_layer: dict[str, dict[str, Any]]) -> dict[str, Any]:
        summary = super().summarize(per_layer)
        smoothed = sum(1 for v in per_layer.values() if v.get("smoothed_from"))
        return {**summary, "alpha": self.config.alpha, "weights": self.config.weights, "activations": ACTIVATIONS,
                "smoothed_linears": smoothed}
