"""What every compression method is: a pydantic config and one entry point returning a report.

A method never loads or saves files. Layer-wise methods (everything calibrated one decoder
layer at a time) only say which statistics they need for a linear layer and how to compress
that linear given them; `sequential.py` does the walking, hooking and re-running.
"""

from __future__ import annotations

import resource
from abc import ABC, abstractmethod
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): drives a progress bar (layers done / total)."""


class MethodConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class CompressionReport:
    method: str
    config: dict[str, Any]
    per_layer: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    wall_seconds: float
    peak_memory_bytes: int | None
    peak_memory_kind: str
    calibration: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "config": self.config, "per_layer": self.per_layer, "summary": self.summary,
                "wall_seconds": self.wall_seconds, "peak_memory_bytes": self.peak_memory_bytes,
                "peak_memory_kind": self.peak_memory_kind, "calibration": self.calibration, "extra": self.extra}


class Accumulator(ABC):
    """Statistics of a linear layer's inputs, accumulated over calibration tokens in fp32."""

    @abstractmethod
    def add(self, x: torch.Tensor) -> None:  # x: [tokens, in_features]
        """Fold a batch of inputs into the statistics (never modify `x`: the engine may keep it)."""


@dataclass
class LayerContext:
    """One decoder layer as the sequential engine sees it while compressing it."""

    layer: torch.nn.Module
    index: int
    prefix: str  # dotted name of the layer in the model, e.g. "model.layers.3"
    anatomy: Any  # unicomp.models.anatomy.Anatomy
    hidden: list[torch.Tensor]  # the layer's input hidden states, one tensor per calibration batch
    kwargs: list[dict[str, Any]]  # what else the layer receives per batch (masks, rotary embeddings)
    autocast: Callable[[], Any]  # context manager factory for the calibration passes' compute dtype


class Method(ABC):
    name: ClassVar[str]
    family: ClassVar[str]
    Config: ClassVar[type[MethodConfig]]
    needs_calibration: ClassVar[bool] = True
    true_sequential: ClassVar[bool] = False
    # Compressing a group changes only that group's linears (no scales folded into other modules):
    # lets true-sequential passes replay finished blocks from cached inputs (block_replay). A
    # subclass whose compress_group edits other modules must set it back to False.
    group_edits_stay_in_group: ClassVar[bool] = False
    # Statistics depend only on the linear's inputs (not its weights): linears that read the same
    # tensor (q/k/v, gate/up) can share one accumulator.
    stats_from_inputs_only: ClassVar[bool] = True
    summary_line: ClassVar[str] = ""
    compresses_lm_head: bool = False  # also compress the output head (after the last layer)

    def __init__(self, config: MethodConfig) -> None:
        self.config = config

    def check_model(self, model: torch.nn.Module, anatomy: Any) -> None:
        """Raise a clear error if this method cannot handle `model` (called before any work)."""

    def accumulator(self, name: str, linear: torch.nn.Linear) -> Accumulator | None:
        return None

    @abstractmethod
    def compress_linear(self, name: str, linear: torch.nn.Linear, stats: Accumulator | None) -> dict[str, Any]:
        """Compress one linear in place, given its statistics; return what changed (per-layer stats)."""

    def compress_group(self, ctx: "LayerContext", linears: dict[str, torch.nn.Linear],
                       stats: dict[str, Accumulator]) -> dict[str, dict[str, Any]]:
        """Compress linears whose statistics were gathered together (a true-sequential group, or the
        whole layer). Methods that move scales between modules (SmoothQuant, AWQ) override this to
        see the layer; the default compresses each linear on its own."""
        with torch.inference_mode(False), torch.no_grad():
            return {name: self.compress_linear(name, linear, stats.get(name)) for name, linear in linears.items()}

    def summarize(self, per_layer: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {}


class PeakMemory:
    """Peak memory during a block: CUDA allocator peak on GPU, process peak RSS on CPU.

    On CPU the process peak cannot be reset, so it includes everything before the block; the
    report says which kind it is.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = "cuda_max_allocated" if device.type == "cuda" else "process_peak_rss"
        self.value: int | None = None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
        if self.device.type == "cuda":
            self.value = int(torch.cuda.max_memory_allocated(self.device))
        else:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.value = int(rss if sys.platform == "darwin" else rss * 1024)
