"""SparseGPT (Frantar & Alistarh, 2023): prune with optimal-brain-surgeon weight updates.

For each linear, H = 2/n X^T X over calibration tokens (fp32), dampened by 1% of its mean
diagonal. Columns are processed in blocks of 128: within a block the mask is chosen by
w^2 / [H^-1]_jj^2 (adaptive mask selection), each pruned weight's error is spread over the
not-yet-processed columns of its row through the inverse Hessian's Cholesky factor, and the
block's accumulated error updates all later columns at once.
"""

from __future__ import annotations

import torch
from pydantic import Field

from unicomp.compress.hessian import Hessian, inverse_hessian_cholesky
from unicomp.compress.prune.common import PruneConfig, PruningMethod, layer_stats
from unicomp.compress.prune.masks import Pattern, lowest_mask, nm_mask
from unicomp.compress.registry import register


class SparseGPTConfig(PruneConfig):
    dampening: float = Field(0.01, gt=0, lt=1)
    block_size: int = Field(128, gt=0)


def sparsegpt_prune(weight: torch.Tensor, h: torch.Tensor, sparsity: float, *, n: int = 0, m: int = 0,
                    block_size: int = 128, dampening: float = 0.01) -> torch.Tensor:
    """Pruned copy of `weight` (fp32). `n:m` keeps n of every m; n == 0 means unstructured."""
    w = weight.float().clone()
    hinv, dead = inverse_hessian_cholesky(h, dampening)
    w[:, dead] = 0
    cols = w.shape[1]
    for start in range(0, cols, block_size):
        end = min(start + block_size, cols)
        w1 = w[:, start:end].clone()
        err = torch.zeros_like(w1)
        hinv1 = hinv[start:end, start:end]
        d = torch.diag(hinv1)
        if m:
            mask = torch.zeros_like(w1, dtype=torch.bool)
        else:
            mask = lowest_mask(w1 ** 2 / d.unsqueeze(0) ** 2, sparsity, per_row=False)
        for i in range(end - start):
            if m and i % m == 0:
                block = w1[:, i:i + m] ** 2 / d[i:i + m].unsqueeze(0) ** 2
                mask[:, i:i + m] = nm_mask(block, Pattern(n, m))
            col = w1[:, i]
            q = col.clone()
            q[mask[:, i]] = 0
            e = (col - q) / hinv1[i, i]
            w1[:, i:] -= e.unsqueeze(1) @ hinv1[i, i:].unsqueeze(0)
            w1[:, i] = q
            err[:, i] = e
        w[:, start:end] = w1
        w[:, end:] -= err @ hinv[start:end, end:]
    return w


@register
class SparseGPT(PruningMethod):
    name = "sparsegpt"
    Config = SparseGPTConfig
    summary_line = "prune with OBS weight updates from the inverse Hessian (block 128, 1% damp)"

    def accumulator(self, name, linear):
        return Hessian(linear.in_features, linear.weight.device)

    def compress_linear(self, name, linear: torch.nn.Linear, stats: Hessian):
        pattern = self.config.parsed
        new = sparsegpt_prune(linear.weight.data, stats.h, self.config.sparsity, n=pattern.n, m=pattern.m,
                              block_size=self.config.block_size, dampening=self.config.dampening)
        linear.weight.data.copy_(new.to(linear.weight.dtype))
        return {**layer_stats(linear.weight.data), "calibration_tokens": stats.tokens}
