"""Calibration from a file of token ids (`source: tokens`): the samples are exactly the file's first
n_samples sequences in every format; the config carries the file's hash, so a changed file is a
different calibration (and a different compression unit); bad files fail with one clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_models import tiny_tokenizer

from unicomp.data.calibration import CalibrationConfig, build_calibration
from unicomp.errors import UnicompError

IDS = [[5, 6, 7, 8], [9, 10, 11], [12, 13, 14, 15], [16, 17]]


def _write(path, fmt):
    if fmt == ".json":
        path.write_text(json.dumps(IDS))
    elif fmt == ".jsonl":
        path.write_text("\n".join(json.dumps({"input_ids": row}) for row in IDS))
    elif fmt == ".pt":
        torch.save(torch.tensor([row[:2] for row in IDS]), path)
    else:
        np.save(path, np.array([row[:2] for row in IDS], dtype=np.int64))
    return path


@pytest.mark.parametrize("fmt", [".json", ".jsonl", ".pt", ".npy"])
def test_the_samples_are_the_files_sequences_as_given(tmp_path, fmt):
    path = _write(tmp_path / f"ids{fmt}", fmt)
    cal = build_calibration({"source": "tokens", "path": str(path), "n_samples": 3, "seq_len": 8}, tiny_tokenizer())
    want = IDS[:3] if fmt in (".json", ".jsonl") else [row[:2] for row in IDS[:3]]
    assert cal.samples == want
    assert cal.record["file_sha256"].startswith("sha256:") and cal.record["sequences_in_file"] == 4


def test_a_changed_file_is_a_different_calibration(tmp_path):
    path = _write(tmp_path / "ids.json", ".json")
    before = CalibrationConfig(source="tokens", path=str(path), n_samples=2)
    path.write_text(json.dumps([[1, 2], [3, 4]]))
    after = CalibrationConfig(source="tokens", path=str(path), n_samples=2)
    assert before.model_dump() != after.model_dump()  # the unit key follows the content
    with pytest.raises(UnicompError, match="has changed"):
        CalibrationConfig(**before.model_dump())


@pytest.mark.parametrize("content,options,problem", [
    (IDS, {"n_samples": 5}, "holds 4 sequences, 5 were asked for"),
    (IDS, {"n_samples": 2, "seq_len": 3}, "longer than seq_len 3"),
    ([[1, 2], [3, 10_000]], {"n_samples": 2}, "outside the tokenizer's"),
    ([[1, 2], [3, -1]], {"n_samples": 2}, "integers >= 0"),
    ({"ids": [[1]]}, {"n_samples": 1}, "does not hold a list"),
])
def test_bad_token_files_fail_with_one_clear_error(tmp_path, content, options, problem):
    path = tmp_path / "ids.json"
    path.write_text(json.dumps(content))
    with pytest.raises(UnicompError, match=problem):
        build_calibration({"source": "tokens", "path": str(path), **options}, tiny_tokenizer())


def test_a_missing_path_or_an_unsafe_format_is_refused(tmp_path):
    with pytest.raises(UnicompError, match="needs the path"):
        CalibrationConfig(source="tokens")
    with pytest.raises(UnicompError, match="does not exist"):
        CalibrationConfig(source="tokens", path=str(tmp_path / "nope.json"))
    pickle = tmp_path / "ids.pkl"
    pickle.write_bytes(b"\x80\x04.")
    with pytest.raises(UnicompError, match="unknown format"):
        build_calibration({"source": "tokens", "path": str(pickle), "n_samples": 1}, tiny_tokenizer())
    with pytest.raises(UnicompError, match="only to source 'tokens'"):
        CalibrationConfig(source="c4", path=str(pickle))


def test_unicomp_compress_calibrates_on_a_token_file(tiny_model, tmp_path, mirror):
    from test_cli import unicomp

    path = _write(tmp_path / "ids.json", ".json")
    proc = unicomp("compress", "-m", str(tiny_model), "--method", "wanda", "-o", str(tmp_path / "w"),
                   "--calibration-file", str(path), "--n-samples", "4", "--seq-len", "8")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "w" / "unicomp.json").read_text())["report"]["calibration"]
    assert record["config"]["source"] == "tokens" and record["n_samples"] == 4
    assert record["total_tokens"] == sum(map(len, IDS)) and record["file_sha256"].startswith("sha256:")
