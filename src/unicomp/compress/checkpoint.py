"""Save a compressed model as a normal transformers folder plus `unicomp.json`.

Storages come from one registry (compress/storage.py): `dense`, `sparse-bitmask` and the
compressed-tensors quantized layouts vLLM serves (`compressed-tensors`, `pack-quantized`,
`int-quantized`); `auto` picks compressed-tensors for quantized models and dense otherwise.

`unicomp.json` says what was done (method, config, calibration record, per-layer stats,
wall time, peak memory, versions, base model provenance) so a checkpoint explains itself.
Writes go to a hidden temporary sibling folder renamed into place at the end (outputs.py): an
interrupted save never leaves a folder that looks complete, and an existing folder is replaced
only when the caller says so and only if unicomp wrote it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from unicomp.compress import storage as storage_registry
from unicomp.compress.base import CompressionReport
from unicomp.compress.quant import ct_format
from unicomp.compress.storage import AUTO
from unicomp.errors import UnicompError
from unicomp.finite import check_finite_model
from unicomp.outputs import MANIFEST, check_output_folder, staged_folder
from unicomp.runs.environment import environment

STORAGES = storage_registry.NAMES  # auto, then every registered storage


def check_storage(storage: str, method: Any) -> None:
    """Refuse, before any compression work, a storage that cannot hold what `method` produces."""
    if storage not in STORAGES:
        raise UnicompError(f"unknown storage {storage!r}", f"use one of {', '.join(STORAGES)}")
    refusal = storage_registry.STORAGES[storage].refuses(method) if storage != AUTO else None
    if refusal:
        raise UnicompError(*refusal)


def planned_storage(storage: str, method: Any) -> str:
    """What `auto` will become for `method`, known before any work: part of a run's unit key, so
    `auto` and the storage it picks name the same checkpoint (and reuse each other's units)."""
    if storage != AUTO:
        return storage
    return ct_format.AUTO if getattr(method, "family", "") == "quantization" else "dense"


def resolve_storage(storage: str, model: torch.nn.Module) -> str:
    if storage != AUTO:
        return storage
    return ct_format.AUTO if ct_format.has_quantized_linears(model) else "dense"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's distinct tensors stored densely (tied weights counted once)."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


def check_output_dir(out: str | Path, overwrite: bool) -> Path:
    """Refuse, before any work, an --out that unicomp may not write (see outputs.py)."""
    return check_output_folder(out, overwrite=overwrite, flag="--out")


def save_compressed(model: torch.nn.Module, tokenizer, out: str | Path, report: CompressionReport, *,
                    base: dict[str, Any], storage: str = AUTO, overwrite: bool = False) -> dict[str, Any]:
    if storage not in STORAGES:
        raise UnicompError(f"unknown storage {storage!r}", f"use one of {', '.join(STORAGES)}")
    final = check_output_dir(out, overwrite)
    check_finite_model(model, f"{report.method} produced a broken model",
                       "the compression diverged: try fp32 calibration passes, more calibration samples or a milder "
                       "setting; nothing was saved")
    storage = resolve_storage(storage, model)
    chosen = storage_registry.STORAGES[storage]
    refusal = chosen.refuses_model(model)
    if refusal:
        raise UnicompError(*refusal)
    prepared = chosen.prepare(model)  # refuse before writing
    with staged_folder(final, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        dense_bytes = folder_bytes(tmp)
        if chosen.write is not None:
            chosen.write(model, tmp, report, prepared)
        manifest = {
            "format_version": 1,
            "method": report.method,
            "report": report.to_dict(),
            "base_model": base,
            "storage": storage,
            "sizes": {"dense_bytes": dense_bytes, "stored_bytes": None},
            "environment": environment(str(next(model.parameters()).device)),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        manifest["sizes"]["stored_bytes"] = folder_bytes(tmp)
        # written last: a folder is recognised as unicomp's (and replaceable) only once it is whole
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None
