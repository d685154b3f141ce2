"""Choosing which weights to drop from a score matrix: the part every pruning method shares.

A mask is True where a weight is pruned. Two shapes of sparsity:
* unstructured: the `sparsity` fraction of lowest scores, compared within each output row
  (`per_row=True`, Wanda) or across the whole matrix (magnitude pruning, SparseGPT blocks);
* N:M: in every group of M consecutive input weights of a row, keep the N highest scores
  (NVIDIA's convention: "2:4" keeps 2 of 4, 50% sparse).
Counts are exact: `floor(sparsity * n)` per row or per matrix, ties broken by position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from unicomp.errors import UnicompError


@dataclass(frozen=True)
class Pattern:
    """`n:m` keeps n of every m weights; `n == 0` means unstructured."""

    n: int = 0
    m: int = 0

    @property
    def structured(self) -> bool:
        return self.m > 0

    @property
    def sparsity(self) -> float:
        return 1 - self.n / self.m if self.structured else float("nan")

    def __str__(self) -> str:
        return f"{self.n}:{self.m}" if self.structured else "unstructured"


def parse_pattern(text: str | None) -> Pattern:
    if text is None or text in ("", "unstructured"):
        return Pattern()
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text)
    if not match:
        raise UnicompError(f"pattern {text!r} is not 'unstructured' or N:M", "use e.g. --pattern 2:4 or --pattern unstructured")
    n, m = int(match.group(1)), int(match.group(2))
    if not 0 < n < m:
        raise UnicompError(f"N:M pattern {text} needs 0 < N < M (N weights kept out of every M)",
                           "use e.g. 2:4 or 4:8")
    return Pattern(n, m)


def check_sparsity(sparsity: float) -> float:
    if not 0.0 < sparsity < 1.0:
        raise UnicompError(f"sparsity must be strictly between 0 and 1, got {sparsity}", "use e.g. --sparsity 0.5")
    return sparsity


def lowest_mask(scores: torch.Tensor, sparsity: float, *, per_row: bool) -> torch.Tensor:
    """True at the `floor(sparsity * n)` lowest scores, per row or over the whole matrix."""
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if per_row:
        k = int(scores.shape[1] * sparsity)
        if k:
            idx = torch.argsort(scores, dim=1, stable=True)[:, :k]
            mask.scatter_(1, idx, True)
    else:
        k = int(scores.numel() * sparsity)
        if k:
            idx = torch.argsort(scores.flatten(), stable=True)[:k]
            mask.view(-1)[idx] = True
    return mask


def nm_mask(scores: torch.Tensor, pattern: Pattern) -> torch.Tensor:
    """True at the m - n lowest scores of every group of m consecutive columns."""
    rows, cols = scores.shape
    if cols % pattern.m:
        raise UnicompError(f"{pattern} needs input features divisible by {pattern.m}, got {cols}",
                           "use unstructured sparsity for this model")
    groups = scores.reshape(rows, cols // pattern.m, pattern.m)
    idx = torch.argsort(groups, dim=2, stable=True)[:, :, : pattern.m - pattern.n]
    mask = torch.zeros_like(groups, dtype=torch.bool)
    mask.scatter_(2, idx, True)
    return mask.reshape(rows, cols)
