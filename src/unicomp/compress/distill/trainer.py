"""The distillation trainer: a plain PyTorch loop over fixed token windows, with a teacher's logits as
targets, gradient accumulation, a cosine schedule with linear warm-up, bf16 autocast where the
hardware computes it, periodic checkpoints and exact resume.

Data parallel: under `torchrun` (gloo on CPU, NCCL on GPUs; the process group initialised by the
caller) each process takes its share of a step's micro-batches and gradients are averaged, so N
processes produce the weights one process produces with N times the accumulation.

Exact resume: the data order is a pure function of (seed, step), and a checkpoint holds the student,
the optimizer, the scheduler, the step and every RNG state, written atomically. So a run killed
after step k and resumed produces the same steps k+1.. as a run that was never interrupted (to fp
reproducibility of the kernels). A checkpoint records a fingerprint of the training config and of
the caller's `context` (what else decides the result: the method and its options, the teacher, the
data) and refuses to resume a different one.

Cached teacher logits (`teacher_topk: k`): the teacher runs once over every window before training,
and its top-k logits per token (values fp32, indices int32) are kept, on disk beside the checkpoint
when there is a checkpoint folder (keyed by the windows' hash and k, so a resumed run reuses it).
Each step then reads them instead of running the teacher: worth it when training passes over the
windows more than once, or when the teacher is much larger than the student. Only forward KL can
use them (the other terms need the teacher's whole distribution or its hidden states).

Students with their own alignment loss (Low-Rank Clone) expose `watching(teacher)`, a context in
which they hook the teacher's activations, and `alignment_loss()`, read by the activation_mse term.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from unicomp.compress.distill.losses import LossTerm, distillation_loss, needs_aligning_student
from unicomp.errors import UnicompError
from unicomp.failpoints import failpoint

CHECKPOINT = "trainer-state.pt"
_NEEDS_FULL_TEACHER = ("reverse_kl", "jsd", "hidden_mse", "activation_mse")  # cached top-k logits cannot serve


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(gt=0, description="optimizer steps")
    micro_batch_size: int = Field(4, gt=0)
    grad_accum: int = Field(1, gt=0)
    lr: float = Field(1e-4, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    clip_grad_norm: float | None = Field(1.0, gt=0)
    autocast: str = Field("auto", pattern="^(auto|bf16|off)$")
    checkpoint_every: int = Field(25, ge=0, description="steps between checkpoints (0: only at the end)")
    teacher_topk: int | None = Field(None, gt=0, description="cache the teacher's top-k logits once (forward_kl only)")
    seed: int = 0
    losses: list[LossTerm] = Field(default_factory=lambda: [LossTerm(kind="forward_kl")], min_length=1)

    @field_validator("autocast", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML reads a bare `off` as false

    @model_validator(mode="after")
    def _cache_needs_forward_kl(self) -> "TrainConfig":
        full = [t.kind for t in self.losses if t.kind in _NEEDS_FULL_TEACHER]
        if self.teacher_topk is not None and full:
            raise UnicompError(f"{', '.join(full)} cannot use cached top-k teacher logits",
                               "train with forward_kl (and ce) only, or set teacher_topk: null")
        return self

    def fingerprint(self, context: str = "") -> str:
        """What must match for a checkpoint to be resumed (everything but the checkpoint cadence), with
        the caller's context."""
        data = {"train": self.model_dump(exclude={"checkpoint_every"}), "context": context}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up to 1, then cosine decay to min_lr_ratio at the last step."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def batch_indices(step: int, micro: int, config: TrainConfig, n_samples: int, world: int = 1) -> list[int]:
    """Sample indices of one micro-batch: a seeded permutation per epoch, walked in order. With `world`
    data-parallel processes a step holds grad_accum x world micro-batches; rank r takes micro-batch
    micro x world + r, so the step sees the same samples as one process with grad_accum x world."""
    per_step = config.micro_batch_size * config.grad_accum * world
    start = (step * per_step + micro * config.micro_batch_size)
    out = []
    for position in range(start, start + config.micro_batch_size):
        epoch, offset = divmod(position, n_samples)
        order = torch.randperm(n_samples, generator=torch.Generator().manual_seed(config.seed * 100003 + epoch))
        out.append(int(order[offset]))
    return out


def _autocast(config: TrainConfig, device: torch.device):
    from unicomp.compress.quant.packed import cpu_supports_bf16

    wanted = config.autocast == "bf16" or (config.autocast == "auto" and (
        device.type == "cuda" or (device.type == "cpu" and cpu_supports_bf16())))
    return torch.autocast(device.type, dtype=torch.bfloat16) if wanted else nullcontext()


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp.", suffix=f".{path.name}", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


CACHE = "teacher-topk.pt"


