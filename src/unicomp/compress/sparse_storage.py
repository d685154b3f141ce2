"""The compressed-tensors `sparse-bitmask` layout: pruned weights stored as nonzeros + a bitmask.

For each pruned weight W (R x C) the checkpoint holds `<name>.compressed` (its nonzero values,
row by row), `<name>.bitmask` (uint8, R x ceil(C/8), little-endian bits, 1 = nonzero),
`<name>.shape` and `<name>.row_offsets` (start of each row in `compressed`), and config.json
carries `quantization_config = {"quant_method": "compressed-tensors", "format": "sparse-bitmask",
"sparsity_config": ...}`, the layout compressed-tensors and vLLM read. A 50%-sparse fp32 weight
takes ~2.1 bytes per entry instead of 4. Bits are packed with compressed-tensors' own helpers;
its 0.20 release no longer ships the bitmask compressor itself, so the layout is written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

FORMAT = "sparse-bitmask"
_SUFFIXES = ("compressed", "bitmask", "shape", "row_offsets")


def _packers():
    from compressed_tensors.utils.helpers import pack_bitmasks, unpack_bitmasks

    return pack_bitmasks, unpack_bitmasks


def compress_weight(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    pack, _ = _packers()
    w = weight.detach().cpu()
    mask = w != 0
    counts = mask.sum(dim=1)
    return {
        "compressed": w[mask],
        "bitmask": pack(mask),
        "shape": torch.tensor(list(w.shape), dtype=torch.int32),
        "row_offsets": (torch.cumsum(counts, 0) - counts).to(torch.int32),
    }


def decompress_weight(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    _, unpack = _packers()
    shape = [int(v) for v in parts["shape"].tolist()]
    mask = unpack(parts["bitmask"], shape)
    dense = torch.zeros(shape, dtype=parts["compressed"].dtype)
    dense[mask] = parts["compressed"]
    return dense


def save_sparse_bitmask(model: torch.nn.Module, folder: Path, targets: list[str], structure: str, sparsity: float) -> None:
    """Rewrite `folder/model.safetensors` (written by save_pretrained) with `targets` compressed."""
    path = folder / "model.safetensors"
    state = load_file(path)
    out: dict[str, torch.Tensor] = {}
    wanted = {f"{t}.weight" for t in targets}
    for name, tensor in state.items():
        if name in wanted:
            for suffix, value in compress_weight(tensor).items():
                out[f"{name}.{suffix}"] = value.contiguous()
        else:
            out[name] = tensor.contiguous()
    save_file(out, str(path), metadata={"format": "pt"})
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["quantization_config"] = {
        "quant_method": "compressed-tensors", "format": FORMAT, "config_groups": {},
        "sparsity_config": {"format": FORMAT, "global_sparsity": sparsity, "sparsity_structure": structure,
                            "targets": sorted(targets), "ignore": []},
    }
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))


def is_sparse_bitmask(folder: Path) -> bool:
    config = folder / "config.json"
    if not config.is_file():
        return False
    q = json.loads(config.read_text()).get("quantization_config") or {}
    return q.get("quant_method") == "compressed-tensors" and q.get("format") == FORMAT


def dense_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a sparse-bitmask checkpoint, decompressed to its dense form."""
    state: dict[str, torch.Tensor] = {}
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for file in sorted(folder.glob("*.safetensors")):
        for name, tensor in load_file(file).items():
            base, _, suffix = name.rpartition(".")
            if suffix in _SUFFIXES and base.endswith(".weight"):
                parts.setdefault(base, {})[suffix] = tensor
            else:
                state[name] = tensor
    for name, p in parts.items():
        state[name] = decompress_weight(p)
    return state


def load_sparse_bitmask(folder: Path, dtype: torch.dtype):
    """A dense transformers model from a sparse-bitmask folder (config without the quantization block)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(folder))
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    state = dense_state_dict(folder)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {k for k in missing if k.endswith("lm_head.weight") and getattr(config, "tie_word_embeddings", False)}
    if set(missing) - tied or unexpected:
        raise ValueError(f"checkpoint does not match its config: missing {sorted(set(missing) - tied)[:3]}, "
                         f"unexpected {sorted(unexpected)[:3]}")
    if tied:
        model.tie_weights()
    return model
