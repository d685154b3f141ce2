"""NaN and infinity stop the work: a broken model must never be scored as if it were fine.

One NaN weight makes every log-likelihood NaN, every argmax choice 0, and an accuracy near
chance that looks like a result. So weights are checked when a model is loaded and after it is
compressed, and scores are checked before a unit is stored; each failure names the tensor (or
the task and item) so the user knows what broke.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from unicomp.errors import UnicompError

_CHUNK = 1 << 24  # elements per isfinite call: bounds the temporary mask to 16 MB


def _bad_counts(t: torch.Tensor) -> tuple[int, int]:
    """(NaN count, infinite count) of a floating tensor, 0s fast when it is all finite."""
    flat = t.detach().reshape(-1)
    nan = inf = 0
    for chunk in flat.split(_CHUNK):
        if bool(torch.isfinite(chunk).all()):
            continue
        nan += int(torch.isnan(chunk).sum())
        inf += int(torch.isinf(chunk).sum())
    return nan, inf


def nonfinite_tensors(model: torch.nn.Module) -> list[tuple[str, int, int, int]]:
    """(name, NaN count, inf count, size) of every floating parameter or buffer that is not finite."""
    found, seen = [], set()
    named = list(model.named_parameters()) + list(model.named_buffers())
    for name, t in named:
        if not t.is_floating_point() or t.numel() == 0 or t.device.type == "meta":
            continue
        key = (t.data_ptr(), t.numel())
        if key in seen:
            continue
        seen.add(key)
        nan, inf = _bad_counts(t)
        if nan or inf:
            found.append((name, nan, inf, t.numel()))
    return found


def check_finite_model(model: torch.nn.Module, what: str, fix: str) -> None:
    """Raise a one-line error naming the first non-finite tensor (and how many others there are)."""
    bad = nonfinite_tensors(model)
    if not bad:
        return
    name, nan, inf, size = bad[0]
    more = f"; {len(bad) - 1} more tensors too" if len(bad) > 1 else ""
    raise UnicompError(f"{what}: tensor {name} has {nan} NaN and {inf} infinite values (of {size}){more}", fix)


def first_nonfinite(values: Iterable[float | None]) -> float | None:
    for v in values:
        if v is not None and isinstance(v, float) and not math.isfinite(v):
            return v
    return None


def check_finite_scores(task: str, records: Iterable, scores: dict[str, float]) -> None:
    """Every stored log-likelihood, per-item metric and aggregate score is a finite number."""
    fix = ("the model's outputs are NaN or overflow: check the checkpoint, or evaluate in float32 "
           "(--dtype float32) if it overflows in half precision")
    for r in records:
        bad = first_nonfinite(r.loglikelihoods or [])
        if bad is None:
            bad = first_nonfinite(r.metrics.values())
        if bad is not None:
            raise UnicompError(f"task {task} item {r.item_id}: the model scored {bad}, not a number it can be ranked by",
                               fix)
    bad_scores = {k: v for k, v in scores.items() if isinstance(v, float) and not math.isfinite(v)}
    if bad_scores:
        raise UnicompError(f"task {task}: score(s) {bad_scores} are not finite", fix)
