"""Where the parts of a decoder-only model live, per architecture: data, not code.

Compression walks decoder layers one at a time and touches named linear layers inside them.
Llama, Mistral, Qwen2/3 and Gemma 1/2/3 share the same module names; an architecture whose names
differ gets its own entry. To support a new architecture, add its class name here with the
paths of its decoder layers and the linears inside each layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unicomp.errors import UnicompError


@dataclass(frozen=True)
class Anatomy:
    layers: str  # dotted path of the ModuleList of decoder layers
    embed_tokens: str
    final_norm: str
    lm_head: str
    # Linears inside one decoder layer, in the order their inputs become available: each group's
    # inputs depend only on earlier groups' outputs (used for true-sequential compression).
    linear_groups: tuple[tuple[str, ...], ...]
    # Linears that read the very same input tensor (their input statistics are computed once).
    shared_inputs: tuple[tuple[str, ...], ...] = ()

    @property
    def linears(self) -> tuple[str, ...]:
        return tuple(name for group in self.linear_groups for name in group)


_DECODER = Anatomy(
    layers="model.layers", embed_tokens="model.embed_tokens", final_norm="model.norm", lm_head="lm_head",
    linear_groups=(
        ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
        ("self_attn.o_proj",),
        ("mlp.gate_proj", "mlp.up_proj"),
        ("mlp.down_proj",),
    ),
    shared_inputs=(("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), ("mlp.gate_proj", "mlp.up_proj")),
)
_GEMMA3_MULTIMODAL = Anatomy(
    layers="model.language_model.layers", embed_tokens="model.language_model.embed_tokens",
    final_norm="model.language_model.norm", lm_head="lm_head", linear_groups=_DECODER.linear_groups,
    shared_inputs=_DECODER.shared_inputs,
)

ANATOMIES: dict[str, Anatomy] = {
    "LlamaForCausalLM": _DECODER,
    "MistralForCausalLM": _DECODER,
    "Qwen2ForCausalLM": _DECODER,
    "Qwen3ForCausalLM": _DECODER,
    "GemmaForCausalLM": _DECODER,
    "Gemma2ForCausalLM": _DECODER,
    "Gemma3ForCausalLM": _DECODER,
    "Gemma3ForConditionalGeneration": _GEMMA3_MULTIMODAL,
}


def anatomy_of(model: torch.nn.Module) -> Anatomy:
    name = type(model).__name__
    if name not in ANATOMIES:
        raise UnicompError(
            f"unicomp does not know the anatomy of {name}",
            f"add '{name}' to ANATOMIES in unicomp/models/anatomy.py with its decoder-layer and linear paths; "
            f"known: {', '.join(sorted(ANATOMIES))}",
        )
    return ANATOMIES[name]


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    return model.get_submodule(anatomy_of(model).layers)
