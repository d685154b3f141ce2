"""Calibration token ids from a file: exactly the samples another tool calibrated on.

Formats (none can run code): `.json` (a list of id lists, or {"input_ids": [...]}), `.jsonl` (one
id list or {"input_ids": [...]} per line), `.pt` (a 2-D integer tensor, loaded with
weights_only), `.npy` (a 2-D integer array, no pickles).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unicomp.errors import UnicompError

FORMATS = (".json", ".jsonl", ".pt", ".npy")


def _rows(value: Any, path: Path) -> list[Any]:
    if isinstance(value, dict) and "input_ids" in value:
        value = value["input_ids"]
    if not isinstance(value, list):
        raise UnicompError(f"{path} does not hold a list of token id sequences",
                           'write [[id, id, ...], ...] or {"input_ids": [[...], ...]}')
    return value


def read_token_file(path: str | Path) -> list[list[int]]:
    """Every sequence in the file, as lists of ints (checked: integers >= 0, at least one per row)."""
    path = Path(path)
    if not path.is_file():
        raise UnicompError(f"calibration token file {path} does not exist", "give the path of a token id file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        rows = _rows(json.loads(path.read_text()), path)
    elif suffix == ".jsonl":
        rows = [_rows(json.loads(line), path) if line.lstrip().startswith("{") else json.loads(line)
                for line in path.read_text().splitlines() if line.strip()]
        rows = [r[0] if len(r) == 1 and isinstance(r[0], list) else r for r in rows]
    elif suffix == ".pt":
        import torch

        rows = torch.load(path, weights_only=True, map_location="cpu")
        rows = rows.tolist() if hasattr(rows, "tolist") else _rows(rows, path)
    elif suffix == ".npy":
        import numpy as np

        rows = np.load(path, allow_pickle=False).tolist()
    else:
        raise UnicompError(f"calibration token file {path} has an unknown format {suffix!r}",
                           f"use one of {', '.join(FORMATS)}")
    out = []
    for index, row in enumerate(rows):
        if not isinstance(row, list) or not row or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0
                                                           for t in row):
            raise UnicompError(f"{path}: sequence {index} is not a non-empty list of token ids (integers >= 0)",
                               "write one list of token ids per sample")
        out.append(row)
    if not out:
        raise UnicompError(f"{path} holds no token id sequences", "write at least one")
    return out


__all__ = ["FORMATS", "read_token_file"]
