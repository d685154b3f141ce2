"""Minitron width pruning: keep the most important MLP channels, attention heads (whole KV groups
and query heads within them, so grouped-query attention stays valid) and embedding channels, ranked
by activations on calibration data, and build the student from a new config.

Importance (Minitron, Muralidharan et al. 2024, activation-based; we aggregate by the mean absolute
activation over the calibration tokens, padding excluded; the paper ablates other aggregations):
- MLP channel j: |input of down_proj|[..., j], per layer;
- query head h: the L2 norm of its slice of o_proj's input, per layer; a KV group scores the sum of
  its query heads;
- embedding channel c: |output of every hidden-size norm|[..., c], summed over all layers (one set
  of channels for the whole model, since the residual stream is shared).

The student is built with `from_config` on the new config and loaded from the sliced teacher state
dict, so it is exactly the model a reload of its folder gives (Gemma's embedding scale, for one,
follows the new width). head_dim is kept and written explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from unicomp.compress.distill.calibration_pass import run_hooked
from unicomp.compress.distill.student_config import derive_config, load_weights
from unicomp.errors import UnicompError
from unicomp.models.anatomy import ANATOMIES, anatomy_of, decoder_layers

SUPPORTED = tuple(name for name, a in ANATOMIES.items() if a.layers == "model.layers")


class WidthConfig(BaseModel):
    """Target sizes; None keeps the teacher's."""

    model_config = ConfigDict(extra="forbid")

    hidden_size: int | None = Field(None, gt=0)
    intermediate_size: int | None = Field(None, gt=0)
    num_attention_heads: int | None = Field(None, gt=0)
    num_key_value_heads: int | None = Field(None, gt=0)


