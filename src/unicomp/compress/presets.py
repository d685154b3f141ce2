"""Named presets: a method plus fixed options, for the recipes other tools (and the paper) name.

A preset is data, resolved before anything else sees the variant, so `method: awq-w4a16` and
`method: awq` with the same options are the same unit. Options given beside a preset override it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""


PRESETS: dict[str, Preset] = {
    "awq-w4a16": Preset("awq", {"bits": 4, "group_size": 128, "symmetric": True},
                        "llm-compressor's W4A16 scheme, as the UniComp study ran AWQ: symmetric int4, groups of 128"),
    "gptq-w4a16": Preset("gptq", {"bits": 4, "group_size": 128, "symmetric": True},
                         "llm-compressor's W4A16 scheme with GPTQ (symmetric int4, groups of 128, act-order)"),
    "smoothquant-w8a8": Preset("smoothquant", {"alpha": 0.8, "weights": "gptq"},
                               "llm-compressor's W8A8 recipe as the paper ran it: smoothing 0.8, then GPTQ "
                               "int8 per-channel weights; int8 per-token activations"),
}


def resolve(method: str, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """(method, options) with a preset name replaced by its method and options (given ones win)."""
    preset = PRESETS.get(method)
    if preset is None:
        return method, dict(options or {})
    return preset.method, {**preset.options, **(options or {})}
