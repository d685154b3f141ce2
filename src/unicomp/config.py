"""The experiment config (YAML), validated: every error names the file, the key and the fix.

One config describes a whole unified run: the base model, the tasks every model is scored on,
the default calibration set, and the compressed variants. "Same method, different calibration"
is one line: give a variant its own `calibration:` block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from unicomp.data.calibration import CalibrationConfig
from unicomp.errors import UnicompError
from unicomp.outputs import name_problem
from unicomp.efficiency.runtime import Workload
from unicomp.reliability.judges.classifier import ClassifierJudgeConfig
from unicomp.reliability.judges.llm import LlmJudgeConfig


EXECUTORS = ("local", "ray")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvaluationSettings(_Strict):
    tasks: list[str] = Field(min_length=1)
    limit: int | None = Field(None, gt=0)
    # Per-task overrides of `limit` (for wikitext2_fixed it counts 2048-token windows).
    task_limits: dict[str, int] = Field(default_factory=dict)
    batch_size: int = Field(16, gt=0)
    num_fewshot: int | None = Field(None, ge=0)
    # Per-task answer budgets of generation tasks (tokens), e.g. {ifeval: 256} on a CPU where the
    # protocol's 1280 would take hours; recorded in each unit's settings.
    max_gen_toks: dict[str, int] = Field(default_factory=dict)


class DistanceSettings(_Strict):
    """Distance of each variant's next-token distributions from the base's, on WikiText-2 test windows."""

    enabled: bool = True
    windows: int = Field(8, gt=0)
    seq_len: int = Field(512, gt=1)


class EfficiencySettings(Workload):
    """Runtime measured per model (a profile unit each): the Workload fields plus the dtypes a dense
    model is measured in. Quantized checkpoints always run their packed kernels in bf16."""

    dtypes: list[str] = Field(default_factory=lambda: ["float32", "bfloat16"], min_length=1)
    # datasheet profiles (efficiency/devices) every model is projected onto, labelled "modeled"
    devices: list[str] = Field(default_factory=list)

    @field_validator("devices")
    @classmethod
    def _known_devices(cls, devices: list[str]) -> list[str]:
        from unicomp.efficiency.profiles import load_profile

        for d in devices:
            load_profile(d)  # an unknown name fails when the config is read, before any work
        return devices

    @field_validator("dtypes")
    @classmethod
    def _known_dtypes(cls, dtypes: list[str]) -> list[str]:
        from unicomp.models.options import normalize_dtype

        return list(dict.fromkeys(normalize_dtype(d) for d in dtypes))

    def workload(self) -> Workload:
        return Workload(**self.model_dump(exclude={"dtypes", "devices"}))


# One calibration settings class for configs, the compress command and the builder (every field is
# recorded with the set and is part of a compress unit's key).
CalibrationSettings = CalibrationConfig


def _safe_name(value: str) -> str:
    """Names become file names inside output_dir: no separators, no '..', bounded length."""
    problem = name_problem(value)
    if problem:
        raise ValueError(f"{value!r} {problem}")
    return value


class VariantConfig(_Strict):
    """A compressed variant: made by a `method` from the base, or a prebuilt checkpoint (`model`:
    hub id, folder or .gguf), e.g. a public GPTQ release, scored on the same items."""

    name: str
    method: str | None = None
    model: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    calibration: CalibrationSettings | None = None
    storage: str = "auto"  # dense for pruned models, compressed-tensors for quantized ones

    _name = field_validator("name")(_safe_name)

    @model_validator(mode="after")
    def _method_or_model(self) -> "VariantConfig":
        if (self.method is None) == (self.model is None):
            given = "both `method` and `model`" if self.method else "neither `method` nor `model`"
            raise ValueError(f"variant {self.name!r} has {given}: give a method to compress the base with, "
                             "or a model (hub id, folder, .gguf) for a prebuilt checkpoint")
        if self.model is not None and (self.options or self.calibration):
            raise ValueError(f"variant {self.name!r} is a prebuilt model: `options` and `calibration` apply to methods")
        if self.method is not None:  # a preset (awq-w4a16, ...) becomes its method and options
            from unicomp.compress.presets import resolve

            self.method, self.options = resolve(self.method, self.options)
        return self


class BackendConfig(_Strict):
    """Generation tasks of some models answered by OpenAI-compatible servers (vLLM, llama.cpp,
    `unicomp serve`): `models` maps a model of the run ("base" or a variant name) to the name the
    server knows it by. Models not listed, and every non-generation task, run in-process."""

    type: str = "openai"
    base_url: str
    models: dict[str, str] = Field(min_length=1)
    api_key_env: str | None = "OPENAI_API_KEY"  # the key is read from this variable, never stored
    chat: bool = True
    concurrency: int = Field(4, ge=1)
    max_retries: int = Field(3, ge=0)
    timeout_s: float = Field(600.0, gt=0)

    def endpoint_for(self, model: str) -> dict[str, Any] | None:
        """The endpoint config (EndpointConfig fields) for one model of the run, if it is served."""
        if model not in self.models:
            return None
        fields = self.model_dump(exclude={"models"})
        return {**fields, "model": self.models[model]}


class ExperimentConfig(_Strict):
    name: str
    model: str
    dtype: str = "float32"
    device: str = "cpu"
    data_dir: str | None = None
    store: str = "unicomp-results/unicomp.sqlite"
    output_dir: str = "unicomp-results"
    evaluation: EvaluationSettings
    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings)
    distance: DistanceSettings = Field(default_factory=DistanceSettings)
    # runtime per model (prefill, TTFT, decode tokens/s, peak memory): on when the block is given
    efficiency: EfficiencySettings | None = None
    compress_batch_size: int = Field(8, gt=0)
    # bfloat16: calibration forward passes under autocast (statistics and updates stay fp32)
    calibration_dtype: str | None = None
    variants: list[VariantConfig] = Field(default_factory=list)
    # a dataset served only after a fallback (a configured source missed, another split) is an error
    strict_sources: bool = False
    # where units run: this process, or a Ray cluster (`ray_address`, default: start a local one)
    executor: str = "local"
    ray_address: str | None = None
    # generation through OpenAI-compatible servers for some models (default: everything in-process)
    backend: BackendConfig | None = None
    # an LLM judge over an OpenAI-compatible endpoint for the TrustLLM subtasks TrustLLM judges with
    # GPT-4 (default: the offline rule judges only); LlmJudgeConfig fields
    judge: LlmJudgeConfig | None = None
    # TrustLLM's refusal classifier (ClassifierJudgeConfig fields; {} for LibrAI/longformer-harmful-ro)
    # for the subtasks where TrustLLM reports a refuse-to-answer rate (default: the refusal rule)
    refusal_classifier: ClassifierJudgeConfig | None = None
    # a variant is flagged when its performance retention exceeds its reliability retention by more
    decoupling_margin_pct: float = Field(5.0, ge=0)

    _name = field_validator("name")(_safe_name)

    @field_validator("variants")
    @classmethod
    def _unique_names(cls, variants: list[VariantConfig]) -> list[VariantConfig]:
        seen = set()
        for v in variants:
            if v.name in seen or v.name == "base":
                raise ValueError(f"variant name {v.name!r} is used twice or is reserved ('base')")
            seen.add(v.name)
        return variants

    @model_validator(mode="after")
    def _check_names(self) -> "ExperimentConfig":
        from unicomp.compress.registry import make_method
        from unicomp.evaluate.tasks import expand_task_names

        names = expand_task_names(self.evaluation.tasks)
        for task, value in self.evaluation.task_limits.items():
            if task not in names:
                raise ValueError(f"task_limits names {task!r}, which is not in evaluation.tasks")
            if value < 1:
                raise ValueError(f"task_limits.{task} must be a positive number of items")
        for task, value in self.evaluation.max_gen_toks.items():
            if task not in names:
                raise ValueError(f"max_gen_toks names {task!r}, which is not in evaluation.tasks")
            if value < 1:
                raise ValueError(f"max_gen_toks.{task} must be a positive number of tokens")
        for v in self.variants:
            if v.method is not None:
                make_method(v.method, v.options)
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r} (choose {' or '.join(EXECUTORS)})")
        if self.backend is not None:
            known = {"base", *(v.name for v in self.variants)}
            unknown = sorted(set(self.backend.models) - known)
            if unknown:
                raise ValueError(f"backend.models names {', '.join(unknown)}, not a model of this run "
                                 f"(use 'base' or a variant name: {', '.join(sorted(known))})")
        return self

    def limit_for(self, task: str) -> int | None:
        return self.evaluation.task_limits.get(task, self.evaluation.limit)

    def max_gen_toks_for(self, task: str) -> int | None:
        return self.evaluation.max_gen_toks.get(task)

    def calibration_for(self, variant: VariantConfig) -> CalibrationSettings:
        return variant.calibration or self.calibration


def load_config(path: str | Path) -> ExperimentConfig:
    p = Path(path)
    if not p.is_file():
        raise UnicompError(f"config file {p} not found", "pass the path of a YAML config, e.g. configs/quickstart.yaml")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UnicompError(f"{p}{where}: not valid YAML ({getattr(exc, 'problem', exc)})", "fix the YAML syntax") from None
    if not isinstance(raw, dict):
        raise UnicompError(f"{p}: expected a mapping of settings at the top level", "see configs/quickstart.yaml")
    return _validated(raw, p)


def with_overrides(cfg: ExperimentConfig, where: str | Path, **updates: Any) -> ExperimentConfig:
    """The config with command-line overrides applied, validated like the file itself."""
    updates = {k: v for k, v in updates.items() if v is not None}
    return _validated({**cfg.model_dump(exclude_unset=True), **updates}, Path(where)) if updates else cfg


def _validated(raw: dict[str, Any], p: Path) -> ExperimentConfig:
    try:
        return ExperimentConfig(**raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(x) for x in err["loc"]) or "(top level)"
        inner = err.get("ctx", {}).get("error")
        if isinstance(inner, UnicompError):
            raise UnicompError(f"{p}: {key}: {inner.problem}", inner.fix) from None
        msg = err["msg"].removeprefix("Value error, ")
        raise UnicompError(f"{p}: {key}: {msg}", "see configs/quickstart.yaml for a valid config") from None
    except UnicompError as exc:
        raise UnicompError(f"{p}: {exc.problem}", exc.fix) from None