def _check(student: torch.nn.Module, teacher: torch.nn.Module | None, samples: list[list[int]],
           loss_mask: list[list[int]] | None, config: TrainConfig) -> None:
    if not samples or len({len(s) for s in samples}) != 1:
        raise UnicompError("training needs token windows of one length", "build them with the calibration builder")
    if loss_mask is not None and [len(m) for m in loss_mask] != [len(s) for s in samples]:
        raise UnicompError("the loss mask does not match the token windows", "give one 0/1 entry per token")
    if any(t.kind != "ce" for t in config.losses) and teacher is None:
        raise UnicompError("the loss terms need a teacher's logits but no teacher was given",
                           "pass the teacher, or train with losses: [{kind: ce}] only")
    if any(t.kind == "activation_mse" for t in config.losses) and not hasattr(student, "alignment_loss"):
        raise needs_aligning_student()


@torch.no_grad()
def teacher_topk_cache(teacher: torch.nn.Module, data: torch.Tensor, k: int, batch_size: int, autocast: Any,
                       path: Path | None = None, context: str = "") -> tuple[torch.Tensor, torch.Tensor, float]:
    """The teacher's top-k logits for every window ([n, seq, k] values fp32 and indices int32), and the
    seconds spent computing them (0 when read back from `path`, whose key must match: k, the windows,
    and the caller's context, which names the teacher)."""
    key = {"k": k, "data": hashlib.sha256(data.numpy().tobytes()).hexdigest(), "context": context,
           "autocast": type(autocast).__name__}
    if path is not None and path.is_file():
        cached = torch.load(path, weights_only=True)  # tensors and strings only
        if cached.get("key") == key:
            return cached["values"], cached["indices"], 0.0
    device = next(teacher.parameters()).device
    began = time.perf_counter()
    values, indices = [], []
    for i in range(0, len(data), batch_size):
        with autocast:
            logits = teacher(input_ids=data[i:i + batch_size].to(device), use_cache=False).logits
        top = logits.float().topk(k, dim=-1)
        values.append(top.values.cpu())
        indices.append(top.indices.to(torch.int32).cpu())
    out = torch.cat(values), torch.cat(indices)
    seconds = time.perf_counter() - began
    if path is not None:
        _save_atomic({"key": key, "values": out[0], "indices": out[1]}, path)
    return out[0], out[1], seconds


