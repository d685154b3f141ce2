"""What a bench result was measured on (and the spread of its repeated timings), for its JSON: CPU model (ratios differ between an AMD EPYC
and an Intel Xeon with AMX), threads, GPU, package versions, commit. Standalone: no unicomp import,
so the scripts that run in other tools' virtualenvs can use it too."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The first "model name" of /proc/cpuinfo (x86; "Model"/"Hardware" on Arm), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max (and n) of repeated timings."""
    ordered = sorted(values)
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return {"n": n, "min": ordered[0], "median": median, "max": ordered[-1]}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                    gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except ImportError:
        pass
    try:
        info["git_revision"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                              cwd=Path(__file__).parent, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                 text=True, cwd=Path(__file__).parent, check=True).stdout.split("\n")
        info["git_changed_files"] = sorted(line[3:] for line in changed if line.strip())  # uncommitted edits
    except (OSError, subprocess.CalledProcessError):
        info["git_revision"] = None
    return info
