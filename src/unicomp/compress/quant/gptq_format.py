"""Read GPTQ-format checkpoints (`quant_method: gptq`; AutoGPTQ / GPTQModel / hub GPTQ-Int4 releases)
onto unicomp's grid, so the paper's public GPTQ checkpoints load on a CPU without CUDA packages.

Per quantized linear (`b` bits, `p = 32 // b` codes per int32 word, `G` the group size):
- `qweight` int32 [in / p, out]: input row i = p*r + j is value j of `qweight[r, o]`;
- `qzeros` int32 [groups, out / p]: output column o = p*c + j is value j of `qzeros[g, c]`;
  checkpoint_format "gptq" (v1) stores zero - 1 (mod 2^b), "gptq_v2" the zero itself;
- `scales` fp16 [groups, out]; `g_idx` int32 [in]: the group of each input row (act-order
  scatters them; rows stay in input order); absent or i // G means contiguous groups.
W[o, i] = scales[g_idx[i], o] * (q[i, o] - zero[g_idx[i], o]), which is unicomp's grid with
q, scale and zero transposed. Checked against GPTQModel 7.6's own packer and CPU kernel
(tests/compress/test_quant_formats.py; fixtures from bench/quant_format_reference.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unicomp.compress.quant import int32_words
from unicomp.compress.quant.checkpoint_config import quant_config, readable
from unicomp.compress.quant.grid import QuantizedWeight, QuantScheme
from unicomp.errors import UnicompError

PACKED_BITS = (2, 4, 8)  # 3-bit codes straddle int32 words in GPTQ's layout: not read
TENSORS = ("qweight", "qzeros", "scales")


def is_gptq_folder(folder: Path) -> bool:
    """A GPTQ folder unicomp reads; others (3-bit, kernel-specific repacks) are left to transformers."""
    return readable(folder, "gptq", _check)


def _check(raw: dict[str, Any], folder: Path) -> tuple[int, int | None, bool, bool]:
    bits = int(raw.get("bits", 4))
    if bits not in PACKED_BITS:
        raise UnicompError(f"{folder}: {bits}-bit GPTQ checkpoints are not readable by unicomp",
                           f"use a {', '.join(map(str, PACKED_BITS))}-bit checkpoint, or load it with transformers + gptqmodel")
    fmt = str(raw.get("checkpoint_format") or raw.get("format") or "gptq").lower()
    if fmt not in ("gptq", "gptq_v2"):
        raise UnicompError(f"{folder}: GPTQ checkpoint_format {fmt!r} (a kernel-specific repack) is not readable",
                           "use a checkpoint in the plain 'gptq' format, or load it with transformers + gptqmodel")
    group = int(raw.get("group_size", 128))
    return bits, (None if group in (-1, 0) else group), bool(raw.get("sym", True)), fmt == "gptq"


def decode(tensors: dict[str, torch.Tensor], bits: int, group_size: int | None, symmetric: bool,
           zeros_minus_one: bool, where: str) -> QuantizedWeight:
    """One linear's GPTQ tensors as a QuantizedWeight (q [out, in], scale/zero [out, groups])."""
    missing = [t for t in TENSORS if t not in tensors]
    if missing:
        raise UnicompError(f"GPTQ linear {where} lacks {', '.join(missing)}", "the checkpoint is incomplete; download it again")
    q = int32_words.unpack(tensors["qweight"], bits, dim=0).t()  # [out, in]
    zero = int32_words.unpack(tensors["qzeros"], bits, dim=1)  # [groups, out]
    if zeros_minus_one:
        zero = (zero + 1) & (2 ** bits - 1)
    scale = tensors["scales"].float()
    out_features, in_features = q.shape
    if scale.shape[1] != out_features or zero.shape[1] != out_features:
        raise UnicompError(f"GPTQ linear {where}: scales {tuple(scale.shape)} / qzeros do not match qweight's "
                           f"{out_features} outputs", "the checkpoint is damaged or of another layout")
    groups = scale.shape[0]
    g_idx = tensors.get("g_idx")
    size = group_size or in_features
    contiguous = torch.arange(in_features) // size
    if g_idx is not None:
        g_idx = g_idx.to(torch.int64)
        if tuple(g_idx.shape) != (in_features,) or bool(g_idx.min() < 0) or bool(g_idx.max() >= groups):
            raise UnicompError(f"GPTQ linear {where}: g_idx is not one group in [0, {groups}) per input row",
                               "the checkpoint is damaged or of another layout")
        if torch.equal(g_idx, contiguous):
            g_idx = None
    if groups != (in_features + size - 1) // size:
        raise UnicompError(f"GPTQ linear {where}: {groups} groups for {in_features} inputs at group size {size}",
                           "the config's group_size does not match the tensors")
    scheme = QuantScheme(bits=bits, symmetric=symmetric, group_size=group_size)
    return QuantizedWeight(q=q.contiguous(), scale=scale.t().contiguous(), zero=zero.float().t().contiguous(),
                           scheme=scheme, g_idx=g_idx)


def load_gptq(folder: str | Path, dtype: torch.dtype | None = None, *, pack: bool = True,
              execution: str = "auto") -> torch.nn.Module:
    """A transformers model from a GPTQ folder: every linear with a `qweight` decoded onto the grid."""
    from unicomp.compress.quant.ct_format import read_tensors, empty_model, finish_quantized

    folder = Path(folder)
    raw = quant_config(folder, "gptq")
    if raw is None:
        raise UnicompError(f"{folder} is not a GPTQ checkpoint (no quant_method: gptq)", "load it with transformers")
    bits, group_size, symmetric, minus_one = _check(raw, folder)
    model, hf_config = empty_model(folder, dtype)
    decoded, rest = split_packed(read_tensors(folder), (*TENSORS, "g_idx"))
    linears = {name: decode(parts, bits, group_size, symmetric, minus_one, name) for name, parts in decoded.items()}
    return finish_quantized(model, hf_config, linears, rest, pack=pack, execution=execution)


def split_packed(state: dict[str, torch.Tensor], names: tuple[str, ...]) -> tuple[dict[str, dict[str, torch.Tensor]],
                                                                               dict[str, torch.Tensor]]:
    """(per linear with a `qweight`: its packed tensors by local name, every other tensor by full name)."""
    owners = {key.removesuffix(".qweight") for key in state if key.endswith(".qweight")}
    parts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in owners}
    rest: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        owner, _, local = key.rpartition(".")
        if owner in owners and local in names:
            parts[owner][local] = tensor
        else:
            rest[key] = tensor
    return parts, rest
