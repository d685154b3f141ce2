"""Finding 5: input that used to end in a traceback (some only after the work was done) is a
one-line error before any work: corrupt checkpoints, output paths, numbers, dataset rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fault_helpers import MIRROR, assert_one_line_error, snapshot, store_rows, unicomp, unicomp_all

ARC = Path("allenai/ai2_arc/ARC-Easy/test.jsonl")


def damaged_copy(src: Path, dst: Path, damage) -> Path:
    shutil.copytree(src, dst)
    weights = dst / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    return dst


DAMAGE = [
    (lambda b: b[: len(b) // 2], "its tensors need"),
    (lambda b: b[:5], "shorter than the 8-byte header length"),
    (lambda b: b[:8] + b"{not json" + b[17:], "header is not valid JSON"),
]


def test_corrupt_checkpoint_names_the_file(tmp_path, tiny_model):
    models = [damaged_copy(tiny_model, tmp_path / f"damaged{i}", damage) for i, (damage, _) in enumerate(DAMAGE)]
    procs = unicomp_all(*[{"args": ("eval", "-m", str(m), "-t", "arc_easy", "--limit", "2", "--store",
                                    str(tmp_path / "s.sqlite"))} for m in models])
    for model, proc, (_, needle) in zip(models, procs, DAMAGE):
        assert_one_line_error(proc, str(model / "model.safetensors"), "truncated or corrupt", needle)
    assert store_rows(tmp_path / "s.sqlite", "SELECT COUNT(*) FROM runs") == [(0,)]


def test_output_locations_are_checked_before_the_work(tmp_path, tiny_model):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    compress = ("compress", "-m", str(tiny_model), "--method", "wanda", "--sparsity", "0.5",
                "--n-samples", "4", "--seq-len", "32")
    proc = unicomp(*compress, "--out", str(a_file / "ckpt"))
    assert_one_line_error(proc, str(a_file), "which is a file")
    assert "layers" not in proc.stderr and "calibration" not in proc.stderr  # refused before any work

    store = tmp_path / "s.sqlite"
    evaluate = ("eval", "-m", str(tiny_model), "-t", "arc_easy", "--limit", "2", "--store", str(store))
    proc = unicomp(*evaluate, "--output", str(tmp_path))
    assert_one_line_error(proc, "--output", "is a folder")
    theirs = tmp_path / "notes.json"
    theirs.write_text(json.dumps({"my": "notes"}))
    proc = unicomp(*evaluate, "--output", str(theirs))
    assert_one_line_error(proc, "--output", "was not written by unicomp")
    assert json.loads(theirs.read_text()) == {"my": "notes"}
    assert not store.exists()  # checked before the store was even opened

    # a folder that does not exist yet is created, with its parents
    nested = tmp_path / "new" / "deeper" / "ckpt"
    proc = unicomp(*compress, "--out", str(nested))
    assert proc.returncode == 0, proc.stderr
    assert (nested / "unicomp.json").is_file()


NUMBERS = [
    (("compress", "--method", "wanda", "--sparsity", "0.5", "--batch-size", "0", "--out", "x"), "--batch-size 0"),
    (("compress", "--method", "wanda", "--sparsity", "0.5", "--n-samples", "0", "--out", "x"), "--n-samples 0"),
    (("eval", "-t", "arc_easy", "--batch-size", "0"), "--batch-size 0"),
    (("eval", "-t", "arc_easy", "--limit", "0"), "--limit 0"),
    (("eval", "-t", "arc_easy", "--dtype", "float8"), "unsupported dtype 'float8'"),
]


def test_numbers_out_of_range(tmp_path, tiny_model):
    procs = unicomp_all(*[{"args": (args[0], "-m", str(tiny_model), *args[1:]), "cwd": tmp_path} for args, _ in NUMBERS])
    for proc, (_, needle) in zip(procs, NUMBERS):
        assert_one_line_error(proc, needle)
    assert snapshot(tmp_path) == {}


ROWS = [
    (lambda row: {("answer_key" if k == "answerKey" else k): v for k, v in row.items()},
     ("line 3", "no field 'answerKey'", "answer_key")),
    (lambda row: {**row, "answerKey": "Z"}, ("line 3", "'Z' is not in list")),
    (lambda row: {**row, "choices": "A or B"}, ("line 3", "no field 'choices.text'")),
]


def test_a_bad_dataset_row_names_file_line_and_field(tmp_path, tiny_model):
    good = [json.loads(line) for line in (MIRROR / ARC).read_text().splitlines()[:5]]
    commands, files = [], []
    for i, (edit, _) in enumerate(ROWS):
        rows = list(good)
        rows[2] = edit(rows[2])
        bad = tmp_path / f"mirror{i}" / ARC
        bad.parent.mkdir(parents=True)
        bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
        files.append(bad)
        commands.append({"args": ("eval", "-m", str(tiny_model), "-t", "arc_easy", "--store", str(tmp_path / "s.sqlite")),
                         "env": {"UNICOMP_DATA_DIR": str(tmp_path / f"mirror{i}")}})
    for bad, proc, (_, needles) in zip(files, unicomp_all(*commands), ROWS):
        assert_one_line_error(proc, str(bad), *needles)
        assert "loading model" not in proc.stderr  # found before the model was loaded


def test_executor_problems_are_one_line_before_any_work(tmp_path, tiny_model):
    """An unknown executor, Ray not importable, a Ray address where nothing answers."""
    from fault_helpers import config_file

    no_ray = tmp_path / "no_ray" / "ray"
    no_ray.mkdir(parents=True)
    (no_ray / "__init__.py").write_text("raise ImportError('No module named ray')\n")  # as if not installed
    configs = [config_file(tmp_path / f"c{i}", tiny_model, extra=extra) for i, extra in
               enumerate(("executor: slurm", "executor: ray", "executor: ray\nray_address: 127.0.0.1:9"))]
    unknown, missing, silent = unicomp_all(
        {"args": ("run", str(configs[0]))},
        {"args": ("run", str(configs[1])), "env": {"PYTHONPATH": str(no_ray.parent)}},
        {"args": ("run", str(configs[2]))})
    assert_one_line_error(unknown, "unknown executor 'slurm'")
    assert_one_line_error(missing, "needs the Ray package", "pip install -e '.[ray]'")
    assert_one_line_error(silent, "no Ray cluster answers at '127.0.0.1:9'", "ray start --head")
    for i in range(3):
        assert not (tmp_path / f"c{i}" / "out").exists() and not (tmp_path / f"c{i}" / "store.sqlite").exists()
