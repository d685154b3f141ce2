"""The kinds of work a run is made of. A unit holds its inputs, knows its content key (everything
that determines its result), runs, and turns its result into a typed record and back.

Keys are content hashes, so a unit whose key is in the store is reused instead of recomputed. A
unit's key may depend on another unit's result (a variant's evaluation is keyed by the
fingerprint of the checkpoint its compress unit wrote): `bind` fills such inputs from finished
dependencies, and until then `key()` is None. Keys are computed exactly as before units existed,
so stores written earlier are reused.

Unit kinds: evaluate (a model on a task), compress (a method on the base -> checkpoint),
distance (a variant's next-token distributions against the base's), judge (an LLM judge over an
evaluation's stored generations). Later tracks add theirs here (profile, train).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from unicomp.errors import UnicompError
from unicomp.runs.models import ModelPool, ModelRef
from unicomp.runs.store import Store, StoredUnit, unit_key


@dataclass
class UnitContext:
    """What a running unit may use: loaded models, progress bars, status lines, the data mirror."""

    pool: ModelPool
    progress: Callable[[str, int], Any]
    status: Callable[[str], None] = lambda s: None
    data_dir: str | None = None
    _lms: dict[tuple[str, int, int], Any] = field(default_factory=dict)
    # runtime signature -> (model label, measurement): models that run identically share one (ProfileUnit)
    runtime_measurements: dict[str, tuple[str, dict]] = field(default_factory=dict)

    def release_models(self) -> None:
        self._lms = {}
        self.pool.release_unpinned()

    def language_model(self, spec: str, batch_size: int, max_length: int | None):
        from unicomp.evaluate.lm import LanguageModel

        loaded = self.pool.get(spec)
        cache_key = (spec, batch_size, max_length or 0)
        lm = self._lms.get(cache_key)
        if lm is None or lm.model is not loaded.model:
            lm = LanguageModel(loaded.model, loaded.tokenizer, batch_size=batch_size, max_length=max_length)
            self._lms = {cache_key: lm}  # one at a time: a released model must not stay referenced
        return lm


class Unit(ABC):
    kind: ClassVar[str]
    schema: ClassVar[int] = 1  # of this kind's record; stored with every unit

    name: str  # unique in a plan, human-readable: "evaluate base x arc_easy"
    needs: tuple[str, ...] = ()  # names of the units this one waits for

    def bind(self, done: dict[str, Any]) -> None:
        """Take inputs from the records of finished dependencies (default: none needed)."""

    @abstractmethod
    def key(self) -> str | None:
        """The content key, or None while an input is still unknown."""

    def reusable(self, stored: StoredUnit) -> bool:
        """Whether the stored unit with this key can stand for a fresh run."""
        return True

    def prepare(self, store: Store | None) -> None:
        """Read what the unit needs from the store before it is run, here or on a worker that has
        no store (default: nothing)."""

    @abstractmethod
    def run(self, ctx: UnitContext) -> Any:
        """Compute the record."""

    @abstractmethod
    def commit(self, store: Store, run_id: str, key: str, record: Any, environment: dict, wall_seconds: float) -> None:
        """Store the record (one transaction)."""

    @abstractmethod
    def from_stored(self, stored: StoredUnit) -> Any:
        """The record of a reused unit."""

    def estimate(self) -> dict[str, float]:
        """Resources to ask a cluster for (CPUs; GPUs when the unit runs on CUDA)."""
        return {"num_cpus": 1}


# ------------------------------------------------------------------------------------ evaluate
@dataclass
class EvaluateRecord:
    result: Any  # TaskResult
    model: dict[str, Any]


@dataclass
class EvaluateUnit(Unit):
    kind: ClassVar[str] = "evaluate"
    name: str
    model: ModelRef
    spec: Any  # TaskSpec
    docs: list[dict]
    resolved: Any  # ResolvedDataset
    limit: int | None
    num_fewshot: int | None
    batch_size: int
    max_length: int | None
    add_bos_token: bool | None = None
    needs: tuple[str, ...] = ()
    device: str = "cpu"
    endpoint: dict[str, Any] | None = None  # EndpointConfig fields: generation through that server

    def bind(self, done: dict[str, Any]) -> None:
        _bind_model(self.model, done)

    @property
    def uses_endpoint(self) -> bool:
        return self.endpoint is not None and self.spec.output_type == "generate_until"

    def settings(self) -> dict[str, Any]:
        from unicomp.evaluate.runner import task_settings

        settings = task_settings(self.spec, self.limit, self.num_fewshot, self.max_length or 0, self.add_bos_token)
        if self.uses_endpoint:  # served answers are keyed apart from in-process ones (another engine, maybe dtype)
            settings["backend"] = {k: self.endpoint[k] for k in ("type", "base_url", "model")}
        return settings

    def key(self) -> str | None:
        if self.model.fingerprint is None or self.max_length is None or self.resolved is None:
            return None
        return unit_key("evaluate", self.model.fingerprint, self.spec.name, self.settings(), self.resolved.revision)

    def run(self, ctx: UnitContext) -> EvaluateRecord:
        from unicomp.evaluate.runner import evaluate_task

        ctx.pool.identify(self.model)
        if self.uses_endpoint:
            from unicomp.evaluate.endpoint import EndpointConfig, EndpointModel

            lm = EndpointModel(EndpointConfig(**self.endpoint), max_length=self.max_length,
                               add_bos_token=self.add_bos_token)
        else:
            lm = ctx.language_model(self.model.spec, self.batch_size, self.max_length)
        with ctx.progress(f"{self.model.label} x {self.spec.name}", len(self.docs)) as advance:
            result = evaluate_task(lm, self.spec, self.docs, self.resolved, limit=self.limit,
                                   num_fewshot=self.num_fewshot, progress=advance)
        return EvaluateRecord(result, self.model.record)

    def commit(self, store, run_id, key, record, environment, wall_seconds) -> None:
        store.save_unit(run_id, key, kind=self.kind, model=record.model, result=record.result, environment=environment,
                        wall_seconds=wall_seconds, schema=self.schema)

    def from_stored(self, stored: StoredUnit) -> StoredUnit:
        return stored

    def estimate(self) -> dict[str, float]:
        return {"num_gpus": 1} if self.device.startswith("cuda") else {"num_cpus": 1}


# ------------------------------------------------------------------------------------ compress
@dataclass
class CompressRecord:
    checkpoint: str
    variant_fingerprint: str | None
    variant_record: dict[str, Any] | None
    report: dict[str, Any]
    sizes: dict[str, Any]
    manifest: dict[str, Any] | None = None


@dataclass
class CompressUnit(Unit):
    """A method applied to the base, saved as a checkpoint folder. In a run the folder is named by
    the key under output_dir/checkpoints; for `unicomp compress` it is --out."""

    kind: ClassVar[str] = "compress"
    name: str
    variant: str
    method: str
    options: dict[str, Any]
    storage: str
    base: ModelRef
    calibration: Any  # data.calibration.CalibrationConfig
    batch_size: int
    calibration_dtype: str | None
    checkpoints: Path | None = None  # run: folder of checkpoints, named by key
    out: Path | None = None  # compress command: the folder the user named
    overwrite: bool = True
    identify_output: bool = True  # load the saved checkpoint back to fingerprint it (runs)
    needs: tuple[str, ...] = ()
    device: str = "cpu"

    def settings(self) -> dict[str, Any]:
        from unicomp.compress.checkpoint import planned_storage
        from unicomp.compress.registry import make_method

        method = make_method(self.method, self.options)
        # the resolved config, defaults included: a changed default must not reuse a variant made with the old one
        settings = {"method": self.method, "options": method.config.model_dump(mode="json"),
                    "storage": planned_storage(self.storage, method),
                    "calibration": self.calibration.model_dump(), "batch_size": self.batch_size}
        if self.calibration_dtype:
            settings["calibration_dtype"] = self.calibration_dtype
        return settings

    def key(self) -> str | None:
        if self.base.fingerprint is None:
            return None
        return unit_key("compress", self.base.fingerprint, self.method, self.settings(), "")

    def folder(self) -> Path | None:
        if self.out is not None:
            return self.out
        key = self.key()
        return None if key is None or self.checkpoints is None else self.checkpoints / f"{self.variant}-{key[:10]}"

    def reusable(self, stored: StoredUnit) -> bool:
        from unicomp.compress.checkpoint import read_manifest

        folder = self.folder()
        return folder is not None and read_manifest(folder) is not None  # the checkpoint itself must still be there

    def run(self, ctx: UnitContext) -> CompressRecord:
        from unicomp.compress.apply import compress_model
        from unicomp.compress.checkpoint import check_storage, save_compressed
        from unicomp.compress.registry import make_method
        from unicomp.models.anatomy import decoder_layers

        method = make_method(self.method, self.options)
        check_storage(self.storage, method)
        ctx.release_models()  # the previous variant: at most base + this fresh copy in memory
        fresh = ctx.pool.fresh(self.base.spec)  # methods change weights in place
        ctx.status(f"model from {fresh.source} ({fresh.location})")
        calibration = None
        if method.needs_calibration:
            from unicomp.data.calibration import build_calibration
            from unicomp.evaluate.tasks.language_modelling import EVALUATION_TEXT

            calibration = build_calibration(self.calibration, fresh.tokenizer, forbidden=EVALUATION_TEXT,
                                            data_dir=ctx.data_dir)
            ctx.status(f"calibration: {len(calibration.samples)} samples, {calibration.record.get('total_tokens')} tokens")
        if getattr(method, "builds_student", False):  # distillation: a new, smaller model trained on the base
            from unicomp.compress.apply import build_student

            label = f"distill {self.variant} (steps)" if self.checkpoints is not None else f"{self.method} steps"
            target = self.folder()
            training_dir = target.parent / f".{target.name}.training"  # resumable; removed once the student is saved
            with ctx.progress(label, max(1, method.total_steps())) as advance:
                model, report = build_student(fresh.model, fresh.tokenizer, method, calibration, data_dir=ctx.data_dir,
                                              checkpoint_dir=training_dir, on_step=lambda record: advance(1),
                                              status=ctx.status, base_fingerprint=fresh.fingerprint)
        else:
            label = f"compress {self.variant} (layers)" if self.checkpoints is not None else f"{self.method} layers"
            with ctx.progress(label, len(decoder_layers(fresh.model))) as advance:
                report = compress_model(fresh.model, method, calibration, batch_size=self.batch_size,
                                        progress=lambda stage, done, total: advance(1),
                                        compute_dtype=self.calibration_dtype)
            model = fresh.model
        folder = self.folder()
        from unicomp.compress.checkpoint import read_manifest
        from unicomp.compress.distill.distributed import barrier, is_main

        if is_main():  # under torchrun only rank 0 writes; the others read its folder back
            manifest = save_compressed(model, fresh.tokenizer, folder, report, base=fresh.record(),
                                       storage=self.storage, overwrite=self.overwrite)
            if getattr(method, "builds_student", False):
                import shutil

                shutil.rmtree(training_dir, ignore_errors=True)
        barrier()
        if not is_main():
            manifest = read_manifest(folder)
            if manifest is None:
                raise UnicompError(f"rank 0 saved the student to {folder}, but this process cannot read it there",
                                   "give every torchrun process the same output folder (a shared filesystem)")
        del model
        del fresh
        fingerprint = record = None
        if self.identify_output:  # the fingerprint of what evaluation will load, after the save/load round trip
            loaded = ctx.pool.get(str(folder))
            fingerprint, record = loaded.fingerprint, loaded.record()
        return CompressRecord(str(folder), fingerprint, record, report.to_dict(), manifest["sizes"], manifest)

    def commit(self, store, run_id, key, record, environment, wall_seconds) -> None:
        from unicomp.evaluate.runner import TaskResult

        summary = record.report["summary"]
        result = TaskResult(self.variant, "compression", {k: v for k, v in summary.items() if isinstance(v, (int, float))},
                            {}, 0, [], {"checkpoint": record.checkpoint, "variant_fingerprint": record.variant_fingerprint,
                                        "variant_record": record.variant_record, "report": record.report,
                                        "sizes": record.sizes}, self.settings())
        store.save_unit(run_id, key, kind=self.kind, model=self.base.record, result=result, environment=environment,
                        wall_seconds=wall_seconds, schema=self.schema)

    def from_stored(self, stored: StoredUnit) -> CompressRecord:
        d = stored.data
        return CompressRecord(str(self.folder()), d["variant_fingerprint"], d["variant_record"], d["report"], d["sizes"])

    def estimate(self) -> dict[str, float]:
        return {"num_gpus": 1} if self.device.startswith("cuda") else {"num_cpus": 1}


# ------------------------------------------------------------------------------------ distance
@dataclass
class DistanceUnit(Unit):
    """KL(P_base || P_variant) and top-1 agreement on WikiText-2 windows; skipped, with the reason
    recorded, when the two tokenizers differ (positions would not line up)."""

    kind: ClassVar[str] = "distance"
    name: str
    base: ModelRef
    variant: ModelRef
    resolved: Any  # ResolvedDataset of WikiText-2 test
    windows: int
    seq_len: int
    needs: tuple[str, ...] = ()

    def bind(self, done: dict[str, Any]) -> None:
        _bind_model(self.variant, done)

    def settings(self) -> dict[str, Any]:
        return {"windows": self.windows, "seq_len": self.seq_len, "base": self.base.fingerprint}

    def key(self) -> str | None:
        if self.base.fingerprint is None or self.variant.fingerprint is None:
            return None
        return unit_key("distance", self.variant.fingerprint, "wikitext_kl", self.settings(), self.resolved.revision)

    def run(self, ctx: UnitContext):
        from unicomp.evaluate.distance import distribution_distance, token_windows
        from unicomp.evaluate.runner import ItemRecord, TaskResult

        b = ctx.pool.get(self.base.spec)
        v = ctx.pool.get(self.variant.spec)
        ctx.pool.identify(self.variant)
        if b.tokenizer.get_vocab() != v.tokenizer.get_vocab():
            reason = (f"tokenizers differ ({len(b.tokenizer)} vs {len(v.tokenizer)} tokens): next-token distributions "
                      "cannot be compared position by position")
            return TaskResult("wikitext_kl", "distance", {}, {}, 0, [], {**self.resolved.record(), "skipped": reason},
                              self.settings())
        text = "\n\n".join(r["text"] for r in self.resolved.rows)
        windows = token_windows(b.tokenizer, text, self.seq_len, self.windows)
        with ctx.progress(f"{self.variant.label} distance to base", len(windows)) as advance:
            dist = distribution_distance(b.model, v.model, windows, progress=advance)
        records = [ItemRecord(str(i), "", None, None, None, None, None, {"kl_mean": kl})
                   for i, kl in enumerate(dist.per_window_kl)]
        return TaskResult("wikitext_kl", "distance", dist.scores(), {}, len(records), records, self.resolved.record(),
                          self.settings())

    def commit(self, store, run_id, key, record, environment, wall_seconds) -> None:
        store.save_unit(run_id, key, kind=self.kind, model=self.variant.record, result=record, environment=environment,
                        wall_seconds=wall_seconds, schema=self.schema)

    def from_stored(self, stored: StoredUnit) -> StoredUnit:
        return stored


# ------------------------------------------------------------------------------------ judge
@dataclass
class JudgeUnit(Unit):
    """A judge over the generations of one evaluation of a TrustLLM subtask: an LLM judge (any
    OpenAI-compatible endpoint) where TrustLLM asks GPT-4, or TrustLLM's refusal classifier where
    it reports a refuse-to-answer rate. Its result is the subtask scored with the judge's labels.
    Keyed by the evaluation's key and the judge's identity (model and URL; a classifier's commit or
    file hash), so changing the judge re-judges without re-generating; an API key is never part of it."""

    kind: ClassVar[str] = "judge"
    name: str
    evaluate: EvaluateUnit
    judge: dict[str, Any]  # LlmJudgeConfig or ClassifierJudgeConfig (type: classifier) fields
    needs: tuple[str, ...] = ()
    _generated: Any = None
    _items: list[dict] | None = None
    _resolved: Any = None

    def bind(self, done: dict[str, Any]) -> None:
        self._generated = done.get(self.evaluate.name)

    @property
    def is_classifier(self) -> bool:
        return self.judge.get("type") == "classifier"

    def config(self):
        if self.is_classifier:
            from unicomp.reliability.judges.classifier import ClassifierJudgeConfig

            return ClassifierJudgeConfig(**self.judge)
        from unicomp.reliability.judges.llm import LlmJudgeConfig

        return LlmJudgeConfig(**self.judge)

    def judge_record(self) -> dict[str, Any]:
        if not self.is_classifier:
            return self.config().record()
        if self._resolved is None:
            from unicomp.reliability.judges.classifier import resolve

            self._resolved = resolve(self.config())
        return self._resolved.record(self.config())

    def settings(self) -> dict[str, Any]:
        prompts = {} if self.is_classifier else {"prompts": "TrustLLM 0.3.0"}
        return {"evaluate": self.evaluate.key(), "judge": self.judge_record(), **prompts}

    def key(self) -> str | None:
        if self.evaluate.key() is None:
            return None
        return unit_key("judge", self.evaluate.model.fingerprint, self.evaluate.spec.name, self.settings(), "")

    def prepare(self, store: Store | None) -> None:
        """The evaluation's items (generation, prompt hash, target), from its fresh record or the store."""
        record = self._generated
        if isinstance(record, EvaluateRecord):
            self._items = [{"generation": r.generation, "prompt_hash": r.prompt_hash, "target": r.target}
                           for r in record.result.records]
        elif store is not None:
            self._items = store.records(self.evaluate.key())
        if self._items is not None and len(self._items) != len(self.evaluate.docs):
            raise UnicompError(f"{self.name}: the stored evaluation has {len(self._items)} items, the task "
                               f"{len(self.evaluate.docs)} documents", "re-run without the stored unit (unicomp gc)")

    def run(self, ctx: UnitContext):
        from unicomp.evaluate.runner import ItemRecord, TaskResult
        from unicomp.reliability.judge_step import scores_of

        spec = self.evaluate.spec
        if self._items is None:
            self.prepare(None)
        if self._items is None:
            raise RuntimeError(f"{self.name}: run before its evaluation's items were read (prepare)")  # a bug
        texts = [it["generation"] for it in self._items]
        rule = spec.reference.split("judge ")[-1]
        records, extras, data = (self._classify if self.is_classifier else self._ask)(ctx, texts)
        items = []
        for i, (rec, text) in enumerate(zip(records, texts)):
            source = self._items[i]
            items.append(ItemRecord(str(i), source.get("prompt_hash", ""), source.get("target"), None, None, None, text,
                                    {m: rec for m in spec.metrics}, extras.get(i, {"judge": rule})))
        data = {"judge": self.judge_record(), **data, "evaluate_unit": self.evaluate.key(),
                "rule_judged_items": len(texts) - data["judged_items"]}
        return TaskResult(spec.name, spec.category, scores_of(spec.name, records), {}, len(items), items, data,
                          self.settings())

    def _ask(self, ctx: UnitContext, texts: list[str]):
        from unicomp.reliability.judge_step import judge_items, judge_prompts
        from unicomp.reliability.trustllm.subtasks import SUBTASKS

        spec, config, docs = self.evaluate.spec, self.config(), self.evaluate.docs
        total = len(judge_prompts(SUBTASKS[spec.name], docs, texts))
        with ctx.progress(f"{self.evaluate.model.label} x {spec.name}: judge {config.model}", total) as advance:
            records, judged = judge_items(spec.name, docs, texts, config, progress=advance)
        extras = {it.index: {"judge": config.name, "judge_prompt_key": it.prompt_key, "judge_reply": it.reply}
                  for it in judged}
        return records, extras, {"judged_items": len(judged),
                                 "malformed_items": [str(it.index) for it in judged if it.label is None]}

    def _classify(self, ctx: UnitContext, texts: list[str]):
        from unicomp.reliability.judge_step import relabel_refusals
        from unicomp.reliability.judges.classifier import RefusalClassifier
        from unicomp.reliability.trustllm.subtasks import SUBTASKS

        spec, config, docs = self.evaluate.spec, self.config(), self.evaluate.docs
        self.judge_record()  # resolves the classifier (once)
        classifier = RefusalClassifier(config, self._resolved)
        records = [SUBTASKS[spec.name].judge(d, t) for d, t in zip(docs, texts)]
        total = sum("refused" in r for r in records)
        with ctx.progress(f"{self.evaluate.model.label} x {spec.name}: classify {config.model}", total) as advance:
            labels = relabel_refusals(records, texts, classifier, progress=advance)
        extras = {i: {"judge": config.name, "classifier_label": label} for i, label in labels.items()}
        return records, extras, {"judged_items": len(labels), "source": self._resolved.source}

    def commit(self, store, run_id, key, record, environment, wall_seconds) -> None:
        store.save_unit(run_id, key, kind=self.kind, model=self.evaluate.model.record, result=record,
                        environment=environment, wall_seconds=wall_seconds, schema=self.schema)

    def from_stored(self, stored: StoredUnit) -> StoredUnit:
        return stored


