"""A plan is the list of units a config or a command line asks for, in dependency order.

`plan_experiment` (a run config), `plan_evaluation` (`unicomp eval`) and `plan_compression`
(`unicomp compress`) build one; the executor runs it. `describe` says, without running anything,
which units exist, their keys, which are stored and what each waits for (`unicomp plan`).
Building a plan resolves the datasets (cheap, and the dataset revision is part of every key)
and loads the base model once to fingerprint it; everything else waits for the executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unicomp.errors import NotFoundError
from unicomp.runs.models import ModelPool, ModelRef
from unicomp.runs.store import Store
from unicomp.runs.units import CompressUnit, DistanceUnit, EvaluateUnit, JudgeUnit, ProfileUnit, Unit


@dataclass
class Plan:
    units: list[Unit]
    models: dict[str, ModelRef]  # label -> model ("base", variant names)
    tasks: list[Any] = field(default_factory=list)  # (spec, docs, resolved) per task
    keys: dict[str, str | None] = field(default_factory=dict)  # filled by the executor

    def unit(self, name: str) -> Unit:
        return next(u for u in self.units if u.name == name)


def prepare_tasks(task_names: list[str], limit_for, *, data_dir, sources=None, strict_sources: bool = False,
                  on_status=lambda s: None, max_gen_toks_for=lambda name: None, missing_ok: bool = False) -> list[tuple]:
    """(spec, docs, resolved) per task: datasets resolved and validated before any model work.

    `max_gen_toks_for(task)` overrides a generation task's answer budget (a CPU-sized run of a
    protocol that allows 1280 tokens); the override is part of the task's settings and unit key.
    `missing_ok` (planning only): a dataset no source serves gives (spec, None, None) instead of
    an error, so a paper-scale plan can be sketched on a machine without the hub."""
    from dataclasses import replace

    from unicomp.evaluate.runner import load_task_docs
    from unicomp.evaluate.tasks import expand_task_names, get_task

    prepared = []
    for name in expand_task_names(task_names):
        spec = get_task(name)
        budget = max_gen_toks_for(name)
        if budget is not None and spec.output_type == "generate_until":
            spec = replace(spec, max_gen_toks=budget)
        try:
            docs, resolved = load_task_docs(spec, limit_for(name), data_dir=data_dir, sources=sources,
                                            strict_sources=strict_sources)
        except NotFoundError as exc:
            if not missing_ok:
                raise
            on_status(f"{spec.name}: not on this machine ({exc.problem})")
            prepared.append((spec, None, None))
            continue
        split_note = "" if resolved.split == resolved.requested_split else f" (fallback from {resolved.requested_split})"
        on_status(f"{spec.name}: {resolved.dataset_id} {resolved.split}{split_note} from {resolved.source}")
        prepared.append((spec, docs, resolved))
    return prepared


def _evaluate_units(model: ModelRef, prepared, *, limit_for, num_fewshot, batch_size, max_length, device,
                    add_bos_token=None, needs: tuple[str, ...] = (), endpoint=None) -> list[EvaluateUnit]:
    return [EvaluateUnit(name=f"evaluate {model.label} x {spec.name}", model=model, spec=spec, docs=docs, resolved=resolved,
                         limit=limit_for(spec.name), num_fewshot=num_fewshot, batch_size=batch_size,
                         max_length=max_length, add_bos_token=add_bos_token, needs=needs, device=device,
                         endpoint=endpoint)
            for spec, docs, resolved in prepared]


def _judge_units(evaluations: list[EvaluateUnit], judge: dict[str, Any] | None,
                 classifier: dict[str, Any] | None = None) -> list[JudgeUnit]:
    """A judge unit after each evaluation of a TrustLLM subtask: the LLM judge where TrustLLM asks
    GPT-4, the refusal classifier where it reports a refuse-to-answer rate (never both: no subtask
    is in both sets)."""
    from unicomp.reliability.judge_step import has_classifier_judge, has_llm_judge

    units = []
    for u in evaluations:
        if judge is not None and has_llm_judge(u.spec.name):
            units.append(JudgeUnit(name=f"judge {u.model.label} x {u.spec.name}", evaluate=u, judge=judge,
                                   needs=(u.name,)))
        elif classifier is not None and has_classifier_judge(u.spec.name):
            units.append(JudgeUnit(name=f"classify {u.model.label} x {u.spec.name}", evaluate=u,
                                   judge={**classifier, "type": "classifier"}, needs=(u.name,)))
    return units


def _profile_units(cfg, ref: ModelRef, needs: tuple[str, ...] = ()) -> list[ProfileUnit]:
    """Runtime of a model in each configured dtype (none when the config has no `efficiency:`)."""
    if cfg.efficiency is None:
        return []
    workload = cfg.efficiency.workload().model_dump()
    return [ProfileUnit(name=f"profile {ref.label} ({dtype})", model=ref, dtype=dtype, workload=workload,
                        device=cfg.device, needs=needs) for dtype in cfg.efficiency.dtypes]


def _endpoint(cfg, label: str):
    return cfg.backend.endpoint_for(label) if cfg.backend is not None else None


def plan_experiment(cfg, pool: ModelPool, *, on_status=lambda s: None, sketch: bool = False) -> Plan:
    """Units of a run config: base evaluations; per variant compress (or a prebuilt model),
    evaluations on the same items, and the distance to the base.

    `sketch` (`unicomp plan`): models whose weights are not on this machine are planned from
    their config and left unidentified (no keys), and datasets no source serves are planned
    without items, so a paper-scale config can be planned offline without any download."""
    from unicomp.evaluate.lm import resolve_max_length
    from unicomp.models.shape_source import offline_config, on_this_machine

    prepared = prepare_tasks(cfg.evaluation.tasks, cfg.limit_for, data_dir=cfg.data_dir,
                             strict_sources=cfg.strict_sources, on_status=on_status, max_gen_toks_for=cfg.max_gen_toks_for,
                             missing_ok=sketch)
    if cfg.executor != "local" and Path(cfg.model).expanduser().exists():  # workers run in other folders
        cfg = cfg.model_copy(update={"model": str(Path(cfg.model).expanduser().absolute())})

    def identify(ref: ModelRef) -> ModelRef:
        if sketch and not on_this_machine(ref.spec):
            on_status(f"{ref.label}: {ref.spec} is not on this machine; planned from its config, keys unknown")
            return ref
        return pool.identify(ref)

    pool.pin(cfg.model)
    base = identify(ModelRef("base", spec=cfg.model))
    if base.fingerprint is None and sketch:
        config = offline_config(cfg.model)
        max_length = resolve_max_length(_ConfigOnly(config), None) if config is not None else None
    else:
        loaded = pool.get(cfg.model)
        max_length = resolve_max_length(loaded.model, loaded.tokenizer)
    ev = cfg.evaluation
    common = dict(limit_for=cfg.limit_for, num_fewshot=ev.num_fewshot, batch_size=ev.batch_size, max_length=max_length,
                  device=cfg.device)
    judge = cfg.judge.model_dump() if cfg.judge is not None else None
    classifier = cfg.refusal_classifier.model_dump() if cfg.refusal_classifier is not None else None
    base_evaluations = _evaluate_units(base, prepared, endpoint=_endpoint(cfg, "base"), **common)
    units: list[Unit] = [*base_evaluations, *_judge_units(base_evaluations, judge, classifier),
                         *_profile_units(cfg, base)]
    models = {"base": base}
    wikitext = None
    if cfg.distance.enabled:
        from unicomp.data.resolver import load_rows

        try:
            wikitext = load_rows("Salesforce/wikitext", "wikitext-2-raw-v1", "test", data_dir=cfg.data_dir,
                                 strict=cfg.strict_sources)
        except NotFoundError:
            if not sketch:
                raise
    for variant in cfg.variants:
        needs: tuple[str, ...] = ()
        if variant.model is not None:  # a prebuilt checkpoint: scored as it is
            ref = identify(ModelRef(variant.name, spec=variant.model))
        else:
            compress = CompressUnit(
                name=f"compress {variant.name}", variant=variant.name, method=variant.method, options=variant.options,
                storage=variant.storage, base=base, calibration=cfg.calibration_for(variant),
                batch_size=cfg.compress_batch_size, calibration_dtype=cfg.calibration_dtype,
                checkpoints=Path(cfg.output_dir).expanduser().absolute() / "checkpoints", device=cfg.device)
            units.append(compress)
            needs = (compress.name,)
            ref = ModelRef(variant.name, produced_by=compress.name)
        models[variant.name] = ref
        evaluations = _evaluate_units(ref, prepared, needs=needs, endpoint=_endpoint(cfg, variant.name), **common)
        units.extend([*evaluations, *_judge_units(evaluations, judge, classifier), *_profile_units(cfg, ref, needs)])
        if wikitext is not None:
            units.append(DistanceUnit(name=f"distance {variant.name} vs base", base=base, variant=ref, resolved=wikitext,
                                      windows=cfg.distance.windows, seq_len=cfg.distance.seq_len, needs=needs))
    return Plan(units, models, prepared)


class _ConfigOnly:
    """Stands in for a model where only its config is needed (resolve_max_length)."""

    def __init__(self, config) -> None:
        self.config = config


def plan_evaluation(req, pool: ModelPool, *, on_status=lambda s: None) -> Plan:
    """Units of `unicomp eval`: the model on each task."""
    prepared = prepare_tasks(req.tasks, lambda name: req.limit, data_dir=req.data_dir, sources=req.data_sources,
                             strict_sources=req.strict_sources, on_status=on_status,
                             max_gen_toks_for=lambda name: req.max_gen_toks)
    on_status(f"loading model {req.model}")
    model = pool.identify(ModelRef(req.model, spec=req.model))
    loaded = pool.get(req.model)
    on_status(f"model from {loaded.source} ({loaded.location})")
    from unicomp.evaluate.lm import resolve_max_length

    units = _evaluate_units(model, prepared, limit_for=lambda name: req.limit, num_fewshot=req.num_fewshot,
                            batch_size=req.batch_size, max_length=resolve_max_length(loaded.model, loaded.tokenizer),
                            device=req.device, endpoint=req.endpoint)
    return Plan([*units, *_judge_units(units, req.judge, req.refusal_classifier)], {"model": model}, prepared)


def plan_compression(req, calibration) -> Plan:
    """The single unit of `unicomp compress`: a checkpoint in --out, not stored as a unit."""
    base = ModelRef("base", spec=req.model)
    unit = CompressUnit(name=f"compress {req.method}", variant=req.method, method=req.method, options=req.options,
                        storage=req.storage, base=base,
                        calibration=calibration,
                        batch_size=req.batch_size, calibration_dtype=req.compute_dtype, out=Path(req.out),
                        overwrite=req.overwrite, identify_output=False, device=req.device)
    return Plan([unit], {"base": base})


def describe(plan: Plan, store: Store | None) -> list[dict[str, Any]]:
    """Every unit with its key (None while it depends on an unfinished unit), whether it is stored,
    and the units it waits for. Nothing runs: dependencies are bound from stored records only."""
    done: dict[str, Any] = {}
    rows = []
    for unit in plan.units:
        unit.bind(done)
        key = unit.key()
        stored = store.find_unit(key) if store is not None and key is not None else None
        is_stored = stored is not None and unit.reusable(stored)
        if is_stored:
            done[unit.name] = unit.from_stored(stored)
        rows.append({"unit": unit.name, "kind": unit.kind, "key": key, "stored": is_stored,
                     "waits_for": [n for n in unit.needs if n not in done]})
    return rows
