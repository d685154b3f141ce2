"""Data-parallel training launched by `torchrun`: `torchrun --nproc_per_node N -m unicomp compress
--method minitron_depth ...` trains one student over N processes.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; `join_from_env` turns them into a process group
(NCCL on GPUs, each process on its own device; gloo on CPUs). Every process builds the same student
(construction is deterministic) and takes its share of each step (trainer.py); only rank 0 writes
checkpoints and the output folder, and the others wait for it, then read the same folder back.
"""

from __future__ import annotations

import os

import torch

from unicomp.errors import UnicompError


def launched_world() -> int:
    """How many processes torchrun started (1 outside torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise UnicompError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number", "launch with torchrun") from None


def join_from_env(device: str) -> str:
    """Join torchrun's process group (once) and return the device this process trains on."""
    if launched_world() <= 1 or not torch.distributed.is_available():
        return device
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)  # "cuda" now means this process's GPU
        device = f"cuda:{local}"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return device


def is_main() -> bool:
    """Rank 0, or the only process."""
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or torch.distributed.get_rank() == 0


def barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


__all__ = ["barrier", "is_main", "join_from_env", "launched_world"]
