"""What every source returns or raises, and the content hash used as a local revision."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


class SourceMiss(Exception):
    """This source cannot serve the request; the resolver records `reason` and tries the next.

    Distinct from UnicompError, which stops the resolver: a corrupt mirror file must be fixed,
    not silently replaced by another source's copy. `configured` is False when the user never set
    the source up (no mirror given, hub switched off): skipping it is not a fallback worth a warning.
    """

    def __init__(self, reason: str, *, configured: bool = True) -> None:
        self.reason = reason
        self.configured = configured
        super().__init__(reason)


@dataclass
class Served:
    """Rows plus where exactly they came from."""

    rows: list[dict]
    source: str
    location: str
    revision: str
    lines: list[int] | None = None  # line of each row in `location`, where it is a text file


def bytes_revision(data: bytes) -> str:
    """Revision string for local content: a short sha256, so two runs can prove equal inputs."""
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def file_revision(path: Path) -> str:
    """`bytes_revision` of a file, memoised per process (a wheel is 86 MB)."""
    stat = path.stat()
    return _file_revision(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _file_revision(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]
