"""`unicomp plan` on paper-scale configs: offline, nothing downloaded, and a GPU-hour estimate
whose parts are checked against independent counts (published parameter counts, hand-counted
FLOPs, the bandwidth ratio of memory-bound decoding)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from test_cli import unicomp

from unicomp.efficiency.flops import Shape
from unicomp.efficiency.profiles import load_profile
from unicomp.models.shape_source import offline_config
from unicomp.runs.estimate import Assumptions, Work, compress_work, unit_hours

ROOT = Path(__file__).resolve().parents[2]

# Parameter counts as the hub model cards / safetensors indexes give them.
PUBLISHED_PARAMETERS = {
    "llama-3.1-8b-instruct": 8_030_261_248,
    "qwen2.5-7b-instruct": 7_615_616_512,
    "llama-3.2-3b-instruct": 3_212_749_824,
    "qwen2.5-3b-instruct": 3_085_938_688,
    "qwen2.5-coder-0.5b-instruct": 494_032_768,
}


@pytest.mark.parametrize("alias", sorted(PUBLISHED_PARAMETERS))
def test_paper_aliases_carry_the_published_shapes(alias: str) -> None:
    config = offline_config(alias)
    shape = Shape.of(config)
    embeddings = config.vocab_size * config.hidden_size * (1 if config.tie_word_embeddings else 2)
    norms = (2 * shape.layers + 1) * shape.hidden
    qkv_bias = shape.layers * (shape.heads + 2 * shape.kv_heads) * shape.head_dim if config.model_type == "qwen2" else 0
    assert shape.linear_macs_per_token + embeddings + norms + qkv_bias == PUBLISHED_PARAMETERS[alias]


def test_hours_are_flops_over_the_utilised_peak_and_decode_follows_bandwidth() -> None:
    config = offline_config("llama-3.1-8b-instruct")
    a100, h100 = load_profile("a100-sxm"), load_profile("h100-sxm")
    a = Assumptions()
    prefill = Work(prefill_flops=1e18)
    assert unit_hours(prefill, config, a100, a) == pytest.approx(1e18 / (312e12 * a.compute_utilisation) / 3600)
    # Decoding a batch of 64 at a short context is bandwidth-bound: hours scale with 1/bandwidth.
    decode = Work(decode_tokens=1e6, decode_context=300)
    ratio = unit_hours(decode, config, a100, a) / unit_hours(decode, config, h100, a)
    assert ratio == pytest.approx(h100.memory_bandwidth_gbps / a100.memory_bandwidth_gbps, rel=0.02)
    assert unit_hours(replace(decode, decode_tokens=2e6), config, a100, a) == pytest.approx(
        2 * unit_hours(decode, config, a100, a))


def test_gptq_calibration_cost_is_two_passes_plus_hessians(tmp_path: Path) -> None:
    from unicomp.data.calibration import CalibrationConfig
    from unicomp.runs.models import ModelRef
    from unicomp.runs.units import CompressUnit

    config = offline_config("llama-3.1-8b-instruct")
    unit = CompressUnit(name="compress g", variant="g", method="gptq", options={}, storage="auto",
                        base=ModelRef("base", spec="llama-3.1-8b-instruct"),
                        calibration=CalibrationConfig(n_samples=128, seq_len=2048), batch_size=8,
                        calibration_dtype=None)
    tokens = 128 * 2048
    linear = 32 * (4096 * (4096 + 2 * 1024) + 4096 * 4096 + 3 * 4096 * 14336)  # hand count, Llama 3.1 8B
    hessians = 32 * sum(2 * tokens * d * d + 2 * d ** 3 for d in (4096, 4096, 4096, 14336))
    assert compress_work(unit, config, Assumptions()).statistics_flops == 2 * 2 * linear * tokens + hessians
    magnitude = replace(unit, method="magnitude", options={"sparsity": 0.5})
    assert compress_work(magnitude, config, Assumptions()).statistics_flops == 0


@pytest.mark.parametrize("name", ["paper.yaml", "paper-qwen2.5-7b.yaml"])
def test_paper_configs_plan_offline_in_seconds_without_downloading(tmp_path: Path, name: str) -> None:
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    proc = unicomp("plan", str(ROOT / "configs" / name), "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    units = out["units"]
    assert units and not any(u["key"] or u["stored"] for u in units)  # no model here: no keys
    assert "is not on this machine; planned from its config" in proc.stderr
    evaluations = [u for u in units if u["kind"] == "evaluate"]
    per_model = {u["unit"].split(" x ")[0] for u in evaluations}
    assert len(per_model) == 10  # base + 9 variants, each on every task
    est = out["estimate"]
    totals = {d: v["total"] for d, v in est["devices"].items()}
    assert set(totals) == {"a100-sxm", "h100-sxm", "l4"} and est["label"] == "modeled"
    assert 0 < totals["h100-sxm"] < totals["a100-sxm"] < totals["l4"]
    assert all(v["hours"]["compress"] > 0 and v["hours"]["evaluate"] > 0 for v in est["devices"].values())
    assert any("Global-MMLU" in note and "documented rows" in note for note in est["notes"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty-cache"] or list(tmp_path.iterdir()) == []


def test_plan_names_an_unknown_device_profile(tmp_path: Path) -> None:
    from test_cli import assert_one_line_error

    proc = unicomp("plan", str(ROOT / "configs" / "paper.yaml"), "--device", "a100", cwd=tmp_path,
                   env={"HF_HUB_OFFLINE": "1"})
    assert_one_line_error(proc, "unknown device profile 'a100'", "a100-sxm")
