"""Run a configured method on a model: calibration-free methods loop over linears directly,
data-aware ones go through the sequential engine. Returns the method's report."""

from __future__ import annotations

import torch

from unicomp.compress.base import CompressionReport, Method, PeakMemory, Progress
from unicomp.compress.sequential import run_sequential
from unicomp.errors import UnicompError
from unicomp.failpoints import failpoint
from unicomp.models.anatomy import anatomy_of
from unicomp.models.options import torch_dtype


def compress_model(model: torch.nn.Module, method: Method, calibration=None, *, batch_size: int = 8,
                   device: str | None = None, progress: Progress | None = None,
                   compute_dtype: str | None = None, block_cache_bytes: int | None = None) -> CompressionReport:
    """Compress `model` in place. `calibration` is a `CalibrationSet` (required when the method needs data).

    `block_cache_bytes`: memory per layer true-sequential methods may spend replaying finished
    blocks (None: the engine's default budget; 0: never, recompute every pass)."""
    anatomy = anatomy_of(model)
    method.check_model(model, anatomy)
    if method.needs_calibration and calibration is None:
        raise UnicompError(f"{method.name} needs calibration data", "pass --calibration c4 (or another calibration source)")
    dev = torch.device(device) if device else next(model.parameters()).device
    progress = _with_failpoint(progress)
    with PeakMemory(dev) as peak:
        if method.needs_calibration:
            per_layer = run_sequential(model, calibration.samples, method, batch_size=batch_size, device=device,
                                       progress=progress, compute_dtype=_dtype(compute_dtype),
                                       block_cache_bytes=block_cache_bytes)
        else:
            per_layer = {}
            layers = model.get_submodule(anatomy.layers)
            with torch.no_grad():
                for index, layer in enumerate(layers):
                    for name in anatomy.linears:
                        per_layer[f"{anatomy.layers}.{index}.{name}"] = method.compress_linear(name, layer.get_submodule(name), None)
                    progress("layers", index + 1, len(layers))
                if method.compresses_lm_head:
                    from unicomp.compress.sequential import untie_lm_head

                    per_layer[anatomy.lm_head] = method.compress_linear("lm_head", untie_lm_head(model, anatomy), None)
    extra = {"calibration_compute_dtype": compute_dtype or "model dtype"} if method.needs_calibration else {}
    return CompressionReport(
        method=method.name, config=method.config.model_dump(), per_layer=per_layer, summary=method.summarize(per_layer),
        wall_seconds=peak.seconds, peak_memory_bytes=peak.value, peak_memory_kind=peak.kind,
        calibration=None if calibration is None or not method.needs_calibration else calibration.record, extra=extra,
    )


def build_student(teacher: torch.nn.Module, tokenizer, method: Method, calibration, *, data_dir=None,
                  checkpoint_dir=None, on_step=lambda record: None, status=lambda s: None,
                  base_fingerprint: str | None = None) -> tuple[torch.nn.Module, CompressionReport]:
    """A distillation method's student (a new model; the teacher is left as it was) and its report,
    whose wall time and peak memory cover construction and training (the method's compute cost)."""
    anatomy = anatomy_of(teacher)
    method.check_model(teacher, anatomy)
    if calibration is None:
        raise UnicompError(f"{method.name} ranks channels and layers on calibration data",
                           "pass --calibration c4 (or another calibration source)")
    with PeakMemory(next(teacher.parameters()).device) as peak:
        student, extra = method.build_student(teacher, tokenizer, calibration, data_dir=data_dir,
                                              checkpoint_dir=checkpoint_dir, on_step=on_step, status=status,
                                              base_fingerprint=base_fingerprint)
    summary = {"student_parameters": extra["student_parameters"], "teacher_parameters": extra["teacher_parameters"],
               "parameter_ratio": extra["student_parameters"] / extra["teacher_parameters"]}
    stages = [stage for stage in (extra.get("stages") or {}).values() if stage]
    if stages:  # every training stage's cost (teacher correction, distillation, fine-tuning) counts
        summary.update({"train_steps": sum(s["steps"] for s in stages),
                        "train_tokens": sum(s["tokens_seen"] for s in stages),
                        "train_seconds": sum(s["seconds"] for s in stages)})
    return student, CompressionReport(
        method=method.name, config=method.config.model_dump(), per_layer={}, summary=summary,
        wall_seconds=peak.seconds, peak_memory_bytes=peak.value, peak_memory_kind=peak.kind,
        calibration=calibration.record, extra=extra)


def _with_failpoint(progress: Progress | None) -> Progress:
    def report(stage: str, done: int, total: int) -> None:
        failpoint("compress.layer")
        if progress is not None:
            progress(stage, done, total)
    return report


def _dtype(name: str | None) -> torch.dtype | None:
    """The autocast dtype of the calibration passes: None keeps the model's (fp32 needs no autocast)."""
    if name in (None, "", "model"):
        return None
    try:
        dtype = torch_dtype(name)  # the one dtype table (models/options.py)
    except UnicompError:
        raise UnicompError(f"unknown calibration compute dtype {name!r}", "use float32 (default) or bfloat16") from None
    return None if dtype == torch.float32 else dtype
