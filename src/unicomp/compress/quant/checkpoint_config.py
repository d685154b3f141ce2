"""The `quantization_config` of a checkpoint folder's config.json, shared by every folder reader
(compressed-tensors, GPTQ, AWQ): which format a folder claims, and whether a reader takes it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unicomp.errors import UnicompError


def quant_config(folder: Path, method: str) -> dict[str, Any] | None:
    """config.json's quantization_config when its quant_method is `method`, else None."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text()).get("quantization_config")
    except (json.JSONDecodeError, AttributeError):
        return None
    return raw if isinstance(raw, dict) and str(raw.get("quant_method", "")).lower() == method else None


def readable(folder: Path, method: str, check: Callable[[dict[str, Any], Path], Any]) -> bool:
    """A folder of `method` that `check` accepts (it raises UnicompError on what its reader cannot read)."""
    raw = quant_config(folder, method)
    if raw is None:
        return False
    try:
        check(raw, Path(folder))
    except UnicompError:
        return False
    return True
