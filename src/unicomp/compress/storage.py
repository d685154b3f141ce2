"""Checkpoint storages: one registry that saving (compress/checkpoint.py) and loading
(models/checkpoint.py) both use. Each storage says what it cannot hold (asked of the method's
family and traits, never its name), how it rewrites a dense save, and how to recognise and load a
folder written in it. Dense needs none of that: it is what `save_pretrained` writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from unicomp.compress.quant import awq_format, ct_format, gptq_format
from unicomp.compress import sparse_storage

AUTO = "auto"  # compressed-tensors for quantized models, dense otherwise
Refusal = tuple[str, str] | None  # (problem, fix)


@dataclass(frozen=True)
class Storage:
    name: str
    summary: str
    refuses: Callable[[Any], Refusal] = lambda method: None  # before any work, from the method's traits
    refuses_model: Callable[[torch.nn.Module], Refusal] = lambda model: None  # after compression, from the weights
    prepare: Callable[[torch.nn.Module], Any] = lambda model: None  # checks and plans before anything is written
    write: Callable[..., None] | None = None  # (model, folder, report, prepared): rewrite the dense save
    detect: Callable[[Path], bool] | None = None  # a folder written in this storage
    load: Callable[[Path, torch.dtype], torch.nn.Module] | None = None


def _quantizes(method: Any) -> bool:
    return getattr(method, "family", "") == "quantization"


def _activations(method: Any) -> bool:
    return bool(getattr(method, "quantizes_activations", False))


def _needs_quantizer(name: str) -> Callable[[Any], Refusal]:
    def refuses(method: Any) -> Refusal:
        if not _quantizes(method):
            return (f"{name} stores quantized integer weights, but {method.name} does not quantize",
                    "use --storage auto, dense or sparse-bitmask")
        config = getattr(method, "config", None)
        if getattr(config, "actorder", False) and getattr(config, "static_groups", True) is False:
            return ("compressed-tensors cannot hold GPTQ groups scattered by act-order (static_groups: false)",
                    "keep static_groups true (the default) or use --storage dense")
        if name == ct_format.PACK_QUANTIZED and _activations(method):
            return (f"{name} holds weight-only quantization, but {method.name} also quantizes activations (W8A8)",
                    f"use --storage {ct_format.INT_QUANTIZED} (or auto)")
        if name == ct_format.INT_QUANTIZED and not _activations(method):
            return (f"{name} holds W8A8 (int8 weights and activations), but {method.name} is weight-only",
                    f"use --storage {ct_format.PACK_QUANTIZED} (or auto)")
        return None
    return refuses


def _sparse_refuses(fmt: str) -> Callable[[Any], Refusal]:
    def refuses(method: Any) -> Refusal:
        if _quantizes(method):
            return (f"{fmt} stores pruned float weights, but {method.name} quantizes",
                    "use --storage auto (compressed-tensors) or dense")
        return None
    return refuses


def _sparse_refuses_model(model: torch.nn.Module) -> Refusal:
    if ct_format.has_quantized_linears(model):
        return ("sparse-bitmask stores pruned float weights, but this model is quantized",
                "use --storage compressed-tensors (or dense)")
    return None


def _sparse_write(model, folder: Path, report, prepared) -> None:
    if report.summary.get("sparsity") is None:
        from unicomp.errors import UnicompError

        raise UnicompError(f"{report.method} output is not sparse", "use --storage dense for this method")
    targets = [name.removesuffix(".weight") for name in report.per_layer]
    sparse_storage.save_sparse_bitmask(model, folder, targets, report.config.get("pattern", "unstructured"),
                                       float(report.summary.get("sparsity", 0.0)))


def _sparse_24_refuses(method: Any) -> Refusal:
    refusal = _sparse_refuses(sparse_storage.FORMAT_24)(method)
    if refusal is not None:
        return refusal
    pattern = getattr(getattr(method, "config", None), "pattern", None)
    if pattern != "2:4":
        return (f"{sparse_storage.FORMAT_24} holds 2:4-pruned weights, but {method.name} prunes with pattern {pattern!r}",
                f"prune with --pattern 2:4, or use --storage {sparse_storage.FORMAT}")
    return None


def _sparse_24_write(model, folder: Path, report, prepared) -> None:
    targets = [name.removesuffix(".weight") for name in report.per_layer]
    sparse_storage.save_sparse_bitmask(model, folder, targets, "2:4", float(report.summary.get("sparsity", 0.0)),
                                       fmt=sparse_storage.FORMAT_24)


def _ct(name: str, summary: str) -> Storage:
    return Storage(name, summary, refuses=_needs_quantizer(name), prepare=lambda model: ct_format.plan_export(model, name),
                   write=lambda model, folder, report, plan: ct_format.write_compressed_tensors(model, folder, plan),
                   detect=ct_format.is_quantized_folder if name == ct_format.AUTO else None,
                   load=ct_format.load_quantized if name == ct_format.AUTO else None)


STORAGES: dict[str, Storage] = {s.name: s for s in (
    Storage("dense", "float weights as the model holds them (save_pretrained)"),
    Storage(sparse_storage.FORMAT, "pruned float weights as compressed-tensors bitmasks (half the disk at 50%)",
            refuses=_sparse_refuses(sparse_storage.FORMAT), refuses_model=_sparse_refuses_model, write=_sparse_write,
            detect=sparse_storage.is_sparse_bitmask, load=sparse_storage.load_sparse_bitmask),
    Storage(sparse_storage.FORMAT_24, "2:4-pruned float weights as compressed-tensors sparse-24-bitmask (the layout "
            "vLLM's 2:4 sparse kernels read; ~0.53x of fp32 on disk)",
            refuses=_sparse_24_refuses, refuses_model=_sparse_refuses_model, write=_sparse_24_write,
            detect=sparse_storage.is_sparse_24_bitmask, load=sparse_storage.load_sparse_bitmask),
    _ct(ct_format.AUTO, "compressed-tensors, the format picked from the quantized weights (vLLM serves it)"),
    _ct(ct_format.PACK_QUANTIZED, "compressed-tensors weight-only packed ints (W4A16, W8A16)"),
    _ct(ct_format.INT_QUANTIZED, "compressed-tensors int8 weights with dynamic int8 activations (W8A8)"),
)}
NAMES = (AUTO, *STORAGES)

# Formats unicomp reads but never writes (other tools' checkpoints, e.g. the paper's public ones):
# (detect, load), tried after unicomp's own storages.
FOREIGN: tuple[tuple[Callable[[Path], bool], Callable[..., torch.nn.Module]], ...] = (
    (gptq_format.is_gptq_folder, gptq_format.load_gptq),
    (awq_format.is_awq_folder, awq_format.load_awq),
)


def loader_for(folder: Path) -> Callable[[Path, torch.dtype], torch.nn.Module] | None:
    """unicomp's own loader for a folder in a compressed storage or a foreign quantized format
    (GPTQ, AWQ), or None (transformers)."""
    for storage in STORAGES.values():
        if storage.detect is not None and storage.detect(folder):
            return storage.load
    for detect, load in FOREIGN:
        if detect(folder):
            return load
    return None
