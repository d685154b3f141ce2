"""The data sources the resolver can try, by the names users put in UNICOMP_DATA_SOURCES.

Each source is a function `fetch(dataset_id, config, split, *, data_dir) -> Served` that raises
SourceMiss when it cannot serve the request (so the next source is tried) and UnicompError when
the user must fix something first (e.g. a corrupt mirror file).
"""

from __future__ import annotations

from collections.abc import Callable

from unicomp.data.sources import hub, mirror, pypi
from unicomp.data.sources._common import Served, SourceMiss

Fetch = Callable[..., Served]

SOURCES: dict[str, Fetch] = {
    "mirror": mirror.fetch,
    "hub": hub.fetch,
    "pypi": pypi.fetch,
}

__all__ = ["SOURCES", "Fetch", "Served", "SourceMiss"]
