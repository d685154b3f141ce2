"""Distillation methods in the registry: each builds a student from the teacher (the run's base) on
calibration data, then trains it on the teacher's logits over its own token windows.

Unlike layer-wise methods they return a new model: `build_student(teacher, tokenizer, calibration,
...)`. The stages, in the paper's order (Minitron, Sreenivas et al. 2024), each optional but the
construction:
1. `teacher_correction`: fine-tune a copy of the teacher on the training text with cross-entropy
   (the original pre-training data is unavailable; the corrected teacher ranks and teaches);
2. construction: prune (Minitron depth / width) or clone (Low-Rank Clone);
3. `train`: distil on the teacher's logits (`train: null` stops after construction: the "pruned,
   not trained" student of the paper's ablation);
4. `sft`: supervised fine-tuning on a chat dataset, the loss on the assistant's tokens only.
The compression report's `extra["stages"]` holds each stage's compute cost (steps, tokens seen,
seconds, loss curve), `extra["training"]` the distillation stage's; the report's wall time and peak
memory cover all of them. With a `checkpoint_dir` each stage checkpoints there (the distillation
stage at its root, the others in subfolders) every `checkpoint_every` steps, and a killed build
resumes from the last checkpoint (construction is deterministic, so it is simply redone).
"""

from __future__ import annotations

import copy
import json
from abc import abstractmethod
from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar

import torch
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from unicomp.compress.base import Method, MethodConfig
from unicomp.compress.distill.depth import DepthConfig, depth_prune
from unicomp.compress.distill.losses import LossTerm
from unicomp.compress.distill.low_rank_clone import LowRankClone
from unicomp.compress.distill.sft_data import ChatData, build_chat_samples
from unicomp.compress.distill.trainer import TrainConfig, train
from unicomp.compress.distill.width import WidthConfig, prune_width
from unicomp.compress.registry import register
from unicomp.errors import UnicompError
from unicomp.models.fingerprint import fingerprint_model


class TrainingText(BaseModel):
    """The token windows the student trains on (never evaluation text; see data/calibration.py)."""

    model_config = ConfigDict(extra="forbid")

    source: str = "c4"
    n_samples: int = Field(256, gt=0)
    seq_len: int = Field(256, gt=1)
    seed: int = 1  # not the calibration default (0): ranking and training see different windows


def _default_train() -> TrainConfig:
    return TrainConfig(steps=100, micro_batch_size=4, grad_accum=2, lr=1e-4, warmup_steps=10)


def _with_ce(value: Any) -> Any:
    """Cross-entropy unless said otherwise (the only valid choice for a stage trained on the data alone)."""
    return {"losses": [{"kind": "ce"}], **value} if isinstance(value, dict) else value


def _ce_only(config: TrainConfig) -> TrainConfig:
    if any(t.kind != "ce" for t in config.losses):
        raise UnicompError(f"teacher_correction and sft train on the data alone, but these losses are "
                           f"{[t.kind for t in config.losses]}", "give the stage losses: [{kind: ce}] (the default)")
    return config


# teacher correction and SFT: a training config whose only loss is cross-entropy on the data
DataOnlyTraining = Annotated[TrainConfig, BeforeValidator(_with_ce), AfterValidator(_ce_only)]


class SftStage(BaseModel):
    """Supervised fine-tuning of the student on a chat dataset (cross-entropy on the assistant's tokens)."""

    model_config = ConfigDict(extra="forbid")

    data: ChatData = Field(default_factory=ChatData)
    train: DataOnlyTraining = Field(default_factory=lambda: TrainConfig(
        steps=50, micro_batch_size=4, lr=5e-5, warmup_steps=5, losses=[LossTerm(kind="ce")]))


class DistillConfig(MethodConfig):
    teacher_correction: DataOnlyTraining | None = None
    train: TrainConfig | None = Field(default_factory=_default_train)
    data: TrainingText = Field(default_factory=TrainingText)
    sft: SftStage | None = None
    calibration_batch_size: int = Field(4, gt=0)


class MinitronDepthConfig(DistillConfig):
    drop_layers: int = Field(ge=0)
    importance: str = Field("block_influence", pattern="^(block_influence|loss)$")
    keep_first_last: bool = True


