"""Measured runtime per model, dtype and batch size, with speed-ups against the base.

A variant's speed-up is against the base's faster dtype at the same batch (on this CPU fp32
decodes faster than bf16, so a ratio against bf16 alone would flatter the packed bf16 formats).
Every row says what ran (kernels) and, where a variant shares its base's shapes, dtype and kernels,
that the number is the base's measurement.
"""

from __future__ import annotations

from typing import Any

METRICS = ("prefill_tokens_per_s", "decode_tokens_per_s", "ttft_s", "e2e_latency_s", "peak_memory_bytes")


def runtime_rows(profiles: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """`profiles`: model label -> dtype -> stored profile unit data (efficiency/runtime.py layout,
    or {"skipped": reason}). One row per model, dtype and batch size."""
    best: dict[int, dict[str, float]] = {}  # batch -> the base's best value per metric
    for data in profiles.get("base", {}).values():
        for row in data.get("batches", []):
            for m in ("prefill_tokens_per_s", "decode_tokens_per_s"):
                best.setdefault(row["batch"], {})[m] = max(best.get(row["batch"], {}).get(m, 0.0), row[m])
    rows = []
    for model, by_dtype in profiles.items():
        for dtype, data in by_dtype.items():
            if "skipped" in data:
                rows.append({"model": model, "dtype": dtype, "skipped": data["skipped"]})
                continue
            for row in data["batches"]:
                ref = best.get(row["batch"], {})
                rows.append({
                    "model": model, "dtype": dtype, "batch": row["batch"],
                    "prefill_tokens_per_s": row["prefill_tokens_per_s"], "decode_tokens_per_s": row["decode_tokens_per_s"],
                    "ttft_s": row["ttft_s"]["median"], "e2e_latency_s": row["e2e_latency_s"]["median"],
                    "peak_memory_bytes": row["peak_memory_bytes"], "peak_memory_kind": row["peak_memory_kind"],
                    "prefill_speedup": row["prefill_tokens_per_s"] / ref["prefill_tokens_per_s"] if ref else None,
                    "decode_speedup": row["decode_tokens_per_s"] / ref["decode_tokens_per_s"] if ref else None,
                    "kernels": data["kernels"], "threads": data["threads"], "backend": data["backend"],
                    "measured_on": data.get("measured_on", model), "notes": data.get("notes", []),
                })
    return rows
