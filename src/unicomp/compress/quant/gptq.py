"""GPTQ (Frantar et al., 2022): quantize a weight column by column, compensating each rounding
error on the columns not yet quantized through the inverse Hessian of the layer's inputs.

Per linear, H = 2/n X^T X over the calibration tokens (fp32, shared with SparseGPT). For one
weight row w the loss is (w - q)^T H (w - q); quantizing column i to q_i and re-solving for the
remaining columns moves them by -(w_i - q_i) [H^-1]_{i,j} / [H^-1]_{i,i} (optimal brain
quantization). GPTQ does this for all rows at once in a fixed column order, reads the rows of the
shrinking inverse off one upper Cholesky factor of H^-1, and applies the updates lazily in blocks
of `block_size` columns (the block's accumulated error hits the later columns in one matmul).

As in the reference code (IST-DASLab `gptq.py`, `fasterquant`):
- dead input channels (H_ii == 0: never active in calibration) get H_ii = 1 and zero weights;
  their weights cannot matter, so they must not steer the result;
- H is dampened by `dampening` x mean(diag H) on the diagonal, which keeps the Cholesky
  factorisation possible and the updates bounded;
- act-order (`actorder`, "desc_act"): columns are processed by decreasing H_ii, so the columns
  fed by the largest inputs are quantized first, while the most columns are left to absorb
  their error.

Where the group scales and zero points come from (the one choice act-order forces):
- `static_groups=True` (default; llm-compressor's actorder="weight"): every group's scale and
  zero are fitted once, before any update, on the original weight with contiguous groups in the
  original column order. Each column, whenever act-order reaches it, rounds to its own group's
  grid. The groups stay contiguous, so the result needs no g_idx and packed kernels need no
  input permutation; the price is that a grid fitted before the updates may clip a few updated
  weights.
- `static_groups=False` (the reference act-order code, AutoGPTQ's desc_act without static
  groups): a group is the next `group_size` columns in processing order, and its parameters are
  fitted when GPTQ reaches its first column, on the weights as updated so far. With act-order
  such a group is scattered over the original columns, so the result carries
  g_idx[col] = (processing position of col) // group_size, and a kernel must gather inputs by it.
  Without act-order the groups are contiguous and no g_idx is needed.
  The parameters are fitted on the group's fully updated weights: those a column-by-column GPTQ
  would see. The reference code fits groups starting inside a block on weights that still lack
  that block's earlier updates, which makes its result depend on `block_size`; ours does not.

Per-channel (`group_size: null`) fits one scale per row up front on the (dead-zeroed) weight.
All grids come from `grid.fit_params` and rounding from `grid.quantize_columns`, so scales are
bf16-representable exactly as for RTN, and the stored codes are those the weight dequantizes from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field

from unicomp.compress.hessian import Hessian, inverse_hessian_cholesky
from unicomp.compress.quant.grid import (QuantizedWeight, QuantScheme, attach, fit_params, group_params, quantize,
                                         quantize_columns)
from unicomp.compress.quant.rtn import QuantConfig, QuantMethod, weight_error_stats
from unicomp.errors import UnicompError
from unicomp.compress.registry import register


class GPTQConfig(QuantConfig):
    actorder: bool = Field(True, description="process columns by decreasing Hessian diagonal (desc_act)")
    static_groups: bool = Field(True, description="fit group grids on the original weight in column order "
                                                  "(contiguous groups, no g_idx); false: fit them on the fly in "
                                                  "processing order (needs g_idx with actorder)")
    dampening: float = Field(0.01, gt=0, lt=1, description="added to the Hessian diagonal, as a fraction of its mean")
    block_size: int = Field(128, gt=0, description="columns per lazy batch update (speed only)")


@dataclass
class PreparedHessian:
    """What GPTQ needs from one input Hessian; shared by linears reading the same input (q/k/v, gate/up)."""

    perm: torch.Tensor  # processing order: original column perm[p] is processed p-th
    hinv: torch.Tensor  # upper Cholesky factor of the dampened (H^-1) in processing order
    dead: torch.Tensor  # bool [in]: input channels that were never active
    actorder: bool


def prepare_hessian(h: torch.Tensor, *, actorder: bool, dampening: float) -> PreparedHessian:
    """Dead channels fixed, processing order chosen, and the dampened inverse factor in that order."""
    h = h.float().clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    if actorder:
        perm = torch.argsort(torch.diag(h), descending=True, stable=True)
    else:
        perm = torch.arange(h.shape[0], device=h.device)
    hinv, _ = inverse_hessian_cholesky(h[perm][:, perm], dampening)
    return PreparedHessian(perm=perm, hinv=hinv, dead=dead, actorder=actorder)


@dataclass
class GPTQResult:
    """A quantized weight in original column order, with the grid it lies on."""

    q: torch.Tensor  # int32 codes [out, in]
    scale: torch.Tensor  # fp32 [out, groups]
    zero: torch.Tensor  # fp32 [out, groups]
    g_idx: torch.Tensor | None  # only for act-order with dynamic groups
    weight: torch.Tensor  # fp32 dequantized [out, in], equal to dequantize(q, scale, zero, g_idx)
    loss: float  # GPTQ's proxy loss: sum of (w - q)^2 / (2 d^2) = 1/2 tr(E H_damp E^T) over rows
    dead: int  # dead input channels


class _Grids:
    """The scale and zero each column rounds to, in processing order (static or fitted on the fly)."""

    def __init__(self, w: torch.Tensor, scheme: QuantScheme, perm: torch.Tensor, static: bool, where: str) -> None:
        rows, cols = w.shape
        self.scheme = scheme
        self.size = scheme.group_size or cols
        self.dynamic = scheme.group_size is not None and not static
        if self.dynamic:
            groups = scheme.groups(cols, where)
            self.scale = w.new_zeros(rows, groups)
            self.zero = w.new_zeros(rows, groups)
            self.group_at = [p // self.size for p in range(cols)]
        else:  # fitted now, on the weight in original order; w is still unpermuted here
            self.scale, self.zero = group_params(w, scheme, where)
            self.group_at = scheme.default_g_idx(cols, w.device)[perm].tolist()

    def at(self, p: int, current_group: Callable[[int], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale and zero [rows] for processing position p; a dynamic group is fitted at its first column."""
        g = self.group_at[p]
        if self.dynamic and p % self.size == 0:
            self.scale[:, g], self.zero[:, g] = fit_params(current_group(self.size), self.scheme)
        return self.scale[:, g], self.zero[:, g]

    def g_idx(self, perm: torch.Tensor, actorder: bool) -> torch.Tensor | None:
        """Group of each original column, when groups are not contiguous in the original order."""
        if not (self.dynamic and actorder):
            return None
        by_position = torch.arange(perm.numel(), device=perm.device) // self.size
        return by_position[torch.argsort(perm)]


