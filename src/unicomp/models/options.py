"""Validate the dtype and device a user asks for before any expensive work starts."""

from __future__ import annotations

import torch

from unicomp.errors import UnicompError

_DTYPES: dict[str, str] = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}


def normalize_dtype(dtype: str | torch.dtype) -> str:
    """Canonical dtype name ("float32", "bfloat16" or "float16"), accepting common spellings."""
    key = str(dtype).removeprefix("torch.").strip().lower()
    if key not in _DTYPES:
        raise UnicompError(
            f"unsupported dtype {str(dtype)!r}", "use one of float32, bfloat16, float16"
        )
    return _DTYPES[key]


def torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, normalize_dtype(name))


def resolve_device(device: str) -> str:
    """A torch device string that exists on this machine, or a one-line error saying why not."""
    d = str(device).strip().lower()
    if d == "cpu":
        return "cpu"
    if d == "cuda" or d.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UnicompError(
                f"device {device!r} requested but CUDA is not available "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'})",
                "use device 'cpu', or install a CUDA build of torch on a GPU machine",
            )
        index = 0 if d == "cuda" else _index(d, device)
        if index >= torch.cuda.device_count():
            raise UnicompError(
                f"device {device!r} does not exist ({torch.cuda.device_count()} GPU(s) visible)",
                f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}",
            )
        return f"cuda:{index}"
    if d == "mps":
        if not torch.backends.mps.is_available():
            raise UnicompError("device 'mps' requested but not available", "use device 'cpu'")
        return "mps"
    raise UnicompError(f"unknown device {device!r}", "use cpu, cuda or cuda:N")


def _index(d: str, original: str) -> int:
    try:
        return int(d.split(":", 1)[1])
    except ValueError:
        raise UnicompError(f"bad device {original!r}", "write it as cuda or cuda:N") from None
