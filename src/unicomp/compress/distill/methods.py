"""Distillation methods in the registry: each builds a student from the teacher (the run's base) on
calibration data, then trains it on the teacher's logits over its own token windows.

Unlike layer-wise methods they return a new model: `build_student(teacher, tokenizer, calibration,
...)`. The compression report's `extra["training"]` is the method's compute cost (steps, tokens
seen, seconds, loss curve); its wall time and peak memory cover construction and training.
`train: null` stops after construction (the "pruned, not trained" student of the paper's ablation).
With a `checkpoint_dir` training checkpoints there every `train.checkpoint_every` steps and a killed
build resumes from the last one (construction is deterministic, so it is simply redone).
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from typing import Any, Callable, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from unicomp.compress.base import Method, MethodConfig
from unicomp.compress.distill.depth import DepthConfig, depth_prune
from unicomp.compress.distill.trainer import TrainConfig, train
from unicomp.compress.distill.width import WidthConfig, prune_width
from unicomp.compress.registry import register
from unicomp.errors import UnicompError


class TrainingText(BaseModel):
    """The token windows the student trains on (never evaluation text; see data/calibration.py)."""

    model_config = ConfigDict(extra="forbid")

    source: str = "c4"
    n_samples: int = Field(256, gt=0)
    seq_len: int = Field(256, gt=1)
    seed: int = 1  # not the calibration default (0): ranking and training see different windows


def _default_train() -> TrainConfig:
    return TrainConfig(steps=100, micro_batch_size=4, grad_accum=2, lr=1e-4, warmup_steps=10)


class DistillConfig(MethodConfig):
    train: TrainConfig | None = Field(default_factory=_default_train)
    data: TrainingText = Field(default_factory=TrainingText)
    calibration_batch_size: int = Field(4, gt=0)


class MinitronDepthConfig(DistillConfig):
    drop_layers: int = Field(ge=0)
    importance: str = Field("block_influence", pattern="^(block_influence|loss)$")
    keep_first_last: bool = True


class MinitronWidthConfig(DistillConfig):
    hidden_size: int | None = Field(None, gt=0)
    intermediate_size: int | None = Field(None, gt=0)
    num_attention_heads: int | None = Field(None, gt=0)
    num_key_value_heads: int | None = Field(None, gt=0)


class DistillMethod(Method):
    """A method that builds and trains a whole student (not a layer-wise edit)."""

    family: ClassVar[str] = "distill"
    builds_student: ClassVar[bool] = True

    def compress_linear(self, name, linear, stats):  # noqa: ANN001, ANN201
        raise UnicompError(f"{self.name} builds a whole student model, not linear by linear",
                           "run it through unicomp compress / unicomp run")

    @abstractmethod
    def construct(self, teacher: torch.nn.Module, batches: list[dict[str, torch.Tensor]]) -> tuple[torch.nn.Module, dict]:
        """The untrained student and what construction did."""

    def total_steps(self) -> int:
        return 0 if self.config.train is None else self.config.train.steps

    def build_student(self, teacher: torch.nn.Module, tokenizer: Any, calibration: Any, *, data_dir: Any = None,
                      checkpoint_dir: Any = None, on_step: Callable[[dict[str, Any]], None] = lambda record: None,
                      status: Callable[[str], None] = lambda s: None) -> tuple[torch.nn.Module, dict[str, Any]]:
        cfg = self.config
        samples = calibration.samples
        b = cfg.calibration_batch_size
        batches = [{"input_ids": torch.tensor(samples[i:i + b])} for i in range(0, len(samples), b)]
        text = None
        if cfg.train is not None:  # built first: too little text fails before any construction work
            from unicomp.data.calibration import build_calibration
            from unicomp.evaluate.tasks.language_modelling import EVALUATION_TEXT

            text = build_calibration(cfg.data.model_dump(), tokenizer, forbidden=EVALUATION_TEXT, data_dir=data_dir)
        student, construction = self.construct(teacher, batches)
        training = None
        if text is not None:
            status(f"training on {len(text.samples)} windows of {cfg.data.seq_len} tokens ({cfg.data.source})")
            with torch.inference_mode(False):
                result = train(student, teacher, text.samples, cfg.train, checkpoint_dir=checkpoint_dir, on_step=on_step)
            training = {"steps": result["steps"], "tokens_seen": result["tokens_seen"], "seconds": result["seconds"],
                        "data": text.record, "loss_first": result["history"][0]["loss"],
                        "loss_last": result["history"][-1]["loss"],
                        "history": [{"step": r["step"], "loss": r["loss"], "parts": r["parts"]} for r in result["history"]]}
        student.eval()
        parameters = sum(p.numel() for p in student.parameters())
        return student, {"construction": construction, "training": training, "student_parameters": parameters,
                         "teacher_parameters": sum(p.numel() for p in teacher.parameters())}


@register
class MinitronDepth(DistillMethod):
    """Minitron depth: drop the least important decoder layers, then distill (compress/distill/depth.py)."""

    name: ClassVar[str] = "minitron_depth"
    Config: ClassVar[type[MethodConfig]] = MinitronDepthConfig
    summary_line: ClassVar[str] = "drop the least important decoder layers, then logit distillation"

    def construct(self, teacher, batches):  # noqa: ANN001, ANN201
        cfg = self.config
        student = copy.deepcopy(teacher)
        with torch.no_grad():
            report = depth_prune(student, batches, DepthConfig(drop_layers=cfg.drop_layers, importance=cfg.importance,
                                                               keep_first_last=cfg.keep_first_last))
        return student, report


@register
class MinitronWidth(DistillMethod):
    """Minitron width: keep the most important channels and heads, then distill (compress/distill/width.py)."""

    name: ClassVar[str] = "minitron_width"
    Config: ClassVar[type[MethodConfig]] = MinitronWidthConfig
    summary_line: ClassVar[str] = "keep the most important MLP channels, heads and embedding channels, then distill"

    def construct(self, teacher, batches):  # noqa: ANN001, ANN201
        cfg = self.config
        target = WidthConfig(hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                             num_attention_heads=cfg.num_attention_heads, num_key_value_heads=cfg.num_key_value_heads)
        student, report = prune_width(teacher, batches, target)
        return student, {k: v for k, v in report.items() if k in ("teacher", "student")}
