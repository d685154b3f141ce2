"""Retained performance and paired statistics of each variant against its base.

Retention = variant score / base score x 100 for higher-is-better metrics and base / variant x
100 for lower-is-better ones (perplexities), so 100% always means "as good as the base". Where
the base scores 0 there is no ratio: the row's retention is None and the category mean counts
only tasks that have one (a category with none has no mean; reports print "n/a"). Which
metric ranks a task and its direction come from the task spec, never from task names here.
Paired statistics use the per-item records of the same items: flips (correct -> wrong, wrong ->
correct) and agreement of predictions. Members of a group (MMLU's subjects) pool into one row.
"""

from __future__ import annotations

from typing import Any

from unicomp.evaluate.tasks import get_task
from unicomp.report.tracks import DEFAULT_MARGIN_PCT, decoupling


def _display_name(task: str) -> str:
    spec = get_task(task)
    return spec.group if spec.group and not spec.report_members else spec.name


def pooled_units(units: dict[str, dict[str, Any]], records: dict[str, list[dict]]) -> dict[str, dict[str, Any]]:
    """task -> {category, scores, n_items, records}, with group members (MMLU) pooled item-weighted."""
    out: dict[str, dict[str, Any]] = {}
    for task, unit in units.items():
        name = _display_name(task)
        entry = out.setdefault(name, {"category": unit["category"], "parts": [], "records": [], "spec": get_task(task)})
        entry["parts"].append(unit)
        entry["records"].extend({**r, "item_id": f"{task}:{r['item_id']}"} for r in records.get(task, []))
    for name, entry in out.items():
        parts = entry.pop("parts")
        if len(parts) == 1:
            entry["scores"], entry["n_items"] = dict(parts[0]["scores"]), parts[0]["n_items"]
        else:
            n = sum(p["n_items"] for p in parts)
            keys = set.intersection(*(set(p["scores"]) for p in parts))
            entry["scores"] = {k: sum(p["scores"][k] * p["n_items"] for p in parts) / n for k in keys}
            entry["n_items"] = n
    return out


def paired(metric: str, base_records: list[dict], var_records: list[dict], lower_is_better=()) -> dict[str, Any]:
    base = {r["item_id"]: r for r in base_records}
    var = {r["item_id"]: r for r in var_records}
    common = [i for i in base if i in var]
    if not common or metric in lower_is_better or metric not in base[common[0]]["metrics"]:
        return {}
    if not all(base[i]["metrics"].get(metric) in (0, 1) and var[i]["metrics"].get(metric) in (0, 1) for i in common):
        return {}  # flips need right/wrong items (TrustLLM's per-item values are labels, not 0/1)
    c2w = sum(1 for i in common if base[i]["metrics"][metric] == 1 and var[i]["metrics"][metric] == 0)
    w2c = sum(1 for i in common if base[i]["metrics"][metric] == 0 and var[i]["metrics"][metric] == 1)
    same = sum(1 for i in common if base[i]["prediction"] == var[i]["prediction"])
    mismatched_prompts = sum(1 for i in common if base[i]["prompt_hash"] != var[i]["prompt_hash"])
    return {"items": len(common), "correct_to_wrong": c2w, "wrong_to_correct": w2c,
            "prediction_agreement": same / len(common), "prompt_mismatches": mismatched_prompts}


def retention_table(base: dict[str, dict[str, Any]], variants: dict[str, dict[str, dict[str, Any]]],
                    distances: dict[str, dict[str, float]] | None = None,
                    margin_pct: float = DEFAULT_MARGIN_PCT) -> dict[str, Any]:
    """`base` and each variant: pooled task -> entry (see `pooled_units`). `margin_pct`: how much
    better performance may be retained than reliability before a variant is flagged."""
    rows, categories = [], {}
    for task, b in base.items():
        spec = b["spec"]
        metric = spec.ranked_by
        note = {"note": spec.note} if spec.note else {}
        base_score = b["scores"].get(metric)  # None: no score (e.g. a Pearson r of constant answers)
        rows.append({"model": "base", "task": task, "category": b["category"], "metric": metric,
                     "score": base_score, "delta": 0.0 if base_score is not None else None,
                     "retained_pct": 100.0 if base_score is not None else None, "n_items": b["n_items"], **note})
        for name, tasks in variants.items():
            v = tasks.get(task)
            if v is None or metric not in v["scores"] or base_score is None:
                if v is not None and base_score is None:  # the variant's number, without a ratio
                    rows.append({"model": name, "task": task, "category": b["category"], "metric": metric,
                                 "score": v["scores"].get(metric), "delta": None, "retained_pct": None,
                                 "n_items": v["n_items"], **note})
                    categories.setdefault(name, {}).setdefault(b["category"], []).append(None)
                continue
            ret = spec.retained(metric, b["scores"][metric], v["scores"][metric])
            row = {"model": name, "task": task, "category": b["category"], "metric": metric,
                   "score": v["scores"][metric], "delta": v["scores"][metric] - b["scores"][metric],
                   "retained_pct": ret, "n_items": v["n_items"], **note,
                   **paired(metric, b["records"], v["records"], spec.lower_is_better)}
            rows.append(row)
            # None where the base scores 0: no ratio; a category of only such tasks has no mean
            categories.setdefault(name, {}).setdefault(b["category"], []).append(ret)
    category_rows = []
    for name, cats in categories.items():
        for cat, values in sorted(cats.items()):
            vals = [v for v in values if v is not None]
            category_rows.append({"model": name, "category": cat, "mean_retained_pct": sum(vals) / len(vals) if vals else None,
                                  "tasks": len(vals), "tasks_without_retention": len(values) - len(vals)})
    return {"rows": rows, "categories": category_rows, "distance": distances or {},
            "decoupling": decoupling(category_rows, margin_pct)}
