"""One pass of calibration batches through a hooked model: what depth and width importance share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from unicomp.errors import UnicompError


def run_hooked(model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]], handles: list[Any],
               state: dict[str, Any], ranks: str) -> int:
    """Run `batches` through `model`, keeping state["mask"] at the current batch's attention mask (fp32,
    None when absent) for the hooks; remove `handles` afterwards. Returns the unmasked token count and
    refuses zero (there would be nothing to rank `ranks` on)."""
    tokens = 0
    try:
        for batch in batches:
            mask = batch.get("attention_mask")
            state["mask"] = None if mask is None else mask.to(torch.float32)
            tokens += int(batch["input_ids"].numel() if mask is None else mask.sum())
            model(**batch)
    finally:
        for h in handles:
            h.remove()
    if tokens == 0:
        raise UnicompError(f"no calibration tokens to rank {ranks} on", "pass calibration batches with tokens")
    return tokens
