"""The one place that decides where unicomp may write, and writes there safely.

Every writer (checkpoints, run reports, CSV, JSON) goes through these helpers, so three promises
hold everywhere:
- unicomp never deletes what it did not write: `--overwrite` replaces only a folder that holds
  unicomp's `unicomp.json`, and never the current folder, one of its parents or the home folder;
- an output is complete or absent: it is written beside its final place under a hidden
  `.unicomp-tmp.*` name and renamed into place at the end;
- what a killed process left is cleaned later: temporary names carry their owner process
  (`owner.token()`), and `clean_leftovers` removes those whose owner is dead (restoring a
  folder that was being replaced when the kill came).
Output locations are checked before any work starts, so a bad path costs seconds, not the run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from unicomp import owner
from unicomp.errors import UnicompError
from unicomp.failpoints import failpoint

MANIFEST = "unicomp.json"  # what marks a folder as written by unicomp
TMP = ".unicomp-tmp"  # being written
OLD = ".unicomp-old"  # being replaced (restored if its owner dies before the swap ends)

MAX_NAME = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
NAME_RULE = f"letters, digits and - _ . + only, starting with a letter or digit, at most {MAX_NAME} characters"


# ---------------------------------------------------------------------------------- names
def name_problem(value: str) -> str | None:
    """Why `value` cannot be used as a file name inside an output folder (None if it can)."""
    if not value:
        return "is empty"
    if len(value) > MAX_NAME:
        return f"is {len(value)} characters long (at most {MAX_NAME})"
    if not _NAME.match(value) or ".." in value:
        return f"is not a safe file name ({NAME_RULE})"
    return None


def check_name(value: str, what: str) -> str:
    problem = name_problem(value)
    if problem:
        raise UnicompError(f"{what} {value!r} {problem}", f"rename it: {NAME_RULE}")
    return value


# ---------------------------------------------------------------------------------- checks
def _protected(path: Path) -> str | None:
    resolved = path.resolve()
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if resolved == home:
        return "your home folder"
    if resolved == cwd:
        return "the current folder"
    if resolved in cwd.parents:
        return "a parent of the current folder"
    if resolved in home.parents:
        return "a parent of your home folder"
    return None


def _check_parent(path: Path, what: str, flag: str) -> None:
    """The nearest existing ancestor is a writable folder (missing folders are created later)."""
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UnicompError(f"{what} {path} is under {parent}, which is a file, not a folder",
                           f"choose a path under a folder for {flag}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UnicompError(f"cannot write {what} {path}: {parent} is not writable",
                           f"choose a writable location for {flag}")


def is_unicomp_folder(path: Path) -> bool:
    """A folder unicomp wrote: it holds a readable `unicomp.json` with unicomp's format key."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "format_version" in manifest


def check_output_folder(path: str | Path, *, overwrite: bool, flag: str = "--out") -> Path:
    """Refuse, before any work, a folder unicomp may not (over)write; return it as a Path."""
    path = Path(os.path.normpath(Path(path).expanduser()))  # "a/b/.." is "a": check what will be written
    protected = _protected(path)
    if protected:
        raise UnicompError(f"{flag} {path} is {protected}; unicomp never writes an output over it",
                           f"pass a new folder, e.g. {flag} {path / 'compressed'}")
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise UnicompError(f"{flag} {path} is a file", f"choose a folder path for {flag}")
        if os.path.ismount(path):
            raise UnicompError(f"{flag} {path} is a mount point: a finished output cannot be moved onto it",
                               f"pass a folder inside it, e.g. {flag} {path / 'compressed'}")
        if any(path.iterdir()):
            if not overwrite:
                raise UnicompError(f"output folder {path} already exists",
                                   f"choose another {flag}, or pass --overwrite to replace a folder unicomp wrote")
            if not is_unicomp_folder(path):
                raise UnicompError(
                    f"{flag} {path} holds files unicomp did not write (no {MANIFEST}); "
                    "--overwrite only replaces folders unicomp wrote",
                    f"choose a new folder for {flag}, or move those files away yourself")
    _check_parent(path, "output folder", flag)
    return path


HTML_MARKER = '<meta name="generator" content="unicomp">'  # in the head of every HTML report
FORMAT_KEY = "unicomp_format"  # in every JSON unicomp writes, so it can tell its files from yours
_OLD_LAYOUTS = ({"run_id", "command", "environment", "units"}, {"run_id", "rows", "categories", "export"})
CSV_HEADERS: set[str] = set()  # exact header lines of the CSV files unicomp writes (report/files.py)