def _shape(config: Any) -> dict[str, int]:
    heads = config.num_attention_heads
    return {"hidden_size": config.hidden_size, "intermediate_size": config.intermediate_size,
            "num_attention_heads": heads, "num_key_value_heads": getattr(config, "num_key_value_heads", None) or heads,
            "head_dim": getattr(config, "head_dim", None) or config.hidden_size // heads}


def student_shape(teacher_config: Any, target: WidthConfig) -> dict[str, int]:
    """The student's sizes, checked: no dimension grows, heads stay whole groups, width is whole heads."""
    t = _shape(teacher_config)
    s = {**t, **{k: v for k, v in target.model_dump().items() if v is not None}}
    for key in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads"):
        if s[key] > t[key]:
            raise UnicompError(f"the student's {key} {s[key]} is larger than the teacher's {t[key]}",
                               "width pruning only removes channels: ask for at most the teacher's size")
    if target.num_attention_heads is not None and target.num_key_value_heads is None:
        s["num_key_value_heads"] = min(t["num_key_value_heads"], s["num_attention_heads"])
    if s["num_attention_heads"] % s["num_key_value_heads"]:
        raise UnicompError(f"{s['num_attention_heads']} query heads cannot be split over {s['num_key_value_heads']} "
                           "key/value groups", "ask for a number of attention heads divisible by num_key_value_heads")
    if s["hidden_size"] % t["head_dim"]:
        raise UnicompError(f"hidden_size {s['hidden_size']} is not divisible by the head size {t['head_dim']}",
                           f"ask for a multiple of {t['head_dim']}")
    if s["hidden_size"] % s["num_attention_heads"]:  # transformers validates this for Llama-family configs
        raise UnicompError(f"hidden_size {s['hidden_size']} is not divisible by {s['num_attention_heads']} attention heads",
                           "transformers requires it: ask for a hidden size that is a multiple of the head count")
    return s


@torch.no_grad()
def width_importance(model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Per-layer MLP channel and query-head scores, and model-wide embedding-channel scores."""
    shape = _shape(model.config)
    layers = decoder_layers(model)
    mlp = [torch.zeros(shape["intermediate_size"], dtype=torch.float64) for _ in layers]
    heads = [torch.zeros(shape["num_attention_heads"], dtype=torch.float64) for _ in layers]
    hidden = torch.zeros(shape["hidden_size"], dtype=torch.float64)
    state: dict[str, Any] = {"mask": None}

    def masked_sum(x: torch.Tensor) -> torch.Tensor:  # [B, S, C] -> [C], padding excluded
        mask = state["mask"]
        x = x.float() if mask is None else x.float() * mask[..., None]
        return x.reshape(-1, x.shape[-1]).sum(0).double()

    def on_down(i: int):
        def fn(module, args) -> None:  # noqa: ANN001 - returns None: a pre-hook's return value replaces the input
            mlp[i].add_(masked_sum(args[0].abs()))
        return fn

    def on_o(i: int):
        def fn(module, args) -> None:  # noqa: ANN001
            x = args[0]
            per_head = x.reshape(*x.shape[:-1], shape["num_attention_heads"], shape["head_dim"]).float().norm(dim=-1)
            heads[i].add_(masked_sum(per_head))
        return fn

    def on_norm(module, args, output) -> None:  # noqa: ANN001
        hidden.add_(masked_sum(output.abs()))

    handles = []
    for i, layer in enumerate(layers):
        handles.append(layer.mlp.down_proj.register_forward_pre_hook(on_down(i)))
        handles.append(layer.self_attn.o_proj.register_forward_pre_hook(on_o(i)))
        for name, module in layer.named_children():
            weight = getattr(module, "weight", None)
            if name.endswith("layernorm") and weight is not None and weight.numel() == shape["hidden_size"]:
                handles.append(module.register_forward_hook(on_norm))
    tokens = run_hooked(model, batches, handles, state, "channels")
    return {"mlp": [m / tokens for m in mlp], "heads": [h / tokens for h in heads], "hidden": hidden / tokens}


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k highest scores, in their original order (ties: the earlier index)."""
    order = sorted(range(scores.numel()), key=lambda i: (-float(scores[i]), i))
    return torch.tensor(sorted(order[:k]), dtype=torch.long)


def _kept_heads(scores: torch.Tensor, t: dict[str, int], s: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept query heads, kept KV groups): the best groups, then the best query heads inside each."""
    per_group = t["num_attention_heads"] // t["num_key_value_heads"]
    groups = _top(scores.reshape(t["num_key_value_heads"], per_group).sum(-1), s["num_key_value_heads"])
    keep_per_group = s["num_attention_heads"] // s["num_key_value_heads"]
    queries = [g * per_group + _top(scores[g * per_group:(g + 1) * per_group], keep_per_group) for g in groups.tolist()]
    return torch.cat(queries), groups


def _rows(head_index: torch.Tensor, head_dim: int) -> torch.Tensor:
    return (head_index[:, None] * head_dim + torch.arange(head_dim)).reshape(-1)


def prune_width(model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]],
                target: WidthConfig) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A new, narrower model (the teacher is left as it was) and what was kept."""
    from transformers import AutoModelForCausalLM

    name = type(model).__name__
    if name not in SUPPORTED:
        raise UnicompError(f"width pruning does not support {name} yet", f"use one of: {', '.join(SUPPORTED)}")
    anatomy_of(model)
    t, s = _shape(model.config), student_shape(model.config, target)
    scores = width_importance(model, batches)
    hk = _top(scores["hidden"], s["hidden_size"])
    hd = t["head_dim"]
    heads = [_kept_heads(h, t, s) for h in scores["heads"]]  # per layer: (query heads, KV groups)
    channels = [_top(m, s["intermediate_size"]) for m in scores["mlp"]]
    new: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        layer = int(parts[2]) if parts[:2] == ["model", "layers"] else None
        leaf = ".".join(parts[3:]) if layer is not None else key
        if layer is not None:
            (q, g), mk = heads[layer], channels[layer]
        if key in ("model.embed_tokens.weight", "lm_head.weight"):
            new[key] = value[:, hk]
        elif key == "model.norm.weight" or (layer is not None and leaf.endswith("layernorm.weight")):
            new[key] = value[hk]
        elif layer is not None and leaf.startswith("self_attn.q_proj."):
            new[key] = value[_rows(q, hd)][:, hk] if value.dim() == 2 else value[_rows(q, hd)]
        elif layer is not None and leaf.startswith(("self_attn.k_proj.", "self_attn.v_proj.")):
            new[key] = value[_rows(g, hd)][:, hk] if value.dim() == 2 else value[_rows(g, hd)]
        elif layer is not None and leaf == "self_attn.o_proj.weight":
            new[key] = value[hk][:, _rows(q, hd)]
        elif layer is not None and leaf == "self_attn.o_proj.bias":
            new[key] = value[hk]
        elif layer is not None and leaf.startswith(("mlp.gate_proj.", "mlp.up_proj.")):
            new[key] = value[mk][:, hk] if value.dim() == 2 else value[mk]
        elif layer is not None and leaf == "mlp.down_proj.weight":
            new[key] = value[hk][:, mk]
        elif layer is not None and leaf == "mlp.down_proj.bias":
            new[key] = value[hk]
        elif layer is not None and leaf.startswith(("self_attn.q_norm.", "self_attn.k_norm.")):
            new[key] = value  # per head_dim, which is kept
        else:
            raise UnicompError(f"width pruning does not know how to slice {key} of {name}",
                               "this architecture variant is not supported for width pruning yet")
    config = derive_config(model.config, s, "choose sizes the architecture accepts")
    student = load_weights(AutoModelForCausalLM.from_config(config, dtype=next(model.parameters()).dtype), new,
                           "width pruning")
    return student, {"teacher": t, "student": s, "kept_hidden_channels": hk.tolist(),
                     "kept_query_heads": [q.tolist() for q, _ in heads], "kept_mlp_channels": [m.tolist() for m in channels]}
