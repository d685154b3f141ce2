"""Round-to-nearest (RTN): every weight to the nearest point of its group's min/max grid.

No calibration data and no error correction; the baseline every data-aware quantizer must beat.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, field_validator

from unicomp.compress.base import Method, MethodConfig
from unicomp.compress.quant.grid import QuantizedWeight, QuantScheme, attach, check_bits, group_params, quantize
from unicomp.compress.registry import register


class QuantConfig(MethodConfig):
    """Options shared by the weight quantizers."""

    bits: int = 4
    group_size: int | None = Field(128, description="input columns per scale; null = one scale per output row")
    symmetric: bool = True

    @field_validator("bits")
    @classmethod
    def _bits(cls, v: int) -> int:
        return check_bits(v)

    @property
    def scheme(self) -> QuantScheme:
        return QuantScheme(bits=self.bits, symmetric=self.symmetric, group_size=self.group_size)


def weight_error_stats(original: torch.Tensor, quantized: torch.Tensor) -> dict[str, Any]:
    diff = (original.float() - quantized.float())
    return {"shape": list(original.shape), "weight_rel_error": float(diff.norm() / original.float().norm().clamp(min=1e-12))}


def summarize_quant(per_layer: dict[str, dict[str, Any]], scheme: QuantScheme) -> dict[str, Any]:
    errors = [v["weight_rel_error"] for v in per_layer.values() if "weight_rel_error" in v]
    return {"bits": scheme.bits, "group_size": scheme.group_size, "symmetric": scheme.symmetric, "layers": len(per_layer),
            "mean_weight_rel_error": sum(errors) / len(errors) if errors else None}


class QuantMethod(Method):
    family = "quantization"
    Config = QuantConfig
    quantizes_activations: bool = False  # True for W8A8 (activations rounded per token at run time)

    def summarize(self, per_layer):
        return summarize_quant(per_layer, self.config.scheme)

    def check_model(self, model, anatomy) -> None:
        """Refuse, before any calibration work, a group size that does not divide some linear's inputs."""
        scheme = self.config.scheme
        for index, layer in enumerate(model.get_submodule(anatomy.layers)):
            for name in anatomy.linears:
                scheme.groups(layer.get_submodule(name).in_features, where=f"{anatomy.layers}.{index}.{name}")


@register
class RTN(QuantMethod):
    name = "rtn"
    needs_calibration = False
    summary_line = "round to nearest on a per-group min/max grid (no data)"

    def compress_linear(self, name, linear: torch.nn.Linear, stats=None):
        scheme = self.config.scheme
        w = linear.weight.data.float().clone()
        scale, zero = group_params(w, scheme, where=name)
        qw = QuantizedWeight(q=quantize(w, scale, zero, scheme), scale=scale, zero=zero, scheme=scheme)
        attach(linear, qw)
        return weight_error_stats(w, linear.weight.data)