def _recognised_file(path: Path) -> bool:
    """A file unicomp wrote and may write again: a JSON with its marker (or the exact layout of an
    earlier release's run JSON), or a CSV whose header is exactly one of unicomp's."""
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            return isinstance(data, dict) and (FORMAT_KEY in data or any(keys <= data.keys() for keys in _OLD_LAYOUTS))
        if path.suffix == ".html":
            with open(path, encoding="utf-8", errors="replace") as fh:
                return HTML_MARKER in fh.read(2048)
        if path.suffix == ".csv":
            with open(path) as fh:
                return fh.readline().rstrip("\r\n") in CSV_HEADERS
    except (OSError, ValueError):
        return False
    return False


def check_output_file(path: str | Path, *, flag: str) -> Path:
    """Refuse, before any work, a file path unicomp cannot or may not write."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UnicompError(f"{flag} {path} is a folder", f"pass a file path for {flag}, e.g. {path / 'run.json'}")
    if path.exists() and not _recognised_file(path):
        raise UnicompError(f"{flag} {path} exists and was not written by unicomp",
                           f"choose a new file name for {flag}, or move that file away yourself")
    _check_parent(path, "output file", flag)
    return path


# ---------------------------------------------------------------------------------- writing
def _temp_prefix(kind: str = TMP) -> str:
    return f"{kind}.{owner.token()}."


def _permissions(path: Path, mode: int) -> None:
    """mkdtemp / mkstemp make owner-only entries; give the result what a plain write would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def write_text(path: str | Path, text: str) -> Path:
    """Write a whole file atomically: readers see the old content or the new, never half."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(), suffix=f".{path.name}", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        _permissions(Path(tmp), 0o666)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def new_temp_folder(parent: str | Path, name: str) -> Path:
    """An empty hidden folder in `parent` owned by this process (cleaned if the process dies)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=_temp_prefix(), suffix=f".{name}", dir=parent))


@contextmanager
def scratch_folder(parent: str | Path, name: str) -> Iterator[Path]:
    """A temporary working folder, removed when the block ends (or by a later process if killed)."""
    clean_leftovers(parent)
    tmp = new_temp_folder(parent, name)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def staged_folder(final: str | Path, *, overwrite: bool, flag: str = "--out") -> Iterator[Path]:
    """Yield an empty hidden folder beside `final`; when the block ends without error it becomes
    `final` (replacing the unicomp folder there, if allowed), otherwise it is removed."""
    final = Path(os.path.abspath(Path(final).expanduser()))
    clean_leftovers(final.parent)
    tmp = new_temp_folder(final.parent, final.name)
    try:
        yield tmp
        failpoint("save.staged")
        check_output_folder(final, overwrite=overwrite, flag=flag)  # it may have changed meanwhile
        for path in [tmp, *tmp.rglob("*")]:
            _permissions(path, 0o777 if path.is_dir() else 0o666)
        _swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(new: Path, final: Path) -> None:
    if not (final.exists() or final.is_symlink()):
        os.rename(new, final)
        return
    old = Path(tempfile.mkdtemp(prefix=_temp_prefix(OLD), suffix=f".{final.name}", dir=final.parent))
    os.rename(final, old / "content")  # one rename each way: a kill in between is undone by clean_leftovers
    failpoint("save.swap")
    os.rename(new, final)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------- cleaning
def _owner_of(name: str) -> tuple[str, str, str] | None:
    """(kind, owner token, final name) of a temporary entry's name, or None if not one of ours."""
    for kind in (TMP, OLD):
        if name.startswith(kind + "."):
            parts = name[len(kind) + 1:].split(".", 4)  # pid, start, host, random, final name
            if len(parts) == 5:
                return kind, ".".join(parts[:3]), parts[4]
    return None


def clean_leftovers(folder: str | Path) -> list[Path]:
    """Remove the temporary outputs that dead processes left in `folder` (not below it); an
    interrupted replacement gets its original folder back. Returns what was removed or restored."""
    folder = Path(folder)
    done: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return done
    for entry in entries:
        parsed = _owner_of(entry.name)
        if parsed is None or not owner.is_dead(parsed[1]):
            continue
        kind, _, final_name = parsed
        final = folder / final_name
        content = entry / "content"
        try:
            if kind == OLD and content.exists() and not (final.exists() or final.is_symlink()):
                os.rename(content, final)  # the new folder never arrived: keep the one we replaced
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue  # another process is cleaning the same entry
        done.append(entry)
    return done
