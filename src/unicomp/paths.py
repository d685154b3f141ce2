"""Where unicomp keeps what it downloads or converts, and where it looks for local data.

Both locations are settings, not constants, because CI, laptops and GPU clusters differ:
`UNICOMP_CACHE` (converted models, downloaded wheels) and `UNICOMP_DATA_DIR` (a local mirror of
hub datasets, laid out `<org>/<name>/<config>/<split>.jsonl`).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir


def cache_dir() -> Path:
    """Root of unicomp's cache; created on first use."""
    root = Path(os.environ.get("UNICOMP_CACHE") or user_cache_dir("unicomp")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The local dataset mirror, from an explicit setting or `UNICOMP_DATA_DIR`, if any."""
    value = explicit if explicit is not None else os.environ.get("UNICOMP_DATA_DIR")
    if not value:
        return None
    return Path(value).expanduser().resolve()
