"""The local hub mirror: `<root>/<org>/<name>/<config or "default">/<split>.jsonl`.

A dataset the hub keeps as a collection of original JSON files (TrustLLM: one folder per section,
one array per file) is mirrored byte for byte as `<root>/<org>/<name>/<folder>/<file>.json`; its
config is the folder and its split the file's stem (see `hub.FILE_DATASETS`).

The mirror holds the hub rows verbatim (same field names, nesting and value types), so reading
it with plain `json` gives exactly what `datasets.load_dataset` gives online.

No parsed-row cache: the largest file (HellaSwag validation, 12 MB) parses in about 0.1 s,
the same time a defensive deep copy of cached rows takes, and handing out shared cached rows
would let one caller's in-place edits leak into another's results.
"""

from __future__ import annotations

from pathlib import Path

from unicomp.data.ids import canonical_id
from unicomp.data.jsonl import parse_json_array_lines, parse_jsonl_lines
from unicomp.data.sources._common import Served, SourceMiss, bytes_revision
from unicomp.paths import data_dir as configured_data_dir


def mirror_file(root: Path, dataset_id: str, config: str | None, split: str) -> Path:
    """Where the mirror keeps one split; configless datasets live under `default`."""
    return root.joinpath(*canonical_id(dataset_id).split("/"), config or "default", f"{split}.jsonl")


def fetch(dataset_id: str, config: str | None, split: str, *, data_dir: str | Path | None = None) -> Served:
    """Rows of one split from the mirror, or SourceMiss if the mirror does not have it."""
    root = configured_data_dir(data_dir)
    if root is None:
        raise SourceMiss("no mirror set (set UNICOMP_DATA_DIR or data_dir)", configured=False)
    if not root.is_dir():
        raise SourceMiss(f"mirror root {root} does not exist")
    path = mirror_file(root, dataset_id, config, split)
    parse = parse_jsonl_lines
    if not path.is_file() and path.with_suffix(".json").is_file():
        path, parse = path.with_suffix(".json"), parse_json_array_lines
    if not path.is_file():
        raise SourceMiss(f"no file {path}")
    data = path.read_bytes()
    rows, lines = parse(data, path)
    if not rows:
        raise SourceMiss(f"{path} has no rows")
    return Served(rows=rows, source="mirror", location=str(path), revision=bytes_revision(data), lines=lines)
