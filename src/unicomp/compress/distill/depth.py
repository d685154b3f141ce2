"""Minitron depth pruning: rank decoder layers by importance on calibration data, drop the least
important, and leave an ordinary transformers model with fewer layers (config, KV-cache indices
and per-layer attention types follow).

Importance, higher = keep:
- "block_influence" (ShortGPT, Men et al. 2024; Minitron's depth criterion): 1 - the mean cosine
  similarity between a layer's input and output hidden states over calibration tokens. A layer
  that barely turns the residual stream changes little when removed.
- "loss": the increase of the next-token loss on the calibration data when the layer alone is
  skipped (its output replaced by its input). Costs one pass per layer; Minitron's second
  criterion.

First and last layers are kept unless `keep_first_last` is off: both criteria under-rate them
(Minitron, Sreenivas et al. 2024, keeps them too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from unicomp.compress.distill.calibration_pass import run_hooked
from unicomp.errors import UnicompError
from unicomp.models.anatomy import anatomy_of, decoder_layers

IMPORTANCE = ("block_influence", "loss")


class DepthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    drop_layers: int = Field(ge=0, description="how many decoder layers to remove")
    importance: Literal["block_influence", "loss"] = "block_influence"
    keep_first_last: bool = True


def _hidden_in(args: tuple, kwargs: dict[str, Any]) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _hidden_out(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@torch.no_grad()
def block_influence(model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> list[float]:
    """Per layer: 1 - mean cosine(input, output) over the (attention-masked) calibration tokens."""
    layers = decoder_layers(model)
    sums = torch.zeros(len(layers), dtype=torch.float64)
    mask_now: dict[str, torch.Tensor | None] = {"mask": None}

    def hook(index: int):
        def fn(module, args, kwargs, output):  # noqa: ANN001, ANN202
            cos = torch.nn.functional.cosine_similarity(_hidden_in(args, kwargs).float(), _hidden_out(output).float(), dim=-1)
            mask = mask_now["mask"]
            sums[index] += float(cos.sum() if mask is None else (cos * mask).sum())
        return fn

    handles = [layer.register_forward_hook(hook(i), with_kwargs=True) for i, layer in enumerate(layers)]
    count = run_hooked(model, batches, handles, mask_now, "layers")
    return [1.0 - float(s) / count for s in sums]


def _next_token_loss(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]]) -> float:
    total, tokens = 0.0, 0
    for batch in batches:
        labels = batch["input_ids"].clone()
        if batch.get("attention_mask") is not None:
            labels[batch["attention_mask"] == 0] = -100
        out = model(**batch, labels=labels)
        n = int((labels[:, 1:] != -100).sum())
        total += float(out.loss) * n
        tokens += n
    return total / max(tokens, 1)


@torch.no_grad()
def loss_importance(model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> list[float]:
    """Per layer: next-token loss with that layer skipped, minus the full model's loss."""
    batches = list(batches)
    base = _next_token_loss(model, batches)
    scores = []
    for layer in decoder_layers(model):
        def skip(module, args, kwargs, output):  # noqa: ANN001, ANN202
            h = _hidden_in(args, kwargs)
            return (h, *output[1:]) if isinstance(output, tuple) else h
        handle = layer.register_forward_hook(skip, with_kwargs=True)
        try:
            scores.append(_next_token_loss(model, batches) - base)
        finally:
            handle.remove()
    return scores


def layers_to_drop(scores: list[float], config: DepthConfig) -> list[int]:
    """The `drop_layers` least important layers (ties: the later layer first), sorted."""
    n = len(scores)
    protected = {0, n - 1} if config.keep_first_last else set()
    candidates = [i for i in range(n) if i not in protected]
    if config.drop_layers > len(candidates):
        keep = " (first and last are kept; set keep_first_last: false to allow them)" if protected else ""
        raise UnicompError(f"cannot drop {config.drop_layers} of {n} decoder layers{keep}",
                           f"drop at most {len(candidates)} layers: a student cannot be deeper than its teacher "
                           "or empty")
    ranked = sorted(candidates, key=lambda i: (scores[i], -i))
    return sorted(ranked[:config.drop_layers])


def drop_layers(model: torch.nn.Module, drop: list[int]) -> torch.nn.Module:
    """Remove decoder layers `drop` in place; re-index the rest for the KV cache and fix the config."""
    layers = decoder_layers(model)
    bad = [i for i in drop if not 0 <= i < len(layers)]
    if bad or len(set(drop)) != len(drop) or len(drop) >= len(layers):
        raise UnicompError(f"cannot drop layers {drop} of a {len(layers)}-layer model",
                           f"pass distinct indices in [0, {len(layers)}) leaving at least one layer")
    kept = [layer for i, layer in enumerate(layers) if i not in set(drop)]
    parent, _, name = anatomy_of(model).layers.rpartition(".")
    setattr(model.get_submodule(parent), name, torch.nn.ModuleList(kept))
    for new_index, layer in enumerate(kept):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index  # the KV cache is indexed by position in the stack
    config = model.config.get_text_config()
    types = getattr(config, "layer_types", None)
    if types is not None:
        config.layer_types = [t for i, t in enumerate(types) if i not in set(drop)]
    config.num_hidden_layers = len(kept)
    return model


def depth_prune(model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]],
                config: DepthConfig) -> dict[str, Any]:
    """Rank, drop, and return what was done (scores per original layer, dropped indices)."""
    batches = list(batches)
    rank = block_influence if config.importance == "block_influence" else loss_importance
    scores = rank(model, batches)
    drop = layers_to_drop(scores, config)
    if drop:
        drop_layers(model, drop)
    return {"importance": config.importance, "scores": scores, "dropped": drop,
            "layers_before": len(scores), "layers_after": len(scores) - len(drop)}
