"""Config and bookkeeping shared by the pruning methods."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import field_validator

from unicomp.compress.base import Method, MethodConfig
from unicomp.compress.prune.masks import Pattern, check_sparsity, parse_pattern


class PruneConfig(MethodConfig):
    sparsity: float = 0.5
    pattern: str = "unstructured"  # or N:M, e.g. "2:4" (N kept of every M)
    # The output head is left dense unless asked: it is one matrix the size of the vocabulary,
    # and with tied embeddings pruning it would prune the input embeddings too (they get untied).
    include_lm_head: bool = False

    @field_validator("sparsity")
    @classmethod
    def _sparsity(cls, v: float) -> float:
        return check_sparsity(v)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        return str(parse_pattern(v))

    @property
    def parsed(self) -> Pattern:
        return parse_pattern(self.pattern)


def layer_stats(weight: torch.Tensor) -> dict[str, Any]:
    zeros = int((weight == 0).sum())
    return {"sparsity": zeros / weight.numel(), "zeros": zeros, "numel": weight.numel(), "shape": list(weight.shape)}


def summarize_sparsity(per_layer: dict[str, dict[str, Any]]) -> dict[str, Any]:
    zeros = sum(v["zeros"] for v in per_layer.values())
    numel = sum(v["numel"] for v in per_layer.values())
    return {"sparsity": zeros / numel if numel else 0.0, "pruned_weights": zeros, "target_weights": numel,
            "layers": len(per_layer)}


class PruningMethod(Method):
    """Shared by the pruning methods: the family name and the sparsity summary."""

    family = "pruning"
    Config = PruneConfig

    @property
    def compresses_lm_head(self) -> bool:
        return self.config.include_lm_head

    def summarize(self, per_layer: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return summarize_sparsity(per_layer)
