"""Runs as plans of units: what a plan holds, what `describe` says before and after a run, and
prebuilt checkpoints as variants (tiny real models, in process)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from unicomp.config import ExperimentConfig, load_config
from unicomp.errors import UnicompError
from unicomp.runs.experiment import build_plan, run_experiment
from unicomp.runs.plan import describe
from unicomp.runs.store import Store


@pytest.fixture
def base_dir(tiny_model) -> Path:
    return tiny_model


def config(tmp: Path, base: Path, variants: list[dict], **extra) -> ExperimentConfig:
    raw = {"name": "plan", "model": str(base), "store": str(tmp / "s.sqlite"), "output_dir": str(tmp / "out"),
           "evaluation": {"tasks": ["arc_easy", "piqa"], "limit": 4, "batch_size": 4},
           "calibration": {"source": "c4", "n_samples": 4, "seq_len": 32}, "distance": {"windows": 2, "seq_len": 32},
           "variants": variants, **extra}
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


MAGNITUDE = {"name": "magnitude-50", "method": "magnitude", "options": {"sparsity": 0.5}}
WANDA = {"name": "wanda-50", "method": "wanda", "options": {"sparsity": 0.5}}


def test_plan_lists_every_unit_with_keys_and_dependencies_then_all_stored(tmp_path, base_dir):
    cfg = config(tmp_path, base_dir, [MAGNITUDE, WANDA])
    plan = build_plan(cfg)
    before = describe(plan, None)
    assert len(before) == 2 + 2 * (1 + 2 + 1)  # base tasks; per variant compress, tasks, distance
    kinds = [r["kind"] for r in before]
    assert kinds == ["evaluate"] * 2 + ["compress", "evaluate", "evaluate", "distance"] * 2
    assert all(r["key"] and not r["stored"] for r in before if r["kind"] == "compress" or r["unit"].startswith("evaluate base"))
    variant_eval = next(r for r in before if r["unit"] == "evaluate wanda-50 x piqa")
    assert variant_eval["key"] is None and variant_eval["waits_for"] == ["compress wanda-50"]

    result = run_experiment(cfg)
    after = describe(build_plan(cfg), Store(cfg.store))
    assert all(r["stored"] and r["key"] and not r["waits_for"] for r in after)
    keys = {r["unit"]: r["key"] for r in after}
    exported = {u["unit_key"] for u in result["export"]["units"]}
    assert set(keys.values()) == exported  # the plan's keys are exactly the run's units

    rerun = run_experiment(cfg)  # everything reused, same report
    assert all(u["reused"] for u in rerun["export"]["units"])
    assert rerun["rows"] == result["rows"] and rerun["distance"] == result["distance"]


def test_a_checkpoint_written_by_compress_is_a_prebuilt_variant(tmp_path, base_dir):
    first = run_experiment(config(tmp_path / "a", base_dir, [MAGNITUDE]))
    folder = first["export"]["units"][2]["data"]["checkpoint"]
    prebuilt = run_experiment(config(tmp_path / "b", base_dir, [{"name": "public-mag", "model": folder}]))
    assert prebuilt["prebuilt"] == ["public-mag"] and prebuilt["compressed"] == []
    rows = {(r["model"], r["task"]): r for r in prebuilt["rows"]}
    made = {(r["model"], r["task"]): r for r in first["rows"]}
    for task in ("arc_easy", "piqa"):  # the same weights score the same on the same items
        assert rows[("public-mag", task)]["score"] == made[("magnitude-50", task)]["score"]
        assert rows[("public-mag", task)]["items"] == 4
    assert prebuilt["distance"]["public-mag"] == first["distance"]["magnitude-50"]


def test_a_prebuilt_model_with_another_tokenizer_skips_the_distance_and_says_why(tmp_path, base_dir, monkeypatch):
    from models.tiny_saved import write_tiny_gguf

    monkeypatch.setenv("UNICOMP_CACHE", str(tmp_path / "cache"))
    gguf = write_tiny_gguf(tmp_path / "other.gguf")
    result = run_experiment(config(tmp_path, base_dir, [{"name": "other-gguf", "model": str(gguf)}]))
    assert "other-gguf" not in result["distance"]
    assert "tokenizers differ" in result["distance_skipped"]["other-gguf"]
    scored = [r for r in result["rows"] if r["model"] == "other-gguf"]
    assert len(scored) == 2 and all(r["items"] == 4 for r in scored)  # paired on the identical items


@pytest.mark.parametrize("variant, needle", [
    ({"name": "x", "method": "magnitude", "model": "somewhere"}, "both `method` and `model`"),
    ({"name": "x"}, "neither `method` nor `model`"),
    ({"name": "x", "model": "somewhere", "options": {"sparsity": 0.5}}, "prebuilt model"),
])
def test_a_variant_is_a_method_or_a_model(tmp_path, base_dir, variant, needle):
    with pytest.raises(UnicompError, match=needle):
        config(tmp_path, base_dir, [variant])


def test_unknown_executor(tmp_path, base_dir):
    with pytest.raises(UnicompError, match="unknown executor 'slurm'"):
        config(tmp_path, base_dir, [MAGNITUDE], executor="slurm")


def test_a_variant_is_keyed_by_its_resolved_options_so_a_changed_default_is_not_reused(tmp_path, base_dir,
                                                                                    monkeypatch):
    """Spelling out a default gives the same unit; changing the default itself gives a new one (a variant
    made under the old default is never served for the new)."""
    from unicomp.compress.registry import get_method

    def compress_key(variant):
        plan = build_plan(config(tmp_path, base_dir, [variant]))
        return next(u for u in plan.units if u.kind == "compress").key()

    implicit = compress_key({"name": "w", "method": "wanda", "options": {"sparsity": 0.5}})
    explicit_default = get_method("wanda").Config.model_fields["pattern"].default
    assert compress_key({"name": "w", "method": "wanda", "options": {"sparsity": 0.5, "pattern": explicit_default}}) \
        == implicit
    wanda = get_method("wanda")

    class NewDefault(wanda.Config):  # the same method in a release whose default pattern changed
        pattern: str = "2:4"

    monkeypatch.setattr(wanda, "Config", NewDefault)
    assert compress_key({"name": "w", "method": "wanda", "options": {"sparsity": 0.5}}) != implicit
