"""Views of a run report that line variants up against each other.

- `calibration_pairs`: variants made by the same method with the same options but different
  calibration data (the paper's calibration study, §5.4), each with its category retentions.
- `modeled_rows`: every model of the run projected onto datasheet devices by the roofline (in
  its format: report/best.format_of), labelled "modeled".
"""

from __future__ import annotations

import json
from typing import Any


def calibration_pairs(report: dict[str, Any]) -> list[dict[str, Any]]:
    config = report.get("export", {}).get("config", {})
    default = config.get("calibration") or {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for v in config.get("variants") or []:
        if v.get("method"):
            key = json.dumps([v["method"], v.get("options") or {}], sort_keys=True)
            groups.setdefault(key, []).append(v)
    cats = {}
    for c in report.get("categories", []):
        cats.setdefault(c["model"], {})[c["category"]] = c["mean_retained_pct"]
    rows = []
    for members in groups.values():
        sources = {json.dumps(m.get("calibration") or default, sort_keys=True) for m in members}
        if len(members) < 2 or len(sources) < 2:
            continue
        for m in members:
            cal = m.get("calibration") or default
            rows.append({"method": m["method"], "options": m.get("options") or {}, "variant": m["name"],
                         "calibration": cal.get("source"), "n_samples": cal.get("n_samples"),
                         "retention": cats.get(m["name"], {})})
    return rows


def modeled_rows(report: dict[str, Any], devices: list[str], *, batch: int = 1, prompt: int = 1024,
                 new_tokens: int = 16) -> list[dict[str, Any]]:
    from transformers import AutoConfig

    from unicomp.efficiency.profiles import load_profile
    from unicomp.efficiency.roofline import project
    from unicomp.report.best import format_of

    arch = next((u["data"]["architecture"] for u in report.get("export", {}).get("units", [])
                 if (u.get("data") or {}).get("architecture")), None)
    if arch is None or not devices:
        return []
    cfg = AutoConfig.for_model(**arch)
    variants = {v["name"]: v for v in report.get("export", {}).get("config", {}).get("variants") or []}
    models = ["base", *[m for m in dict.fromkeys(r["model"] for r in report.get("rows", [])) if m != "base"]]
    rows = []
    for device in devices:
        profile = load_profile(device)
        for model in models:
            fmt = format_of(variants.get(model))
            p = project(cfg, fmt, profile, batch=batch, prompt=prompt, new_tokens=new_tokens)
            rows.append({"model": model, **{k: p[k] for k in ("device", "format", "kernel", "label",
                                                              "prefill_tokens_per_s", "decode_tokens_per_s",
                                                              "peak_memory_bytes", "fits")}})
    return rows
