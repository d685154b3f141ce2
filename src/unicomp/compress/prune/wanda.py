"""Wanda (Sun et al., 2023): prune by |W_ij| * ||X_j||_2, compared within each output row.

The input norm per channel comes from calibration activations; no weight update follows,
which makes Wanda almost as cheap as magnitude pruning.
"""

from __future__ import annotations

import torch

from unicomp.compress.base import Accumulator
from unicomp.compress.prune.common import PruningMethod, layer_stats
from unicomp.compress.prune.masks import lowest_mask, nm_mask
from unicomp.compress.registry import register


class InputNorms(Accumulator):
    """Sum over calibration tokens of x_j^2 for every input channel j (fp32)."""

    def __init__(self, in_features: int, device: torch.device) -> None:
        self.sq = torch.zeros(in_features, dtype=torch.float32, device=device)
        self.tokens = 0

    def add(self, x: torch.Tensor) -> None:
        x = x.float()
        self.sq += (x * x).sum(dim=0)
        self.tokens += x.shape[0]


def wanda_scores(weight: torch.Tensor, sq_norms: torch.Tensor) -> torch.Tensor:
    return weight.abs().float() * torch.sqrt(sq_norms).unsqueeze(0)


@register
class Wanda(PruningMethod):
    name = "wanda"
    summary_line = "prune by |w| x input-activation norm, per output row"

    def accumulator(self, name, linear):
        return InputNorms(linear.in_features, linear.weight.device)

    def compress_linear(self, name, linear: torch.nn.Linear, stats: InputNorms):
        w = linear.weight.data
        scores = wanda_scores(w, stats.sq)
        pattern = self.config.parsed
        mask = nm_mask(scores, pattern) if pattern.structured else lowest_mask(scores, self.config.sparsity, per_row=True)
        w[mask] = 0
        return {**layer_stats(w), "calibration_tokens": stats.tokens}