def _current_group(w: torch.Tensor, w1: torch.Tensor, err1: torch.Tensor, hinv: torch.Tensor,
                   i1: int, i2: int, i: int, size: int) -> torch.Tensor:
    """Fully updated weights of processing columns [i1+i, i1+i+size): inside the block they are in
    w1; beyond it, the block's errors so far (err1 is zero from column i on) are not yet applied."""
    end = i1 + i + size
    inside = w1[:, i:min(end, i2) - i1]
    if end <= i2:
        return inside
    ahead = w[:, i2:end] - err1 @ hinv[i1:i2, i2:end]
    return torch.cat([inside, ahead], dim=1)


def _run_blocks(w: torch.Tensor, hinv: torch.Tensor, grids: _Grids, maxq: int, block_size: int) -> tuple[torch.Tensor, float]:
    """GPTQ proper on w (fp32, processing order, updated in place): dequantized weight and proxy loss."""
    cols = w.shape[1]
    out = torch.zeros_like(w)
    loss = torch.zeros((), dtype=torch.float64, device=w.device)
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        w1 = w[:, i1:i2].clone()
        err1 = torch.zeros_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            scale, zero = grids.at(i1 + i, lambda size: _current_group(w, w1, err1, hinv, i1, i2, i, size))
            col = w1[:, i]
            qcol = quantize_columns(col.unsqueeze(1), scale, zero, maxq).squeeze(1)
            out[:, i1 + i] = qcol
            e = (col - qcol) / hinv1[i, i]
            loss += (e.double() ** 2).sum() / 2
            w1[:, i:] -= e.unsqueeze(1) @ hinv1[i, i:].unsqueeze(0)
            err1[:, i] = e
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    return out, float(loss)


