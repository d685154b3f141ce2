"""The Hugging Face hub through `datasets.load_dataset`: what real users with network get.

On a machine without the hub, `load_dataset` retries for about 23 s before failing, so one
short `dataset_info` call probes first. A network failure is remembered for the rest of the
process (one wait at most); an HTTP answer means the hub is up. The probe also gives the commit
sha recorded as the revision. Timeout: `UNICOMP_HUB_TIMEOUT` seconds (default 5).

A gated dataset (GPQA) is served only to an account that accepted its terms, so every miss of one
(offline, unreachable, or refused) says how to get access, not just that the hub missed.
"""

from __future__ import annotations

import os
from pathlib import Path

from unicomp.data.sources._common import Served, SourceMiss
from unicomp.errors import UnicompError

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}

# endpoint -> why it is unreachable; filled on the first network failure in this process.
_unreachable: dict[str, str] = {}

# Datasets known to be gated on the hub (their files need an accepted licence and a token).
GATED_DATASETS = frozenset({"Idavidrein/gpqa", "TrustLLM/TrustLLM-dataset"})

# Datasets the hub keeps as original files, not configs and splits: config = folder, split = the
# file's stem. The file itself is downloaded and parsed as the mirror parses it: Arrow cannot hold
# TrustLLM's records (one file mixes a list and an object under the same field).
FILE_DATASETS: dict[str, str] = {"TrustLLM/TrustLLM-dataset": "{config}/{split}.json"}


def access_hint(dataset_id: str) -> str:
    """How to get a gated dataset: accept its terms on its hub page, then log in on this machine."""
    return (f"{dataset_id} is gated on the Hugging Face hub: accept its terms at "
            f"https://huggingface.co/datasets/{dataset_id} (logged in), then run `hf auth login` "
            "(`huggingface-cli login` before huggingface_hub 1.0) or set HF_TOKEN here")


def fetch(dataset_id: str, config: str | None, split: str, *, data_dir: str | Path | None = None) -> Served:
    """Rows of one split from the hub, or SourceMiss saying why the hub cannot serve it."""
    try:
        return _fetch(dataset_id, config, split)
    except SourceMiss as miss:
        if dataset_id in GATED_DATASETS and dataset_id not in miss.reason:
            raise SourceMiss(f"{miss.reason}; {access_hint(dataset_id)}", configured=miss.configured) from None
        raise


def _fetch(dataset_id: str, config: str | None, split: str) -> Served:
    for var in _OFFLINE_VARS:
        if os.environ.get(var, "").strip().lower() in _TRUE:
            raise SourceMiss(f"offline mode ({var}={os.environ[var]})", configured=False)
    sha = _probe(dataset_id)
    import datasets  # deferred: importing datasets costs ~0.6 s and most runs use the mirror

    if dataset_id in FILE_DATASETS:
        return _fetch_file(dataset_id, FILE_DATASETS[dataset_id].format(config=config, split=split), sha)
    try:
        dataset = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as exc:  # any loader failure is a miss; the next source may have the data
        if is_gated_error(exc):
            raise SourceMiss(access_hint(dataset_id)) from None
        if "script" not in str(exc).lower():
            raise SourceMiss(f"load_dataset failed: {_first_line(exc)}") from None
        # Script-based repos (e.g. ybisk/piqa) no longer load with datasets >= 4; the hub keeps an
        # automatic Parquet conversion of them on the refs/convert/parquet branch, same rows.
        try:
            dataset = datasets.load_dataset(dataset_id, config, split=split, revision="refs/convert/parquet")
        except Exception as exc2:
            raise SourceMiss(f"load_dataset failed: {_first_line(exc)}; parquet branch: {_first_line(exc2)}") from None
    return Served(rows=dataset.to_list(), source="hub", location=dataset_id, revision=sha or "unknown")


def _fetch_file(dataset_id: str, filename: str, sha: str | None) -> Served:
    from huggingface_hub import hf_hub_download

    from unicomp.data.jsonl import parse_json_array_lines, parse_jsonl_lines

    try:
        path = Path(hf_hub_download(dataset_id, filename, repo_type="dataset", revision=sha))
    except Exception as exc:
        if is_gated_error(exc):
            raise SourceMiss(access_hint(dataset_id)) from None
        raise SourceMiss(f"download of {filename} failed: {_first_line(exc)}") from None
    parse = parse_json_array_lines if filename.endswith(".json") else parse_jsonl_lines
    rows, lines = parse(path.read_bytes(), path)
    return Served(rows=rows, source="hub", location=f"{dataset_id}/{filename}", revision=sha or "unknown", lines=lines)


def _probe(dataset_id: str) -> str | None:
    """The dataset's commit sha, or SourceMiss if the hub is unreachable or lacks the dataset."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    timeout = _timeout()
    endpoint = constants.ENDPOINT
    if endpoint in _unreachable:
        raise SourceMiss(_unreachable[endpoint])
    try:
        info = HfApi(endpoint=endpoint).dataset_info(dataset_id, timeout=timeout)
    except GatedRepoError:
        raise SourceMiss(access_hint(dataset_id)) from None
    except RepositoryNotFoundError:
        raise SourceMiss(f"{dataset_id} not found on the hub (or private)") from None
    except HfHubHTTPError:
        return None  # the hub answered, so it is reachable; let load_dataset try
    except Exception as exc:  # connection refused, DNS failure, timeout, proxy error
        _unreachable[endpoint] = f"{endpoint} unreachable ({_first_line(exc)})"
        raise SourceMiss(_unreachable[endpoint]) from None
    return info.sha


def is_gated_error(exc: BaseException) -> bool:
    """Whether a loader failure is the hub refusing a gated repo (datasets wraps GatedRepoError)."""
    from huggingface_hub.errors import GatedRepoError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, GatedRepoError) or "is a gated dataset" in str(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _timeout() -> float:
    value = os.environ.get("UNICOMP_HUB_TIMEOUT", "5")
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise UnicompError(f"UNICOMP_HUB_TIMEOUT={value!r} is not a positive number of seconds",
                           "set it to e.g. 5, or unset it")
    return seconds


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
