"""The compressed-tensors `sparse-bitmask` and `sparse-24-bitmask` layouts: pruned weights stored
as their kept values + a bitmask.

For each pruned weight W (R x C) the checkpoint holds `<name>.compressed` (its nonzero values,
row by row), `<name>.bitmask` (uint8, R x ceil(C/8), little-endian bits, 1 = nonzero),
`<name>.shape` and `<name>.row_offsets` (start of each row in `compressed`), and config.json
carries `quantization_config = {"quant_method": "compressed-tensors", "format": "sparse-bitmask",
"sparsity_config": ...}`, the layout compressed-tensors and vLLM read. A 50%-sparse fp32 weight
takes ~2.1 bytes per entry instead of 4. Bits are packed with compressed-tensors' own helpers;
its 0.20 release no longer ships the bitmask compressors themselves, so the layouts are written here.

`sparse-24-bitmask` (2:4 weights, the layout vLLM's 2:4 sparse kernels are fed from):
`<module>.compressed` [R, C/2] (the two kept values of every group of 4), `<module>.bitmask` and
`<module>.shape` ([2, 1]); about 17 bits per fp32 weight instead of 32.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

FORMAT = "sparse-bitmask"
FORMAT_24 = "sparse-24-bitmask"  # 2:4: two kept values of every 4, a [R, C/2] values tensor (vLLM's 2:4 layout)
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


def compress_weight_24(weight: torch.Tensor, name: str = "a weight") -> dict[str, torch.Tensor]:
    """compressed-tensors' `sparse-24-bitmask`: in every group of 4 consecutive entries of a row the
    two largest |w| are kept (a 2:4-pruned weight has at most two nonzeros there, so nothing is
    lost), as a [R, C/2] values tensor, with their positions as a bitmask and the shape as [2, 1]."""
    from unicomp.errors import UnicompError

    pack, _ = _packers()
    w = weight.detach().cpu()
    rows, cols = w.shape
    if cols % 4:
        raise UnicompError(f"{name} has {cols} input columns, not a multiple of 4: it cannot be 2:4",
                           "store it with --storage sparse-bitmask")
    groups = w.reshape(-1, 4)
    over = int(((groups != 0).sum(dim=1) > 2).sum())
    if over:
        raise UnicompError(f"{name} is not 2:4 sparse: {over} groups of 4 hold more than 2 nonzeros",
                           "prune with pattern 2:4, or store it with --storage sparse-bitmask")
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, groups.abs().topk(2, dim=1).indices, True)
    mask = keep.reshape(rows, cols)
    return {"shape": torch.tensor([rows, cols]).reshape(-1, 1), "compressed": w[mask].reshape(rows, cols // 2),
            "bitmask": pack(mask)}


def decompress_weight(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    _, unpack = _packers()
    shape = [int(v) for v in parts["shape"].reshape(-1).tolist()]
    mask = unpack(parts["bitmask"], shape)
    dense = torch.zeros(shape, dtype=parts["compressed"].dtype)
    dense[mask] = parts["compressed"].reshape(-1)  # 1-D (sparse-bitmask) or [R, C/2] (sparse-24-bitmask), row-major
    return dense


def save_sparse_bitmask(model: torch.nn.Module, folder: Path, targets: list[str], structure: str, sparsity: float,
                        fmt: str = FORMAT) -> None:
    """Rewrite `folder/model.safetensors` (written by save_pretrained) with `targets` compressed in
    `fmt` (sparse-bitmask, or sparse-24-bitmask for 2:4 weights)."""
    path = folder / "model.safetensors"
    state = load_file(path)
    out: dict[str, torch.Tensor] = {}
    wanted = {f"{t}.weight" for t in targets}
    for name, tensor in state.items():
        if name in wanted:
            if fmt == FORMAT_24:  # named by module, as compressed-tensors' 2:4 compressor names them
                parts, prefix = compress_weight_24(tensor, name), name.removesuffix(".weight")
            else:
                parts, prefix = compress_weight(tensor), name
            for suffix, value in parts.items():
                out[f"{prefix}.{suffix}"] = value.contiguous()
        else:
            out[name] = tensor.contiguous()
    save_file(out, str(path), metadata={"format": "pt"})
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["quantization_config"] = {
        "quant_method": "compressed-tensors", "format": fmt, "config_groups": {},
        "sparsity_config": {"format": fmt, "global_sparsity": sparsity, "sparsity_structure": structure,
                            "targets": sorted(targets), "ignore": []},
    }
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))


def _format_of(folder: Path) -> str | None:
    config = folder / "config.json"
    if not config.is_file():
        return None
    q = json.loads(config.read_text()).get("quantization_config") or {}
    return q.get("format") if q.get("quant_method") == "compressed-tensors" else None


def is_sparse_bitmask(folder: Path) -> bool:
    return _format_of(folder) == FORMAT


def is_sparse_24_bitmask(folder: Path) -> bool:
    return _format_of(folder) == FORMAT_24


def dense_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a sparse-bitmask / sparse-24-bitmask checkpoint, decompressed to its dense form."""
    state: dict[str, torch.Tensor] = {}
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for file in sorted(folder.glob("*.safetensors")):
        loaded = load_file(file)
        names = set(loaded)
        for name, tensor in loaded.items():
            base, _, suffix = name.rpartition(".")
            if suffix in _SUFFIXES and f"{base}.compressed" in names:  # `x.weight.*` or (2:4) `x.*`
                parts.setdefault(base if base.endswith(".weight") else f"{base}.weight", {})[suffix] = tensor
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
