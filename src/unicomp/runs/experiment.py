"""`unicomp run CONFIG`: the unified compression-evaluation run, as a plan of units.

The plan (runs/plan.py): evaluate(base, task) for every task; per variant compress(base, method,
calibration) -> checkpoint (or a prebuilt checkpoint), evaluate(variant, task) on the same items,
distance(variant, base). The executor skips units whose key is in the store, so a killed run
resumes where it stopped and changing one variant re-runs only what depends on it. The report
pools the stored units into retention, paired statistics and distances.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from unicomp.config import ExperimentConfig
from unicomp.errors import UnicompError
from unicomp.outputs import clean_leftovers
from unicomp.report.files import check_run_outputs, write_run_outputs
from unicomp.runs.environment import environment
from unicomp.runs.models import ModelPool
from unicomp.runs.plan import Plan, plan_experiment
from unicomp.runs.store import Store, ending
from unicomp.runs.units import CompressUnit, DistanceUnit, EvaluateUnit, JudgeUnit, ProfileUnit, UnitContext

Status = Callable[[str], None]


def _no_progress(description: str, total: int):
    return nullcontext(lambda n: None)


def check_experiment(cfg: ExperimentConfig) -> None:
    """Everything cheap that can be wrong, before hours of work: variants, outputs, executor."""
    from unicomp.compress.checkpoint import check_storage
    from unicomp.compress.registry import make_method

    if not cfg.variants:
        raise UnicompError("the config has no variants to compare with the base", "add a `variants:` list")
    for variant in cfg.variants:
        if variant.method is None:
            continue
        try:
            check_storage(variant.storage, make_method(variant.method, variant.options))
        except UnicompError as exc:
            raise UnicompError(f"variant {variant.name!r}: {exc.problem}", exc.fix) from None
    check_run_outputs(cfg.name, cfg.output_dir)


def executor_for(cfg: ExperimentConfig):
    if cfg.executor == "ray":
        from unicomp.runs.ray_executor import RayExecutor

        return RayExecutor(cfg.ray_address)
    from unicomp.runs.executor import LocalExecutor

    return LocalExecutor()


def build_plan(cfg: ExperimentConfig, pool: ModelPool | None = None, on_status: Status = lambda s: None,
               sketch: bool = False) -> Plan:
    check_experiment(cfg)
    return plan_experiment(cfg, pool or ModelPool(cfg.dtype, cfg.device), on_status=on_status, sketch=sketch)


def run_experiment(cfg: ExperimentConfig, *, progress_factory=_no_progress, on_status: Status = lambda s: None) -> dict:
    """Run the experiment and write its report JSON and retention CSV into output_dir."""
    check_experiment(cfg)
    executor = executor_for(cfg)  # an unusable executor fails here, before any work
    clean_leftovers(Path(cfg.output_dir).expanduser() / "checkpoints")  # what a killed save left
    store = Store(cfg.store)
    try:
        pool = ModelPool(cfg.dtype, cfg.device)
        plan = plan_experiment(cfg, pool, on_status=on_status)
        env = environment(cfg.device)
        run_id = store.start_run("run", cfg.model_dump(), env)
        data_dir = str(Path(cfg.data_dir).expanduser().absolute()) if cfg.data_dir else None  # as workers see it
        ctx = UnitContext(pool, progress_factory, on_status, data_dir)
        try:
            done = executor.execute(plan, ctx, store=store, run_id=run_id, environment=env)
        except BaseException as exc:
            store.finish_run(run_id, *ending(exc))
            raise
        store.finish_run(run_id, "finished")
        devices = cfg.efficiency.devices if cfg.efficiency is not None else []
        result = report(store, run_id, plan, done, cfg.decoupling_margin_pct, devices)
    finally:
        store.close()
    result["outputs"] = {k: str(v) for k, v in write_run_outputs(cfg.name, cfg.output_dir, result).items()}
    return result


def report(store: Store, run_id: str, plan: Plan, done: dict[str, Any], margin_pct: float = 5.0,
           devices: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """Retention, paired statistics and distances from the stored units of a finished plan."""
    from unicomp.report.reliability import dimension_rows
    from unicomp.report.retention import pooled_units, retention_table

    # an evaluation judged by an LLM judge is reported with the judge's labels (the row says so)
    judged = {u.evaluate.name: u for u in plan.units if isinstance(u, JudgeUnit)}

    def scored_key(unit: EvaluateUnit) -> str:
        return plan.keys[judged[unit.name].name] if unit.name in judged else plan.keys[unit.name]

    def pooled(label: str):
        units, records = {}, {}
        for unit in plan.units:
            if isinstance(unit, EvaluateUnit) and unit.model.label == label:
                key = scored_key(unit)
                u = store.find_unit(key)
                units[unit.spec.name] = {"category": u.category, "scores": u.scores, "n_items": u.n_items}
                records[unit.spec.name] = store.records(key)
        return pooled_units(units, records)

    base = pooled("base")
    variants = {label: pooled(label) for label in plan.models if label != "base"}
    distances, skipped = {}, {}
    for unit in plan.units:
        if isinstance(unit, DistanceUnit):
            stored = store.find_unit(plan.keys[unit.name])
            if stored.data.get("skipped"):
                skipped[unit.variant.label] = stored.data["skipped"]
            else:
                distances[unit.variant.label] = stored.scores
    table = retention_table(base, variants, distances, margin_pct)
    table["judges"] = {u.evaluate.spec.name: u.config().name for u in judged.values()}
    table["dimensions"] = dimension_rows(base, variants)
    table["distance_skipped"] = skipped
    from unicomp.report.efficiency import runtime_rows

    profiles: dict[str, dict[str, dict]] = {}
    for unit in plan.units:
        if isinstance(unit, ProfileUnit):
            profiles.setdefault(unit.model.label, {})[unit.dtype] = store.find_unit(plan.keys[unit.name]).data
    table["runtime"] = runtime_rows(profiles)
    table["footprint"] = {label: min((d["footprint"] for d in by_dtype.values() if d.get("footprint")),
                                     key=lambda f: f["decoder_linear_bytes"], default=None)
                          for label, by_dtype in profiles.items()}
    table["examples"] = []  # the first output of each generative evaluation, for the HTML report
    for unit in plan.units:
        if isinstance(unit, EvaluateUnit) and unit.spec.output_type == "generate_until":
            first = next((r for r in store.records(scored_key(unit)) if r.get("generation")), None)
            if first is not None:
                table["examples"].append({"task": unit.spec.name, "model": unit.model.label,
                                          "output": first["generation"][:400]})
    table["compression"] = {}
    from unicomp.efficiency.compute_cost import modeled_device_hours
    from unicomp.efficiency.profiles import load_profile

    targets = [load_profile(d) for d in devices]
    for unit in plan.units:
        if isinstance(unit, CompressUnit):
            stored = store.find_unit(plan.keys[unit.name])
            env = store.unit_environment(plan.keys[unit.name])
            source = env.get("fp32_matmul_tflops")  # absent in units stored before it was recorded
            table["compression"][unit.variant] = {
                "wall_seconds": stored.wall_seconds, "method": unit.method,
                "device_hours": stored.wall_seconds / 3600, "device": env.get("device_name") or env.get("machine"),
                "device_fp32_matmul_tflops": source, "peak_memory_bytes": stored.data.get("peak_memory_bytes"),
                "modeled_device_hours": {t.name: modeled_device_hours(stored.wall_seconds, source, t) for t in targets}}
    table["run_id"] = run_id
    table["store"] = str(store.path)
    table["data_fallbacks"] = {spec.name: resolved.fallbacks for spec, _, resolved in plan.tasks if resolved.fallbacks}
    table["prebuilt"] = [label for label, ref in plan.models.items() if label != "base" and ref.produced_by is None]
    table["compressed"] = [u.variant for u in plan.units if isinstance(u, CompressUnit)]
    table["export"] = store.export_run(run_id)
    from unicomp.report.comparisons import calibration_pairs, modeled_rows

    table["calibration_pairs"] = calibration_pairs(table)
    table["modeled"] = modeled_rows(table, list(devices))
    return table
