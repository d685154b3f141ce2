"""Datasets kept as original JSON arrays (TrustLLM): read from the mirror with the same rows
`json.load` gives, each record located by file and line, and broken files named exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unicomp.data.jsonl import parse_json_array_lines
from unicomp.data.resolver import load_rows
from unicomp.errors import UnicompError


def test_trustllm_file_from_the_mirror_equals_json_load(mirror_root: Path) -> None:
    path = mirror_root / "TrustLLM" / "TrustLLM-dataset" / "robustness" / "AdvGLUE.json"
    resolved = load_rows("TrustLLM/TrustLLM-dataset", "robustness", "AdvGLUE", data_dir=mirror_root, sources="mirror")
    assert resolved.rows == json.loads(path.read_text(encoding="utf-8"))
    assert resolved.location == str(path) and resolved.revision.startswith("sha256:")
    # each record's line is where its "{" is
    lines = path.read_text(encoding="utf-8").split("\n")
    for i in (0, 1, 455, len(resolved.rows) - 1):
        assert lines[resolved.lines[i] - 1].strip().startswith("{")
    assert resolved.where(1).endswith(f"AdvGLUE.json line {resolved.lines[1]}")


@pytest.mark.parametrize("text, line, words", [
    ('[\n {"a": 1},\n {"a": 2}\n {"a": 3}\n]', 4, "expected ',' or ']'"),
    ('[\n {"a": 1},\n {"a": 2},\n', 4, "invalid JSON"),
    ('[\n {"a": 1},\n [2]\n]', 3, "record 1: expected a JSON object"),
    ('{"a": 1}', 1, "expected a JSON array"),
    ('[{"a": 1}]\n]', 2, "unexpected content after the array"),
])
def test_a_broken_file_is_named_with_its_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "broken.json"
    with pytest.raises(UnicompError) as err:
        parse_json_array_lines(text.encode(), path)
    assert f"{path} line {line}" in err.value.problem and words in err.value.problem


def test_empty_array_and_json_lines_preference(tmp_path: Path) -> None:
    assert parse_json_array_lines(b" [ ] ", tmp_path / "x.json") == ([], [])
    folder = tmp_path / "org" / "name" / "cfg"
    folder.mkdir(parents=True)
    (folder / "s.json").write_text('[{"v": "array"}]')
    assert load_rows("org/name", "cfg", "s", data_dir=tmp_path, sources="mirror").rows == [{"v": "array"}]
    (folder / "s.jsonl").write_text('{"v": "lines"}\n')  # the hub layout's own file wins
    assert load_rows("org/name", "cfg", "s", data_dir=tmp_path, sources="mirror").rows == [{"v": "lines"}]
