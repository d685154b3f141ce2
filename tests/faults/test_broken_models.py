"""Finding 2: a model with NaN or infinite weights, or one whose outputs overflow, is never scored."""

from __future__ import annotations


from fault_helpers import assert_one_line_error, config_file, edited_copy, store_rows, unicomp, unicomp_all

TENSOR = "model.layers.1.mlp.down_proj.weight"


def _poison(value: float):
    def edit(weights):
        weights[TENSOR][3, 5] = value
    return edit


def test_nonfinite_weight_is_named_at_load(tmp_path, tiny_model):
    cases = [(float("nan"), "1 NaN and 0 infinite"), (float("inf"), "0 NaN and 1 infinite")]
    models = [edited_copy(tiny_model, tmp_path / f"broken{i}", _poison(v)) for i, (v, _) in enumerate(cases)]
    store = tmp_path / "s.sqlite"
    procs = unicomp_all(*[{"args": ("eval", "-m", str(m), "-t", "arc_easy", "--limit", "4", "--store", str(store))}
                          for m in models])
    for proc, (_, counts) in zip(procs, cases):
        assert_one_line_error(proc, TENSOR, counts, "corrupt")
    assert store_rows(store, "SELECT COUNT(*) FROM units") in ([], [(0,)])  # no score stored


def test_compressing_a_broken_model_is_refused_before_any_work(tmp_path, tiny_model):
    model = edited_copy(tiny_model, tmp_path / "broken", _poison(float("nan")))
    proc = unicomp("compress", "-m", str(model), "--method", "magnitude", "--sparsity", "0.5",
                   "--out", str(tmp_path / "out"))
    assert_one_line_error(proc, TENSOR)
    assert not (tmp_path / "out").exists() and "magnitude layers" not in proc.stderr


def test_finite_weights_with_overflowing_outputs_fail_the_unit_not_score_it(tmp_path, tiny_model):
    """Every weight is finite, but the final norm scales activations past float32's range: the
    logits are inf/NaN. The run records the failure; no unit, no number."""
    def overflow(weights):
        weights["model.norm.weight"].fill_(3e38)
    model = edited_copy(tiny_model, tmp_path / "overflow", overflow)
    store = tmp_path / "s.sqlite"
    proc = unicomp("eval", "-m", str(model), "-t", "arc_easy", "--limit", "4", "--store", str(store),
                   "--output", str(tmp_path / "run.json"))
    assert_one_line_error(proc, "task arc_easy item 0", "not a number")
    assert store_rows(store, "SELECT COUNT(*) FROM units") == [(0,)]
    [(status, error)] = store_rows(store, "SELECT status, error FROM runs")
    assert status == "failed" and "arc_easy" in error
    assert not (tmp_path / "run.json").exists()

    # In a run: the run ends as failed, with the reason, and writes no report.
    config = config_file(tmp_path / "run", model, distance="{enabled: false}",
                         variants="  - {name: magnitude-50, method: magnitude, options: {sparsity: 0.5}}\n")
    ran = unicomp("run", str(config))
    assert_one_line_error(ran, "not a number")
    assert store_rows(tmp_path / "run" / "store.sqlite", "SELECT status FROM runs") == [("failed",)]
    assert not (tmp_path / "run" / "out" / "faults-report.json").exists()
