"""Where the parts of a decoder-only model live, per architecture: data, not code.

Compression walks decoder layers one at a time and touches named linear layers inside them.
Llama, Mistral, Qwen2/3 and Gemma 1/2/3 share the same module names; an architecture whose names
differ gets its own entry. To support a new architecture, add its class name here with the
paths of its decoder layers and the linears inside each layer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from unicomp.errors import UnicompError


@dataclass(frozen=True)
class Smoothing:
    """A per-input-channel scale can move between `previous` and `linears` without changing outputs.

    `previous` is a norm or linear whose output feeds exactly `linears` (dividing its output
    channels by s and multiplying the linears' input columns by s is an identity); `inspect` is
    the smallest module whose output depends on all of `linears` (AWQ measures its error there).
    A linear `previous` only qualifies when its output width equals the linears' input width
    (v_proj -> o_proj is skipped under grouped-query attention).
    """

    previous: str
    linears: tuple[str, ...]
    inspect: str


@dataclass(frozen=True)
class Block:
    """A submodule of the decoder layer whose output is `output_linear` applied to that linear's
    input, with nothing after it (attention -> o_proj, MLP -> down_proj).

    Once every other linear of the block is final, the block's output can be recomputed from the
    cached input of `output_linear` alone (see unicomp.compress.block_replay).
    `returns_tuple`: the block returns (output, attention weights), as HF attention modules do.
    """

    module: str
    output_linear: str
    returns_tuple: bool = False


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
    # Where activation outliers can be migrated into weights (SmoothQuant, AWQ), in layer order.
    smoothing: tuple[Smoothing, ...] = ()
    # RMSNorm computes x_hat * (offset + weight): 0 for Llama / Qwen, 1 for Gemma.
    norm_weight_offset: float = 0.0
    # Blocks that end in one linear (lets true-sequential passes skip recomputing finished blocks).
    blocks: tuple[Block, ...] = ()

    @property
    def linears(self) -> tuple[str, ...]:
        return tuple(name for group in self.linear_groups for name in group)


_ATTN_SMOOTHING = (
    Smoothing("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), "self_attn"),
    Smoothing("self_attn.v_proj", ("self_attn.o_proj",), "self_attn.o_proj"),
)
_MLP_SMOOTHING = (Smoothing("mlp.up_proj", ("mlp.down_proj",), "mlp.down_proj"),)
_LLAMA_SMOOTHING = _ATTN_SMOOTHING + (
    Smoothing("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj"), "mlp"),) + _MLP_SMOOTHING
# Gemma 2/3 normalise the attention output (post_attention_layernorm) and the MLP input separately.
_GEMMA2_SMOOTHING = _ATTN_SMOOTHING + (
    Smoothing("pre_feedforward_layernorm", ("mlp.gate_proj", "mlp.up_proj"), "mlp"),) + _MLP_SMOOTHING

_DECODER = Anatomy(
    layers="model.layers", embed_tokens="model.embed_tokens", final_norm="model.norm", lm_head="lm_head",
    linear_groups=(
        ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
        ("self_attn.o_proj",),
        ("mlp.gate_proj", "mlp.up_proj"),
        ("mlp.down_proj",),
    ),
    shared_inputs=(("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), ("mlp.gate_proj", "mlp.up_proj")),
    smoothing=_LLAMA_SMOOTHING,
    blocks=(Block("self_attn", "self_attn.o_proj", returns_tuple=True), Block("mlp", "mlp.down_proj")),
)
_GEMMA = replace(_DECODER, norm_weight_offset=1.0)
_GEMMA2 = replace(_DECODER, smoothing=_GEMMA2_SMOOTHING, norm_weight_offset=1.0)
_GEMMA3_MULTIMODAL = replace(
    _GEMMA2, layers="model.language_model.layers", embed_tokens="model.language_model.embed_tokens",
    final_norm="model.language_model.norm",
)

ANATOMIES: dict[str, Anatomy] = {
    "LlamaForCausalLM": _DECODER,
    "MistralForCausalLM": _DECODER,
    "Qwen2ForCausalLM": _DECODER,
    "Qwen3ForCausalLM": _DECODER,
    "GemmaForCausalLM": _GEMMA,
    "Gemma2ForCausalLM": _GEMMA2,
    "Gemma3ForCausalLM": _GEMMA2,
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
