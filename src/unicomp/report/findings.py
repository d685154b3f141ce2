"""The paper's five findings, measured on a stored run, each with paired bootstrap intervals.

`collect` reads a finished `unicomp run` back from its store (the plan rebuilt from the run's own
config, every unit found by its key); `statistics` turns resampled task scores into the numbers
each finding rests on; `findings` states every finding, its numbers and whether it reproduced.
A verdict is "reproduced" only when the interval of the deciding difference excludes zero in the
paper's direction, "contradicted" when it excludes zero the other way, "not measurable" when the
base scores zero (no retention) and "inconclusive" otherwise.
"""

from __future__ import annotations

from typing import Any

from unicomp.report.bootstrap import Scores, TaskItems, align
from unicomp.report.tracks import PERFORMANCE, RELIABILITY

OTHER_PERFORMANCE = ("reasoning", "instruction_following", "multilingual")


def collect(config: Any, store: Any) -> tuple[dict[str, TaskItems], dict[str, str]]:
    """(task -> per-item values of every model, model label -> family) of a finished run."""
    from unicomp.compress.registry import get_method
    from unicomp.runs.experiment import build_plan
    from unicomp.runs.plan import describe
    from unicomp.runs.units import EvaluateUnit, JudgeUnit

    plan = build_plan(config)
    rows = describe(plan, store)
    keys = {unit.name: row["key"] for unit, row in zip(plan.units, rows)}
    judged = {u.evaluate.name: keys[u.name] for u in plan.units if isinstance(u, JudgeUnit)}
    records: dict[str, dict[str, list[dict]]] = {}
    specs: dict[str, tuple[Any, str]] = {}
    for unit in plan.units:
        if isinstance(unit, EvaluateUnit):
            key = judged.get(unit.name, keys[unit.name])
            if key is None or store.find_unit(key) is None:
                raise LookupError(f"{unit.name} is not in the store: finish the run first")
            spec = unit.spec
            # a group the report pools (MMLU's subjects) is one task here too: its items, item-weighted
            name = spec.group if spec.group and spec.pool_group and not spec.report_members else spec.name
            mine = [{**r, "item_id": f"{spec.name}:{r['item_id']}"} for r in store.records(key)]
            records.setdefault(name, {}).setdefault(unit.model.label, []).extend(mine)
            specs.setdefault(name, (spec, store.find_unit(key).category))
    tasks = {}
    for name, by_model in records.items():
        aligned = align(specs[name][0], specs[name][1], by_model)
        if aligned is not None:
            tasks[name] = aligned
    families = {"base": "base"}
    for v in config.variants:
        families[v.name] = get_method(v.method).family if v.method else "prebuilt"
    return tasks, families


def statistics(tasks: dict[str, TaskItems], models: list[str], pairs: list[tuple[str, str]] = ()) -> Any:
    """A function of resampled scores giving every number the findings need (None: undefined);
    `pairs` (a, b): differences a - b of their performance and category retentions."""
    from unicomp.reliability.trustllm.subtasks import DIMENSIONS, SUBTASKS, dimension_score

    def retention(scores: Scores, model: str, task: str) -> float | None:
        spec = tasks[task].spec
        metric = spec.ranked_by
        base, mine = scores["base"][task].get(metric), scores[model][task].get(metric)
        if base is None or mine is None:
            return None
        return spec.retained(metric, base, mine)

    # Which parts each mean has is fixed by the point estimate (the first call): a resample where one
    # of them is undefined (its base scored 0 there) gives no value, rather than a mean of fewer parts.
    parts: dict[str, frozenset[str]] = {}

    def mean(key: str, values: dict[str, float | None]) -> float | None:
        defined = frozenset(k for k, v in values.items() if v is not None)
        if key not in parts:
            parts[key] = defined
        if not parts[key] or not parts[key] <= defined:
            return None
        return sum(values[k] for k in parts[key]) / len(parts[key])

    def stat(scores: Scores) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        base_dims = {d: dimension_score(d, {t: s for t, s in scores["base"].items() if t in SUBTASKS}) for d in DIMENSIONS}
        for model in models:
            cats: dict[str, dict[str, float | None]] = {}
            for task, t in tasks.items():
                if task not in SUBTASKS:
                    value = retention(scores, model, task)
                    cats.setdefault(t.category, {})[task] = value
                    out[f"{model}|task|{task}"] = value
                    out[f"{model}|score|{task}"] = scores[model][task].get(t.spec.ranked_by)
            for cat, values in cats.items():
                out[f"{model}|cat|{cat}"] = mean(f"{model}|cat|{cat}", values)
            mine = {t: s for t, s in scores[model].items() if t in SUBTASKS}
            for dim in DIMENSIONS:
                value, ref = dimension_score(dim, mine), base_dims[dim]
                out[f"{model}|dim|{dim}"] = 100.0 * value / ref if value is not None and ref else None
            perf = mean(f"{model}|perf", {c: out.get(f"{model}|cat|{c}") for c in PERFORMANCE})
            rel = mean(f"{model}|rel", {d: out.get(f"{model}|dim|{d}") for d in RELIABILITY})
            out[f"{model}|perf"], out[f"{model}|rel"] = perf, rel
            out[f"{model}|gap"] = perf - rel if perf is not None and rel is not None else None
            knowledge = out.get(f"{model}|cat|knowledge")
            for other in OTHER_PERFORMANCE:
                value = out.get(f"{model}|cat|{other}")
                out[f"{model}|kb|{other}"] = knowledge - value if knowledge is not None and value is not None else None
        for a, b in pairs:
            for what in ("perf", *(f"cat|{c}" for c in PERFORMANCE)):
                x, y = out.get(f"{a}|{what}"), out.get(f"{b}|{what}")
                out[f"diff|{a}|{b}|{what}"] = x - y if x is not None and y is not None else None
        return out

    return stat


def verdict(interval: dict[str, Any] | None, direction: int = 1) -> str:
    """`direction` 1: the paper says the difference is positive; -1: negative."""
    if interval is None or interval.get("value") is None:
        return "not measurable"
    low, high = interval.get("low"), interval.get("high")
    if low is None or high is None:
        return "inconclusive"
    low, high = sorted((direction * low, direction * high))
    if low > 0:
        return "reproduced"
    if high < 0:
        return "contradicted"
    return "inconclusive"