def gptq_quantize(weight: torch.Tensor, prepared: PreparedHessian, scheme: QuantScheme, *, static_groups: bool = True,
                  block_size: int = 128, where: str = "a layer") -> GPTQResult:
    """Quantize `weight` [out, in] with GPTQ given its prepared Hessian; computed in fp32, input untouched."""
    w = weight.float().clone()
    scheme.groups(w.shape[1], where)
    w[:, prepared.dead] = 0
    grids = _Grids(w, scheme, prepared.perm, static_groups, where)
    deq, loss = _run_blocks(w[:, prepared.perm], prepared.hinv, grids, scheme.maxq, block_size)
    deq = deq[:, torch.argsort(prepared.perm)]
    g_idx = grids.g_idx(prepared.perm, prepared.actorder)
    codes = quantize(deq, grids.scale, grids.zero, scheme, g_idx)  # exact: deq = (q - z) * s
    return GPTQResult(q=codes, scale=grids.scale, zero=grids.zero, g_idx=g_idx, weight=deq, loss=loss,
                      dead=int(prepared.dead.sum()))


@register
class GPTQ(QuantMethod):
    name = "gptq"
    Config = GPTQConfig
    true_sequential = True
    group_edits_stay_in_group = True  # GPTQ rewrites only the weights of the group it quantizes
    summary_line = "quantize column by column, spreading rounding error via the inverse Hessian (act-order, static groups)"

    def accumulator(self, name, linear):
        return Hessian(linear.in_features, linear.weight.device)

    def prepare(self, name: str, stats: Hessian | None) -> PreparedHessian:
        """The linear's prepared Hessian; a clear error when there is none or it cannot be factored."""
        if stats is None or stats.tokens == 0:
            raise UnicompError(f"gptq: no calibration inputs reached {name}", "check the calibration set is not empty")
        try:
            return prepare_hessian(stats.h, actorder=self.config.actorder, dampening=self.config.dampening)
        except torch.linalg.LinAlgError:
            raise UnicompError(f"gptq: the Hessian of {name} is not positive definite after "
                               f"{self.config.dampening} dampening",
                               "raise dampening (e.g. 0.1) or use more calibration samples") from None

    def quantize_linear(self, name: str, linear: torch.nn.Linear, stats: Hessian, prepared: PreparedHessian) -> dict[str, Any]:
        """Run GPTQ on one linear given its prepared Hessian, attach the result, return its stats."""
        scheme = self.config.scheme
        original = linear.weight.data.float().clone()
        result = gptq_quantize(original, prepared, scheme, static_groups=self.config.static_groups,
                               block_size=self.config.block_size, where=name)
        attach(linear, QuantizedWeight(q=result.q, scale=result.scale, zero=result.zero, scheme=scheme, g_idx=result.g_idx))
        return {**weight_error_stats(original, linear.weight.data), "proxy_loss": result.loss,
                "calibration_tokens": stats.tokens, "dead_inputs": result.dead}

    def compress_linear(self, name, linear: torch.nn.Linear, stats: Hessian | None):
        self.config.scheme.groups(linear.in_features, name)
        return self.quantize_linear(name, linear, stats, self.prepare(name, stats))

    def compress_group(self, ctx, linears, stats):
        """Like the default, but factor each shared Hessian (q/k/v, gate/up) once."""
        prepared: dict[int, PreparedHessian] = {}
        results = {}
        with torch.inference_mode(False), torch.no_grad():
            for name, linear in linears.items():
                self.config.scheme.groups(linear.in_features, f"{ctx.prefix}.{name}")
                acc = stats.get(name)
                if id(acc) not in prepared:
                    prepared[id(acc)] = self.prepare(f"{ctx.prefix}.{name}", acc)
                results[name] = self.quantize_linear(f"{ctx.prefix}.{name}", linear, acc, prepared[id(acc)])
        return results

    def summarize(self, per_layer):
        return {**super().summarize(per_layer), "actorder": self.config.actorder,
                "static_groups": self.config.static_groups}