def train(student: torch.nn.Module, teacher: torch.nn.Module | None, samples: list[list[int]], config: TrainConfig, *,
          loss_mask: list[list[int]] | None = None, checkpoint_dir: str | Path | None = None,
          stop_after: int | None = None, context: str = "",
          on_step: Callable[[dict[str, Any]], None] = lambda record: None) -> dict[str, Any]:
    """Train `student` in place on `samples` (equal-length token windows); returns the loss curve and cost.

    `context`: what else decides the result (method, options, teacher); a checkpoint or logit cache
    written under another context is not resumed.
    `loss_mask`: per token, 1 where predicting that token counts (e.g. a chat's assistant turns), 0
    where it does not (the prompt, padding); None counts every token after the first.
    `stop_after`: return after this many steps in total (as if killed there; the checkpoint holds them).
    """
    _check(student, teacher, samples, loss_mask, config)
    needs_teacher = any(t.kind != "ce" for t in config.losses)
    device = next(student.parameters()).device
    data = torch.tensor(samples, dtype=torch.long)
    target_mask = None if loss_mask is None else torch.tensor(loss_mask, dtype=torch.bool)
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    world = torch.distributed.get_world_size() if distributed else 1
    rank = torch.distributed.get_rank() if distributed else 0
    decay = [p for p in student.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in student.parameters() if p.requires_grad and p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
    history: list[dict[str, Any]] = []
    start, tokens_seen, seconds = 0, 0, 0.0
    path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    if path is not None and path.parent.is_dir():
        for name in (CHECKPOINT, CACHE):  # saves killed half-way (ours: one trainer per folder)
            for stale in path.parent.glob(f".tmp.*.{name}"):
                stale.unlink(missing_ok=True)
    if path is not None and path.is_file():
        state = torch.load(path, map_location=device, weights_only=False)  # our own file, written below
        if state["fingerprint"] != config.fingerprint(context):
            raise UnicompError(f"{path} is a checkpoint of another training configuration",
                               f"rerun with the configuration that wrote it, or delete {path.parent} to start over")
        student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start, history = state["step"], state["history"]
        tokens_seen, seconds = state["tokens_seen"], state["seconds"]
    else:
        torch.manual_seed(config.seed)
        random.seed(config.seed)

    def save(step: int) -> None:
        if path is not None and rank == 0:
            _save_atomic({"fingerprint": config.fingerprint(context), "step": step, "student": student.state_dict(),
                          "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                          "rng": _rng_state(), "history": history, "tokens_seen": tokens_seen,
                          "seconds": seconds}, path)

    if distributed:
        start = _sync_ranks(student, start)
    cache = None
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    if teacher is not None:
        teacher.eval()
    if needs_teacher and config.teacher_topk is not None and start < end:
        cache_path = None if path is None else path.parent / CACHE
        if distributed and cache_path is not None and rank != 0:
            torch.distributed.barrier()  # rank 0 builds and writes the cache; the others read it
        values, indices, cache_seconds = teacher_topk_cache(
            teacher, data, config.teacher_topk, config.micro_batch_size, _autocast(config, device), cache_path,
            context)
        if distributed and cache_path is not None and rank == 0:
            torch.distributed.barrier()
        cache = (values, indices)
        seconds += cache_seconds  # the teacher's one pass is part of the training's cost
    student.train()
    aligned = any(t.kind == "activation_mse" for t in config.losses)
    watching = student.watching(teacher) if aligned else nullcontext()
    run = _Setup(student, teacher, data, target_mask, cache, config, optimizer, scheduler, device, world, rank)
    with watching:
        for step in range(start, end):
            tokens_seen, seconds = _step(run, step, history, tokens_seen, seconds)
            on_step(history[-1])
            if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
                save(step + 1)
            failpoint("distill.step")
    save(end)
    if distributed:
        torch.distributed.barrier()  # the checkpoint is whole before any process returns
    student.eval()
    return {"history": history, "steps": end, "tokens_seen": tokens_seen, "seconds": seconds,
            "finished": end == config.steps}


def _sync_ranks(student: torch.nn.Module, start: int) -> int:
    """Every process starts from rank 0's weights and step (a process that resumed from another
    checkpoint, or built its student differently, would otherwise drift or hang in a collective)."""
    steps = [torch.zeros((), dtype=torch.long, device=next(student.parameters()).device)
             for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(steps, torch.tensor(start, device=steps[0].device))
    if len({int(s) for s in steps}) != 1:
        raise UnicompError(f"the training processes would resume from different steps {[int(s) for s in steps]}",
                           "give every process the same checkpoint folder (a shared filesystem)")
    with torch.no_grad():
        for p in student.parameters():
            torch.distributed.broadcast(p.data, src=0)
    return start


@dataclass
class _Setup:
    """What every step reads (built once by `train`)."""

    student: torch.nn.Module
    teacher: torch.nn.Module | None
    data: torch.Tensor
    target_mask: torch.Tensor | None
    cache: tuple[torch.Tensor, torch.Tensor] | None
    config: TrainConfig
    optimizer: torch.optim.Optimizer
    scheduler: Any
    device: torch.device
    world: int
    rank: int

    @property
    def distributed(self) -> bool:
        return self.world > 1


def _step(run: _Setup, step: int, history: list[dict[str, Any]], tokens_seen: int, seconds: float) -> tuple[int, float]:
    """One optimizer step (all its micro-batches); appends its record to `history`."""
    student, teacher, data, target_mask, cache = run.student, run.teacher, run.data, run.target_mask, run.cache
    config, optimizer, scheduler, device, world, rank = (run.config, run.optimizer, run.scheduler, run.device,
                                                         run.world, run.rank)
    needs_teacher = any(t.kind != "ce" for t in config.losses)
    hidden = any(t.kind == "hidden_mse" for t in config.losses)
    aligned = any(t.kind == "activation_mse" for t in config.losses)
    n = len(data)
    began = time.perf_counter()
    parts_sum: dict[str, float] = {}
    loss_sum = 0.0
    for micro in range(config.grad_accum):
        rows = batch_indices(step, micro * world + rank, config, n, world)
        ids = data[rows].to(device)
        with _autocast(config, device):
            out = student(input_ids=ids, use_cache=False, output_hidden_states=hidden)
            teacher_out = None
            if needs_teacher and cache is None:  # cross-entropy alone never reads the teacher
                with torch.no_grad():
                    teacher_out = teacher(input_ids=ids, use_cache=False, output_hidden_states=hidden)
        labels = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], -100)], dim=1)  # next token
        mask = None
        if target_mask is not None:  # position j predicts token j + 1: it counts if that token does
            counted = torch.cat([target_mask[rows][:, 1:], torch.zeros_like(target_mask[rows][:, :1])], dim=1)
            labels = torch.where(counted.to(device), labels, -100)
            mask = counted.to(device)
        loss, parts = distillation_loss(
            config.losses, out.logits, None if teacher_out is None else teacher_out.logits, labels=labels,
            mask=mask,
            student_hidden=None if out.hidden_states is None else out.hidden_states[-1],
            teacher_hidden=None if teacher_out is None or teacher_out.hidden_states is None
            else teacher_out.hidden_states[-1],
            teacher_topk=None if cache is None else (cache[0][rows], cache[1][rows]),
            alignment=student.alignment_loss() if aligned else None)
        (loss / config.grad_accum).backward()
        loss_sum += float(loss.detach()) / config.grad_accum
        for k, v in parts.items():
            parts_sum[k] = parts_sum.get(k, 0.0) + v / config.grad_accum
        tokens_seen += ids.numel() * world
    if run.distributed:  # the mean gradient over processes: what one process accumulating all of them gets
        for p in student.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= world
        totals = torch.tensor([loss_sum, *parts_sum.values()], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(totals)
        loss_sum, *values = (totals / world).tolist()
        parts_sum = dict(zip(parts_sum, values))
    if config.clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(student.parameters(), config.clip_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    seconds += time.perf_counter() - began
    record = {"step": step + 1, "loss": loss_sum, "parts": parts_sum, "lr": scheduler.get_last_lr()[0],
              "tokens_seen": tokens_seen, "seconds": seconds,
              "tokens_per_s": tokens_seen / seconds if seconds else None}
    history.append(record)
    return tokens_seen, seconds

