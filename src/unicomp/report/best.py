"""Which compression to deploy: the variants of a run that meet a memory budget and retention
floors, ranked by decode speed on a device, modeled by the roofline for a datasheet device or as
measured for the machine the run ran on (`--device measured`). Modeled and measured numbers are
never mixed: the table says which it shows.

A variant's format comes from its method and options: rtn / gptq / awq at 4 bits = int4
weight-only (w4a16), at 8 bits = w8a16; smoothquant = int8 W8A8; a 2:4 pattern = sparse_2_4;
other pruning = dense (no kernel skips unstructured zeros). The base runs dense bf16.
"""

from __future__ import annotations

from typing import Any

from unicomp.efficiency.roofline import Format
from unicomp.errors import UnicompError
from unicomp.report.scores import METRICS13, scores13


def format_of(variant: dict[str, Any] | None) -> Format:
    if variant is None:
        return Format("dense")
    method, options = variant.get("method"), variant.get("options") or {}
    if method in ("rtn", "gptq", "awq"):
        bits = options.get("bits", 4)
        group = options.get("group_size", 128)
        return Format("w4a16" if bits <= 4 else "w8a16", group_size=group,
                      zero_point=not options.get("symmetric", True))
    if method == "smoothquant":
        return Format("w8a8_int8")
    if options.get("pattern") == "2:4":
        return Format("sparse_2_4")
    return Format("dense")


def parse_floors(items: list[str]) -> dict[str, float]:
    """`knowledge=90` pairs; names must be one of the 13 metrics."""
    floors = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in METRICS13:
            raise UnicompError(f"--min-retention {item!r} is not METRIC=PERCENT with a known metric",
                               f"use one of: {', '.join(METRICS13)}, e.g. --min-retention knowledge=90")
        try:
            floors[name] = float(value)
        except ValueError:
            raise UnicompError(f"--min-retention {item!r}: {value!r} is not a number", "e.g. knowledge=90") from None
    return floors


def candidates(report: dict[str, Any], device: str, *, max_memory_gb: float | None, floors: dict[str, float],
               batch: int = 1, prompt: int = 1024, new_tokens: int = 16) -> dict[str, Any]:
    """Every model of the run with its speed and memory on `device`, the constraints it fails,
    ranked (those that pass first, fastest first)."""
    from unicomp.report.comparisons import modeled_rows

    scores = {r["model"]: r for r in scores13(report)}
    rows = []
    if device == "measured":
        runtime = [r for r in report.get("runtime") or [] if "skipped" not in r and r["batch"] == batch]
        if not runtime:
            raise UnicompError(f"the run measured no runtime at batch {batch}",
                               "add an `efficiency:` block to the config and re-run, or pick a datasheet --device")
        for model in ["base", *scores]:
            mine = [r for r in runtime if r["model"] == model]
            if not mine:
                continue
            fastest = max(mine, key=lambda r: r["decode_tokens_per_s"])
            rows.append({"model": model, "dtype": fastest["dtype"], "decode_tokens_per_s": fastest["decode_tokens_per_s"],
                         "memory_gb": fastest["peak_memory_bytes"] / 1e9, "kind": "measured"})
    else:
        modeled = modeled_rows(report, [device], batch=batch, prompt=prompt, new_tokens=new_tokens)
        if not modeled:
            raise UnicompError("the run recorded no model architecture to project with",
                               "add an `efficiency:` block to the config and re-run (finished units are reused)")
        rows = [{"model": m["model"], "format": m["format"], "kernel": m["kernel"],
                 "decode_tokens_per_s": m["decode_tokens_per_s"], "memory_gb": m["peak_memory_bytes"] / 1e9,
                 "kind": "modeled"} for m in modeled]
    for row in rows:
        fails = []
        if max_memory_gb is not None and row["memory_gb"] > max_memory_gb:
            fails.append(f"memory {row['memory_gb']:.2f} GB > {max_memory_gb:g}")
        for name, floor in floors.items():
            value = 100.0 if row["model"] == "base" else scores.get(row["model"], {}).get(name)
            if value is None:
                fails.append(f"{name} not measured")
            elif value < floor:
                fails.append(f"{name} {value:.1f} < {floor:g}")
        row["fails"] = fails
    rows.sort(key=lambda r: (bool(r["fails"]), -r["decode_tokens_per_s"]))
    best = rows[0]["model"] if rows and not rows[0]["fails"] else None
    return {"device": device, "batch": batch, "rows": rows, "best": best}
