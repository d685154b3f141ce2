"""The layer-input Hessian that SparseGPT and GPTQ share, and its dampened inverse factor.

For a linear y = W x with squared output error, the Hessian of the loss w.r.t. one weight row is
H = 2/n X^T X over the n calibration tokens: the same for every row, so one per linear.
"""

from __future__ import annotations

import torch

from unicomp.compress.base import Accumulator


class Hessian(Accumulator):
    """Running 2/n X^T X over calibration tokens, in fp32."""

    def __init__(self, in_features: int, device: torch.device) -> None:
        self.h = torch.zeros(in_features, in_features, dtype=torch.float32, device=device)
        self.tokens = 0

    def add(self, x: torch.Tensor) -> None:
        x = x.float()
        n = x.shape[0]
        self.h *= self.tokens / (self.tokens + n)
        self.tokens += n
        x = x * (2.0 / self.tokens) ** 0.5
        self.h += x.T @ x


def inverse_hessian_cholesky(h: torch.Tensor, dampening: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Upper Cholesky factor of (H + damp I)^-1, and the mask of dead input channels."""
    h = h.clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    h += torch.eye(h.shape[0], device=h.device) * (dampening * torch.mean(torch.diag(h)))
    inv = torch.cholesky_inverse(torch.linalg.cholesky(h))
    return torch.linalg.cholesky(inv, upper=True), dead