# ------------------------------------------------------------------------------------ profile
def machine_identity(device: str) -> dict[str, Any]:
    """What a measured speed belongs to: the same model profiles differently elsewhere."""
    import os

    import torch

    from unicomp.efficiency.machine import cpu_name

    out = {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "torch": torch.__version__}
    if device.startswith("cuda") and torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return out


@dataclass
class ProfileUnit(Unit):
    """Runtime of one model in one dtype on this machine (efficiency/runtime.py). Keyed by the
    model, dtype, workload, threads and machine. Within a run's process, models that share a
    runtime signature (same shapes, dtype and kernels, e.g. a pruned model that runs dense) share
    one measurement, recorded as such, so sparse variants do not re-measure their base's speed."""

    kind: ClassVar[str] = "profile"
    name: str
    model: ModelRef
    dtype: str
    workload: dict[str, Any]
    device: str = "cpu"
    needs: tuple[str, ...] = ()

    def bind(self, done: dict[str, Any]) -> None:
        _bind_model(self.model, done)

    def settings(self) -> dict[str, Any]:
        import torch

        threads = self.workload.get("threads") or torch.get_num_threads()
        return {"dtype": self.dtype, "workload": {**self.workload, "threads": threads}, "device": self.device,
                "machine": machine_identity(self.device)}

    def key(self) -> str | None:
        if self.model.fingerprint is None:
            return None
        return unit_key("profile", self.model.fingerprint, f"runtime_{self.dtype}", self.settings(), "")

    def run(self, ctx: UnitContext):
        import json

        from unicomp.efficiency.runtime import Workload, measure_runtime, runtime_signature
        from unicomp.evaluate.runner import TaskResult
        from unicomp.models.loading import load_model

        ctx.release_models()  # measure with nothing else resident
        workload = Workload(**self.settings()["workload"])
        loaded = load_model(self.model.spec, dtype=self.dtype, device=self.device,
                            trust_remote_code=ctx.pool.trust_remote_code)
        task = f"runtime_{self.dtype}"
        execution = getattr(loaded.model, "unicomp_execution", None) or {}
        if execution.get("execution") == "reference":
            reason = (f"a quantized checkpoint in {self.dtype} runs the float reference path, not a deployment path: "
                      "its speed is measured on the packed kernels in bfloat16")
            return TaskResult(task, "efficiency", {}, {}, 0, [], {"skipped": reason}, self.settings())
        signature = json.dumps(runtime_signature(loaded.model, workload, self.device), sort_keys=True)
        if signature in ctx.runtime_measurements:
            from unicomp.efficiency.runtime import model_notes

            source, result = ctx.runtime_measurements[signature]
            kernels, sparsity, notes = model_notes(loaded.model)  # this model's own facts
            data = {**result, "kernels": kernels, "linear_sparsity": sparsity, "measured_on": source,
                    "notes": notes + [f"same shapes, dtype and kernels as {source}: its measurement"]}
        else:
            steps = len(workload.batch_sizes) * workload.repeats
            with ctx.progress(f"{self.model.label} runtime ({self.dtype})", steps) as advance:
                result = measure_runtime(loaded.model, workload, self.device, progress=advance)
            ctx.runtime_measurements[signature] = (self.model.label, result)
            data = {**result, "measured_on": self.model.label}
        from unicomp.efficiency.footprint import footprint

        data["footprint"] = footprint(loaded.model, workload.prompt_tokens)
        data["architecture"] = json.loads(loaded.model.config.to_json_string())  # for projections to other devices
        del loaded
        scores = {}
        for row in data["batches"]:
            b = row["batch"]
            scores.update({f"prefill_tokens_per_s@b{b}": row["prefill_tokens_per_s"],
                           f"decode_tokens_per_s@b{b}": row["decode_tokens_per_s"],
                           f"ttft_s@b{b}": row["ttft_s"]["median"], f"e2e_latency_s@b{b}": row["e2e_latency_s"]["median"],
                           f"peak_memory_bytes@b{b}": float(row["peak_memory_bytes"])})
        return TaskResult(task, "efficiency", scores, {}, 0, [], data, self.settings())

    def commit(self, store, run_id, key, record, environment, wall_seconds) -> None:
        store.save_unit(run_id, key, kind=self.kind, model=self.model.record, result=record, environment=environment,
                        wall_seconds=wall_seconds, schema=self.schema)

    def from_stored(self, stored: StoredUnit) -> StoredUnit:
        return stored


def _bind_model(ref: ModelRef, done: dict[str, Any]) -> None:
    """A variant's model is the checkpoint its compress unit wrote."""
    if ref.produced_by is None or ref.produced_by not in done:
        return
    produced: CompressRecord = done[ref.produced_by]
    ref.spec, ref.fingerprint, ref.record = produced.checkpoint, produced.variant_fingerprint, produced.variant_record


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start
