"""Magnitude pruning: drop the smallest |w| of each linear layer. No data, the cheap baseline."""

from __future__ import annotations

import torch

from unicomp.compress.prune.common import PruningMethod, layer_stats
from unicomp.compress.prune.masks import lowest_mask, nm_mask
from unicomp.compress.registry import register


@register
class Magnitude(PruningMethod):
    name = "magnitude"
    needs_calibration = False
    summary_line = "drop the smallest |w| per layer (unstructured) or per N:M group"

    def compress_linear(self, name, linear: torch.nn.Linear, stats=None):
        w = linear.weight.data
        scores = w.abs().float()
        pattern = self.config.parsed
        mask = nm_mask(scores, pattern) if pattern.structured else lowest_mask(scores, self.config.sparsity, per_row=False)
        w[mask] = 0
        return layer_stats(w)
