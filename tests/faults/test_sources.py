"""A fallback that changes what is scored (a configured mirror missing, an empty mirror file,
another split) is shown next to the results and in the run record; --strict-sources refuses it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fault_helpers import MIRROR, assert_one_line_error, unicomp

ARC = Path("allenai/ai2_arc/ARC-Easy")


def test_empty_mirror_file_falls_back_to_another_split_prominently(tmp_path, tiny_model):
    mirror = tmp_path / "mirror"
    (mirror / ARC).mkdir(parents=True)
    (mirror / ARC / "test.jsonl").write_text("")  # emptied by accident
    shutil.copy(MIRROR / ARC / "validation.jsonl", mirror / ARC / "validation.jsonl")
    args = ("eval", "-m", str(tiny_model), "-t", "arc_easy", "--limit", "3", "--store", str(tmp_path / "s.sqlite"),
            "--output", str(tmp_path / "run.json"))
    proc = unicomp(*args, env={"UNICOMP_DATA_DIR": str(mirror)})
    assert proc.returncode == 0, proc.stderr
    assert "mirror:validation (fallback!)" in proc.stdout
    assert "warning: arc_easy was scored on data served after a fallback" in proc.stderr
    assert "has no rows" in proc.stderr and "split 'validation' served instead of 'test'" in proc.stderr
    data = json.loads((tmp_path / "run.json").read_text())["units"][0]["data"]
    assert data["split"] == "validation"
    assert data["fallbacks"][0].startswith("mirror [test]") and data["fallbacks"][-1].startswith("split 'validation'")

    strict = unicomp(*args, "--strict-sources", env={"UNICOMP_DATA_DIR": str(mirror)})
    assert_one_line_error(strict, "allenai/ai2_arc", "has no rows", "--strict-sources")


def test_configured_mirror_that_does_not_exist_is_a_fallback(tmp_path, tiny_model):
    config = tmp_path / "c.yaml"
    config.write_text(f"""name: strict
model: {tiny_model}
store: {tmp_path / 's.sqlite'}
output_dir: {tmp_path / 'out'}
data_dir: {tmp_path / 'no-such-mirror'}
strict_sources: true
evaluation: {{tasks: [arc_easy], limit: 2}}
variants: [{{name: m, method: magnitude, options: {{sparsity: 0.5}}}}]
""")
    proc = unicomp("run", str(config), env={"UNICOMP_DATA_SOURCES": "mirror,pypi"})
    assert_one_line_error(proc, "no-such-mirror does not exist", "--strict-sources")
    assert not (tmp_path / "out").exists()
