"""Finding 3: experiment and variant names cannot move outputs out of output_dir."""

from __future__ import annotations

from pathlib import Path

from fault_helpers import assert_one_line_error, config_file, snapshot, unicomp_all

VARIANT = "  - {{name: {name}, method: magnitude, options: {{sparsity: 0.5}}}}\n"


CASES = [
    ("../../escaped", "ok", ("name", "'../../escaped'", "not a safe file name")),
    ("/tmp/unicomp-escaped-abs", "ok", ("name", "not a safe file name")),
    ("fine", "'../wanda'", ("variants.0.name", "'../wanda'", "not a safe file name")),
    ("fine", "'" + "w" * 65 + "'", ("variants.0.name", "65 characters long")),
]


def test_unsafe_names_are_refused_before_any_work(tmp_path, tiny_model):
    configs = [config_file(tmp_path / "deep" / f"case{i}", tiny_model, name=name, variants=VARIANT.format(name=variant))
               for i, (name, variant, _) in enumerate(CASES)]
    before = snapshot(tmp_path)
    for config, proc, (_, _, needles) in zip(configs, unicomp_all(*[{"args": ("run", str(c))} for c in configs]), CASES):
        assert_one_line_error(proc, str(config), *needles)
    assert snapshot(tmp_path) == before  # no store, no report, no checkpoint, anywhere
    assert not Path("/tmp/unicomp-escaped-abs-report.json").exists()
