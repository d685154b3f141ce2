"""Random pruning: drop a uniformly random subset of each linear's weights. The floor every
pruning method must beat (it ignores both weights and data), asked for as a sanity baseline."""

from __future__ import annotations

import zlib

import torch
from pydantic import Field

from unicomp.compress.prune.common import PruneConfig, PruningMethod, layer_stats
from unicomp.compress.prune.masks import lowest_mask, nm_mask
from unicomp.compress.registry import register


class RandomConfig(PruneConfig):
    seed: int = Field(0, description="random scores are drawn per layer from this seed and the layer's name")


@register
class RandomPruning(PruningMethod):
    name = "random"
    needs_calibration = False
    summary_line = "drop uniformly random weights per layer (unstructured or N:M): the baseline to beat"
    Config = RandomConfig

    def compress_linear(self, name, linear: torch.nn.Linear, stats=None):
        w = linear.weight.data
        # Seeded by the layer's name too, so layers get different masks and a rerun the same ones.
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + zlib.crc32(name.encode()))
        scores = torch.rand(w.shape, generator=g)
        pattern = self.config.parsed
        mask = nm_mask(scores, pattern) if pattern.structured else lowest_mask(scores, self.config.sparsity, per_row=False)
        w[mask.to(w.device)] = 0
        return layer_stats(w)