class LowRankCloneConfig(DistillConfig):
    hidden_size: int = Field(gt=0)
    init: str = Field("pca", pattern="^(pca|random)$")
    train: TrainConfig | None = Field(default_factory=lambda: TrainConfig(
        steps=100, micro_batch_size=4, grad_accum=2, lr=1e-4, warmup_steps=10,  # 3e-4 diverges on SmolLM2
        losses=[LossTerm(kind="forward_kl"), LossTerm(kind="activation_mse")]))


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

    def finish(self, student: torch.nn.Module) -> torch.nn.Module:
        """The trained student as a plain model (the identity, but for students trained through a proxy)."""
        return student

    def total_steps(self) -> int:
        cfg = self.config
        stages = (cfg.teacher_correction, cfg.train, None if cfg.sft is None else cfg.sft.train)
        return sum(stage.steps for stage in stages if stage is not None)

    def build_student(self, teacher: torch.nn.Module, tokenizer: Any, calibration: Any, *, data_dir: Any = None,
                      checkpoint_dir: Any = None, on_step: Callable[[dict[str, Any]], None] = lambda record: None,
                      status: Callable[[str], None] = lambda s: None,
                      base_fingerprint: str | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
        """`base_fingerprint`: the teacher's `fingerprint_model` when the caller already has it."""
        cfg = self.config
        samples = calibration.samples
        b = cfg.calibration_batch_size
        batches = [{"input_ids": torch.tensor(samples[i:i + b])} for i in range(0, len(samples), b)]
        text = chat = None
        # data first: too little text fails before any construction or training work
        if cfg.train is not None or cfg.teacher_correction is not None:
            from unicomp.data.calibration import build_calibration
            from unicomp.evaluate.tasks.language_modelling import EVALUATION_TEXT

            text = build_calibration(cfg.data.model_dump(), tokenizer, forbidden=EVALUATION_TEXT, data_dir=data_dir)
        if cfg.sft is not None:
            chat = build_chat_samples(cfg.sft.data, tokenizer, data_dir=data_dir)
        folder = None if checkpoint_dir is None else Path(checkpoint_dir)
        stages: dict[str, Any] = {}
        teacher_parameters = sum(p.numel() for p in teacher.parameters())
        # a checkpoint or logit cache is resumed only by the same method, options, base model and data
        context = json.dumps({"method": self.name, "options": cfg.model_dump(mode="json"),
                              "base": base_fingerprint or fingerprint_model(teacher), "calibration": calibration.record.get("sha256")},
                             sort_keys=True)
        if cfg.teacher_correction is not None:
            status(f"teacher correction on {len(text.samples)} windows of {cfg.data.seq_len} tokens")
            teacher = copy.deepcopy(teacher)  # the run's base model stays as it was
            stages["teacher_correction"] = _stage(teacher, None, text.samples, None, cfg.teacher_correction,
                                                  None if folder is None else folder / "teacher_correction",
                                                  on_step, text.record, context)
            teacher.eval()
        student, construction = self.construct(teacher, batches)
        if cfg.train is not None:
            status(f"distilling on {len(text.samples)} windows of {cfg.data.seq_len} tokens ({cfg.data.source})")
            stages["distill"] = _stage(student, teacher, text.samples, None, cfg.train, folder, on_step, text.record,
                                       context)
        student = self.finish(student)
        if chat is not None:
            status(f"supervised fine-tuning on {len(chat.samples)} conversations ({cfg.sft.data.dataset})")
            stages["sft"] = _stage(student, None, chat.samples, chat.loss_mask, cfg.sft.train,
                                   None if folder is None else folder / "sft", on_step, chat.record, context)
        student.eval()
        parameters = sum(p.numel() for p in student.parameters())
        return student, {"construction": construction, "training": stages.get("distill"), "stages": stages,
                         "student_parameters": parameters, "teacher_parameters": teacher_parameters}


def _stage(model: torch.nn.Module, teacher: torch.nn.Module | None, samples: list[list[int]],
           loss_mask: list[list[int]] | None, config: TrainConfig, checkpoint_dir: Path | None,
           on_step: Callable[[dict[str, Any]], None], data_record: dict[str, Any], context: str) -> dict[str, Any]:
    """Train one stage and return its compute cost and loss curve."""
    with torch.inference_mode(False):
        result = train(model, teacher, samples, config, loss_mask=loss_mask, checkpoint_dir=checkpoint_dir,
                       on_step=on_step, context=context)
    history = result["history"]
    return {"steps": result["steps"], "tokens_seen": result["tokens_seen"], "seconds": result["seconds"],
            "data": data_record, "loss_first": history[0]["loss"], "loss_last": history[-1]["loss"],
            "history": [{"step": r["step"], "loss": r["loss"], "parts": r["parts"]} for r in history]}


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


@register
class Lrc(DistillMethod):
    """Low-Rank Clone: learned projections of the teacher's weights into a narrower residual stream,
    trained on logits and projected activations, then materialised (compress/distill/low_rank_clone.py)."""

    name: ClassVar[str] = "lrc"
    Config: ClassVar[type[MethodConfig]] = LowRankCloneConfig
    summary_line: ClassVar[str] = "learned low-rank projections of the teacher's weights, trained on logits and activations"

    def construct(self, teacher, batches):  # noqa: ANN001, ANN201
        cfg = self.config
        clone = LowRankClone(teacher, cfg.hidden_size, init=cfg.init, batches=batches, seed=0)
        return clone, {"teacher_hidden_size": teacher.config.hidden_size, "student_hidden_size": cfg.hidden_size,
                       "init": cfg.init, "trainable_parameters": sum(p.numel() for p in clone.parameters())}

    def finish(self, student):  # noqa: ANN001, ANN201
        return student.materialise()
