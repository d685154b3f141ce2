"""What produced a number: package versions, git revision, machine, threads.

Stored with every run and unit so any figure in a report can be traced back.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

import unicomp

_PACKAGES = ("unicomp", "torch", "transformers", "datasets", "safetensors", "tokenizers", "gguf", "numpy")


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_revision() -> str | None:
    """The unicomp source revision when running from a checkout (with '+dirty' if modified)."""
    root = Path(unicomp.__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_name() -> str:
    """The processor (and GPU, when CUDA is there) that compute ran on: what device-hours are of."""
    from unicomp.efficiency.machine import cpu_name

    name = f"{cpu_name()} ({torch.get_num_threads()} threads)"
    if torch.cuda.is_available():
        name = f"{torch.cuda.get_device_name(0)} + {name}"
    return name


def environment(device: str = "cpu") -> dict:
    """`device`: what the work computes on (a run's `device`); its fp32 matmul throughput is recorded."""
    from unicomp.efficiency.machine import matmul_tflops

    return {
        "device_name": device_name(),
        "fp32_matmul_tflops": matmul_tflops(device),  # converts this machine's device-hours to another device's
        "packages": package_versions(),
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
