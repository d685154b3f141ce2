"""Reach the Hugging Face hub quickly or not at all.

On a machine without the hub, a plain from_pretrained spends ~23 s in retries (measured here:
DNS failure, 5 retries with backoff) before failing. So before loading we ask the hub API for
the repo's metadata with a short timeout (this also gives the commit sha for provenance and
the file list for the safetensors check) and remember per process and endpoint when the hub is
unreachable. HF_HUB_OFFLINE=1 skips the network entirely and uses only the local hub cache.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PROBE_TIMEOUT_S = 3.0  # a healthy hub answers model_info in well under a second
_UNREACHABLE: dict[str, str] = {}  # endpoint -> reason, memoised for the process
_LOCK = threading.Lock()


class SourceUnavailable(Exception):
    """A source could not provide the model; `kind` says why, so callers can fall back or
    explain: "offline", "unreachable", "missing", "gated", "error"."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class HubRepo:
    repo_id: str
    sha: str
    files: list[str]


def hub_offline() -> bool:
    """HF_HUB_OFFLINE read now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(constants.HF_HUB_OFFLINE)


def endpoint() -> str:
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def probe_timeout() -> float:
    """Seconds to wait for the hub's answer: UNICOMP_HUB_TIMEOUT, default 3."""
    try:
        return float(os.environ.get("UNICOMP_HUB_TIMEOUT") or DEFAULT_PROBE_TIMEOUT_S)
    except ValueError:
        return DEFAULT_PROBE_TIMEOUT_S


def is_hub_id(spec: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(spec)
    except HFValidationError:
        return False
    return True


def forget_reachability() -> None:
    """Drop the memoised "hub unreachable" verdicts (tests, or after the network returns)."""
    with _LOCK:
        _UNREACHABLE.clear()


def probe(repo_id: str, revision: str | None = None, timeout: float | None = None) -> HubRepo:
    """Metadata of `repo_id` from the hub, or SourceUnavailable within ~`timeout` seconds."""
    if hub_offline():
        raise SourceUnavailable("offline", "HF_HUB_OFFLINE=1")
    url = endpoint()
    with _LOCK:
        known = _UNREACHABLE.get(url)
    if known:
        raise SourceUnavailable("unreachable",
                                f"{url} unreachable (earlier in this process: {known})")
    timeout = probe_timeout() if timeout is None else timeout
    result: dict = {}

    def call() -> None:
        from huggingface_hub import HfApi

        try:
            result["info"] = HfApi(endpoint=url).model_info(repo_id, revision=revision,
                                                            timeout=timeout)
        except Exception as exc:  # classified below, in the caller's thread
            result["error"] = exc

    # A thread bounds the wait even when name resolution itself hangs (no timeout there).
    worker = threading.Thread(target=call, daemon=True, name="unicomp-hub-probe")
    worker.start()
    worker.join(timeout + 1.0)
    if worker.is_alive():
        raise _unreachable(url, f"no answer within {timeout:.0f} s")
    if "error" in result:
        raise _classify(url, repo_id, result["error"])
    info = result["info"]
    return HubRepo(repo_id, info.sha, [s.rfilename for s in (info.siblings or [])])


def _classify(url: str, repo_id: str, exc: BaseException) -> SourceUnavailable:
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    if isinstance(exc, GatedRepoError):
        return SourceUnavailable("gated", f"{repo_id} is gated: accept its terms on the hub, "
                                          "then log in (`hf auth login`)")
    if isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError)):
        return SourceUnavailable("missing", f"{repo_id} not found on {url} (or private)")
    if isinstance(exc, HfHubHTTPError):
        return SourceUnavailable("error", f"{url} answered with an error: {text}")
    return _unreachable(url, f"{type(exc).__name__}: {text}")


def _unreachable(url: str, reason: str) -> SourceUnavailable:
    """Remember that `url` is unreachable for this process; the exception to raise."""
    with _LOCK:
        _UNREACHABLE[url] = reason
    return SourceUnavailable("unreachable", f"{url} unreachable ({reason})")


def cached_snapshot(repo_id: str) -> tuple[Path, str] | None:
    """(snapshot folder, commit sha) of `repo_id` in the local hub cache, if it has a config."""
    from huggingface_hub import constants, try_to_load_from_cache

    cache = os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE
    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache)
    if not isinstance(found, str):
        return None
    snapshot = Path(found).parent
    return snapshot, snapshot.name
