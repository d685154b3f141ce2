"""Runtime inside `unicomp run`: a profile unit per model and dtype, a pruned variant that runs
dense reusing its base's measurement (and saying so), a quantized variant measured on its packed
int4 kernels in bf16 and skipped in fp32 (the reference path is not a deployment path), speed-ups
against the base's faster dtype, and a re-run that measures nothing again."""

from __future__ import annotations

import yaml

from unicomp.config import load_config
from unicomp.runs.experiment import build_plan, run_experiment
from unicomp.runs.plan import describe

EFFICIENCY = {"prompt_tokens": 16, "new_tokens": 4, "decode_tokens": 6, "batch_sizes": [1, 2], "repeats": 1,
              "threads": 1, "dtypes": ["float32", "bfloat16"], "devices": ["l4"]}


def _config(tmp, base):
    raw = {"name": "eff", "model": str(base), "store": str(tmp / "s.sqlite"), "output_dir": str(tmp / "out"),
           "evaluation": {"tasks": ["arc_easy"], "limit": 2, "batch_size": 2},
           "calibration": {"source": "c4", "n_samples": 2, "seq_len": 32}, "distance": {"enabled": False},
           "efficiency": EFFICIENCY,
           "variants": [{"name": "magnitude-50", "method": "magnitude", "options": {"sparsity": 0.5}},
                        {"name": "rtn-w4", "method": "rtn", "options": {"bits": 4, "group_size": 32}}]}
    path = tmp / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_profile_units_in_a_run(tiny_model, tmp_path, mirror):
    cfg = _config(tmp_path, tiny_model)
    profiles = [r for r in describe(build_plan(cfg), None) if r["kind"] == "profile"]
    assert [r["unit"] for r in profiles] == [f"profile {m} ({d})" for m in ("base", "magnitude-50", "rtn-w4")
                                             for d in ("float32", "bfloat16")]
    result = run_experiment(cfg)
    rows = {(r["model"], r["dtype"], r.get("batch")): r for r in result["runtime"]}
    base32 = rows[("base", "float32", 1)]
    assert base32["kernels"] == {"Linear": 15} and base32["measured_on"] == "base"
    pruned = rows[("magnitude-50", "float32", 1)]
    assert pruned["measured_on"] == "base" and pruned["decode_tokens_per_s"] == base32["decode_tokens_per_s"]
    assert any("no sparse kernel" in n for n in pruned["notes"])
    assert "skipped" in rows[("rtn-w4", "float32", None)]
    packed = rows[("rtn-w4", "bfloat16", 2)]
    assert packed["kernels"] == {"Int4PackedLinear": 14, "Linear": 1} and packed["measured_on"] == "rtn-w4"
    best = max(rows[("base", d, 2)]["decode_tokens_per_s"] for d in ("float32", "bfloat16"))
    assert packed["decode_speedup"] == packed["decode_tokens_per_s"] / best
    assert all(r["peak_memory_bytes"] > 0 for r in result["runtime"] if "skipped" not in r)

    # compute cost: measured on this machine (named), modeled on the L4 by fp32 matmul throughput
    for variant in ("magnitude-50", "rtn-w4"):
        cost = result["compression"][variant]
        assert cost["device"] and cost["device_fp32_matmul_tflops"] > 0
        assert cost["modeled_device_hours"]["l4"] == cost["wall_seconds"] / 3600 * cost["device_fp32_matmul_tflops"] / 30.3

    again = run_experiment(cfg)
    assert all(u["reused"] for u in again["export"]["units"])
    assert again["runtime"] == result["runtime"]
