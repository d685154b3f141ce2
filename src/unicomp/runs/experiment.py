"""`unicomp run CONFIG`: the unified compression-evaluation run.

Units, in order: evaluate(base, task) for every task; then per variant compress(base, method,
calibration) -> checkpoint, evaluate(variant, task), distance(variant, base). Each unit has a
content key (what determines its result); a unit whose key is in the store is skipped, so a
killed run resumes where it stopped and changing one variant re-runs only what depends on it.
Each unit is committed in one transaction when it finishes: nothing is half-written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unicomp.config import ExperimentConfig, VariantConfig
from unicomp.errors import UnicompError
from unicomp.evaluate.lm import LanguageModel, resolve_max_length
from unicomp.evaluate.runner import TaskResult, evaluate_task, load_task_docs, task_settings
from unicomp.evaluate.tasks import expand_task_names, get_task
from unicomp.outputs import clean_leftovers
from unicomp.report.files import check_run_outputs, write_run_outputs
from unicomp.runs.environment import environment
from unicomp.runs.store import Store, ending, unit_key

Status = Callable[[str], None]


def _no_progress(description: str, total: int):
    return nullcontext(lambda n: None)


@dataclass
class _Model:
    """A model loaded lazily: stored units never need the weights."""

    spec: str
    fingerprint: str | None
    record: dict[str, Any] | None
    dtype: str
    device: str
    _loaded: Any = None

    def load(self):
        if self._loaded is None:
            from unicomp.models.loading import load_model

            self._loaded = load_model(self.spec, dtype=self.dtype, device=self.device)
            self.fingerprint, self.record = self._loaded.fingerprint, self._loaded.record()
        return self._loaded

    def release(self) -> None:
        self._loaded = None


class Experiment:
    def __init__(self, config: ExperimentConfig, *, progress_factory=_no_progress, on_status: Status = lambda s: None):
        self.config = config
        self.progress_factory = progress_factory
        self.status = on_status
        self.output_dir = Path(config.output_dir)
        self.units_done = 0
        self.units_total = 0

    # ------------------------------------------------------------------ orchestration
    def run(self) -> dict[str, Any]:
        cfg = self.config
        task_names = expand_task_names(cfg.evaluation.tasks)
        specs = [get_task(n) for n in task_names]
        self._check_variants()
        check_run_outputs(cfg.name, cfg.output_dir)
        clean_leftovers(self.output_dir / "checkpoints")  # what a killed save left
        store = Store(cfg.store)
        try:
            prepared = []
            for spec in specs:
                docs, resolved = load_task_docs(spec, cfg.limit_for(spec.name), data_dir=cfg.data_dir,
                                                strict_sources=cfg.strict_sources)
                prepared.append((spec, docs, resolved))
            self.fallbacks = {spec.name: resolved.fallbacks for spec, _, resolved in prepared if resolved.fallbacks}
            base = _Model(cfg.model, None, None, cfg.dtype, cfg.device)
            base.load()
            self.max_length = resolve_max_length(base.load().model, base.load().tokenizer)
            self.env = environment()
            run_id = store.start_run("run", cfg.model_dump(), self.env)
            self.units_total = len(specs) * (1 + len(cfg.variants)) + len(cfg.variants) * (2 if cfg.distance.enabled else 1)
            try:
                keys: dict[str, dict[str, str]] = {"base": self._evaluate_all(store, run_id, "base", base, prepared)}
                distances: dict[str, str] = {}
                for variant in cfg.variants:
                    vmodel = self._compress(store, run_id, base, variant)
                    keys[variant.name] = self._evaluate_all(store, run_id, variant.name, vmodel, prepared)
                    if cfg.distance.enabled:
                        distances[variant.name] = self._distance(store, run_id, base, vmodel, variant.name)
                    vmodel.release()
            except BaseException as exc:
                store.finish_run(run_id, *ending(exc))
                raise
            store.finish_run(run_id, "finished")
            return self._report(store, run_id, keys, distances)
        finally:
            store.close()

    def _check_variants(self) -> None:
        """Every variant's method, options and storage are valid: fail before hours of work, not after."""
        from unicomp.compress.checkpoint import check_storage
        from unicomp.compress.registry import make_method

        for variant in self.config.variants:
            try:
                check_storage(variant.storage, make_method(variant.method, variant.options))
            except UnicompError as exc:
                raise UnicompError(f"variant {variant.name!r}: {exc.problem}", exc.fix) from None

    def _tick(self, what: str, reused: bool) -> None:
        self.units_done += 1
        self.status(f"[{self.units_done}/{self.units_total}] {what}{' (reused from the store)' if reused else ''}")

    # ------------------------------------------------------------------ evaluation units
    def _evaluate_all(self, store: Store, run_id: str, name: str, model: _Model, prepared) -> dict[str, str]:
        cfg = self.config.evaluation
        keys, lm = {}, None
        for spec, docs, resolved in prepared:
            limit = self.config.limit_for(spec.name)
            settings = task_settings(spec, limit, cfg.num_fewshot, self.max_length)
            key = unit_key("evaluate", model.fingerprint, spec.name, settings, resolved.revision)
            keys[spec.name] = key
            if store.find_unit(key) is not None:
                store.link_unit(run_id, key)
                self._tick(f"evaluate {name} x {spec.name}", True)
                continue
            if lm is None:
                loaded = model.load()
                lm = LanguageModel(loaded.model, loaded.tokenizer, batch_size=cfg.batch_size, max_length=self.max_length)
            start = time.perf_counter()
            with self.progress_factory(f"{name} x {spec.name}", len(docs)) as advance:
                result = evaluate_task(lm, spec, docs, resolved, limit=limit, num_fewshot=cfg.num_fewshot,
                                       progress=advance)
            store.save_unit(run_id, key, kind="evaluate", model=model.record, result=result, environment=self.env,
                            wall_seconds=time.perf_counter() - start)
            self._tick(f"evaluate {name} x {spec.name}", False)
        return keys

    # ------------------------------------------------------------------ compression units
    def _compress(self, store: Store, run_id: str, base: _Model, variant: VariantConfig) -> _Model:
        from unicomp.compress.checkpoint import planned_storage, read_manifest
        from unicomp.compress.registry import make_method

        cfg = self.config
        cal = cfg.calibration_for(variant)
        storage = planned_storage(variant.storage, make_method(variant.method, variant.options))
        settings = {"method": variant.method, "options": variant.options, "storage": storage,
                    "calibration": cal.model_dump(), "batch_size": cfg.compress_batch_size}
        if cfg.calibration_dtype:
            settings["calibration_dtype"] = cfg.calibration_dtype
        key = unit_key("compress", base.fingerprint, variant.method, settings, "")
        folder = self.output_dir / "checkpoints" / f"{variant.name}-{key[:10]}"
        stored = store.find_unit(key)
        if stored is not None and read_manifest(folder) is not None:
            store.link_unit(run_id, key)
            self._tick(f"compress {variant.name}", True)
            return _Model(str(folder), stored.data["variant_fingerprint"], stored.data["variant_record"], cfg.dtype, cfg.device)
        report, manifest, seconds = self._run_compression(base, variant, cal, folder)
        vmodel = _Model(str(folder), None, None, cfg.dtype, cfg.device)
        vmodel.load()  # the fingerprint of what evaluation will load, after the save/load round trip
        summary = dict(report.summary)
        result = TaskResult(variant.name, "compression", {k: v for k, v in summary.items() if isinstance(v, (int, float))},
                            {}, 0, [], {"checkpoint": str(folder), "variant_fingerprint": vmodel.fingerprint,
                                        "variant_record": vmodel.record, "report": report.to_dict(),
                                        "sizes": manifest["sizes"]}, settings)
        store.save_unit(run_id, key, kind="compress", model=base.record, result=result, environment=self.env,
                        wall_seconds=seconds)
        self._tick(f"compress {variant.name}", False)
        return vmodel

    def _run_compression(self, base: _Model, variant: VariantConfig, cal, folder: Path):
        from unicomp.compress.apply import compress_model
        from unicomp.compress.checkpoint import check_storage, save_compressed
        from unicomp.compress.registry import make_method
        from unicomp.models.anatomy import decoder_layers
        from unicomp.models.loading import load_model

        cfg = self.config
        method = make_method(variant.method, variant.options)
        check_storage(variant.storage, method)
        fresh = load_model(cfg.model, dtype=cfg.dtype, device=cfg.device)  # methods change weights in place
        calibration = None
        if method.needs_calibration:
            from unicomp.data.calibration import CalibrationConfig, build_calibration
            from unicomp.evaluate.tasks.language_modelling import EVALUATION_TEXT

            options = {k: v for k, v in cal.model_dump().items() if v is not None}
            calibration = build_calibration(CalibrationConfig(**options), fresh.tokenizer, forbidden=EVALUATION_TEXT,
                                            data_dir=cfg.data_dir)
        start = time.perf_counter()
        with self.progress_factory(f"compress {variant.name} (layers)", len(decoder_layers(fresh.model))) as advance:
            report = compress_model(fresh.model, method, calibration, batch_size=cfg.compress_batch_size,
                                    progress=lambda stage, done, total: advance(1), compute_dtype=cfg.calibration_dtype)
        manifest = save_compressed(fresh.model, fresh.tokenizer, folder, report, base=fresh.record(),
                                   storage=variant.storage, overwrite=True)
        return report, manifest, time.perf_counter() - start

    # ------------------------------------------------------------------ distance units
    def _distance(self, store: Store, run_id: str, base: _Model, vmodel: _Model, name: str) -> str:
        from unicomp.data.resolver import load_rows
        from unicomp.evaluate.distance import check_same_tokenizer, distribution_distance, token_windows

        cfg = self.config.distance
        resolved = load_rows("Salesforce/wikitext", "wikitext-2-raw-v1", "test", data_dir=self.config.data_dir)
        settings = {"windows": cfg.windows, "seq_len": cfg.seq_len, "base": base.fingerprint}
        key = unit_key("distance", vmodel.fingerprint, "wikitext_kl", settings, resolved.revision)
        if store.find_unit(key) is not None:
            store.link_unit(run_id, key)
            self._tick(f"distance {name} vs base", True)
            return key
        b, v = base.load(), vmodel.load()
        check_same_tokenizer(b.tokenizer, v.tokenizer)
        text = "\n\n".join(r["text"] for r in resolved.rows)
        windows = token_windows(b.tokenizer, text, cfg.seq_len, cfg.windows)
        start = time.perf_counter()
        with self.progress_factory(f"{name} distance to base", len(windows)) as advance:
            dist = distribution_distance(b.model, v.model, windows, progress=advance)
        from unicomp.evaluate.runner import ItemRecord

        records = [ItemRecord(str(i), "", None, None, None, None, None, {"kl_mean": kl}) for i, kl in enumerate(dist.per_window_kl)]
        result = TaskResult("wikitext_kl", "distance", dist.scores(), {}, len(records), records, resolved.record(), settings)
        store.save_unit(run_id, key, kind="distance", model=vmodel.record, result=result, environment=self.env,
                        wall_seconds=time.perf_counter() - start)
        self._tick(f"distance {name} vs base", False)
        return key

    # ------------------------------------------------------------------ report
    def _report(self, store: Store, run_id: str, keys: dict[str, dict[str, str]], distances: dict[str, str]) -> dict:
        from unicomp.report.retention import pooled_units, retention_table

        def pooled(task_keys: dict[str, str]):
            units, records = {}, {}
            for task, key in task_keys.items():
                u = store.find_unit(key)
                units[task] = {"category": u.category, "scores": u.scores, "n_items": u.n_items}
                records[task] = store.records(key)
            return pooled_units(units, records)

        base = pooled(keys["base"])
        variants = {name: pooled(k) for name, k in keys.items() if name != "base"}
        dist = {name: store.find_unit(key).scores for name, key in distances.items()}
        table = retention_table(base, variants, dist)
        table["run_id"] = run_id
        table["store"] = str(store.path)
        table["data_fallbacks"] = self.fallbacks
        table["export"] = store.export_run(run_id)
        return table


def run_experiment(config: ExperimentConfig, **kwargs) -> dict[str, Any]:
    """Run the experiment and write its report JSON and retention CSV into output_dir."""
    if not config.variants:
        raise UnicompError("the config has no variants to compare with the base", "add a `variants:` list")
    result = Experiment(config, **kwargs).run()
    result["outputs"] = {k: str(v) for k, v in write_run_outputs(config.name, config.output_dir, result).items()}
    return result
