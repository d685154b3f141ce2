"""Read AWQ-format checkpoints (`quant_method: awq`, `version: gemm`; AutoAWQ / GPTQModel / hub
AWQ releases) onto unicomp's grid, without CUDA packages.

Per quantized linear (4-bit, 8 codes per int32 word, `G` the group size):
- `qweight` int32 [in, out / 8] and `qzeros` int32 [groups, out / 8]: slot j of word c holds
  output column 8c + [0, 2, 4, 6, 1, 3, 5, 7][j] (the GEMM kernel's interleave);
- zeros are stored as they are (no minus one); `scales` fp16 [groups, out]; group = i // G.
W[o, i] = scales[i // G, o] * (q[i, o] - zero[i // G, o]). AWQ folds its activation scales into
the preceding norms and linears, so every other tensor comes from the checkpoint too. Checked
against GPTQModel 7.6's AWQ packer and CPU kernel (tests/compress/test_quant_formats.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unicomp.compress.quant import int32_words
from unicomp.compress.quant.checkpoint_config import quant_config, readable
from unicomp.compress.quant.gptq_format import split_packed
from unicomp.compress.quant.grid import QuantizedWeight, QuantScheme
from unicomp.errors import UnicompError

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
TENSORS = ("qweight", "qzeros", "scales")


def is_awq_folder(folder: Path) -> bool:
    """An AWQ folder unicomp reads (4-bit GEMM with zero points); others are left to transformers."""
    return readable(folder, "awq", _check)


def _check(raw: dict[str, Any], folder: Path) -> int | None:
    bits = int(raw.get("bits", raw.get("w_bit", 4)))
    version = str(raw.get("version") or raw.get("format") or "gemm").lower()
    if bits != 4 or version != "gemm":
        raise UnicompError(f"{folder}: AWQ {bits}-bit {version!r} checkpoints are not readable by unicomp (4-bit "
                           "GEMM only)", "use a 4-bit GEMM AWQ checkpoint, or load it with transformers + its kernels")
    if not raw.get("zero_point", True):
        raise UnicompError(f"{folder}: AWQ without zero points is not readable by unicomp",
                           "use a zero-point AWQ checkpoint (AutoAWQ's default)")
    group = int(raw.get("group_size", raw.get("q_group_size", 128)))
    return None if group in (-1, 0) else group


def decode(tensors: dict[str, torch.Tensor], group_size: int | None, where: str) -> QuantizedWeight:
    """One linear's AWQ tensors as a QuantizedWeight (q [out, in], scale/zero [out, groups])."""
    missing = [t for t in TENSORS if t not in tensors]
    if missing:
        raise UnicompError(f"AWQ linear {where} lacks {', '.join(missing)}", "the checkpoint is incomplete; download it again")
    q = int32_words.unpack(tensors["qweight"], 4, dim=1, order=AWQ_ORDER).t()  # [out, in]
    zero = int32_words.unpack(tensors["qzeros"], 4, dim=1, order=AWQ_ORDER)  # [groups, out]
    scale = tensors["scales"].float()
    out_features, in_features = q.shape
    size = group_size or in_features
    if scale.shape != zero.shape or scale.shape != ((in_features + size - 1) // size, out_features):
        raise UnicompError(f"AWQ linear {where}: scales {tuple(scale.shape)} and qzeros {tuple(zero.shape)} do not "
                           f"match qweight's {in_features} x {out_features} at group size {size}",
                           "the config's group_size does not match the tensors")
    return QuantizedWeight(q=q.contiguous(), scale=scale.t().contiguous(), zero=zero.float().t().contiguous(),
                           scheme=QuantScheme(bits=4, symmetric=False, group_size=group_size))


def load_awq(folder: str | Path, dtype: torch.dtype | None = None, *, pack: bool = True,
             execution: str = "auto") -> torch.nn.Module:
    """A transformers model from an AWQ GEMM folder: every linear with a `qweight` decoded onto the grid."""
    from unicomp.compress.quant.ct_format import read_tensors, empty_model, finish_quantized

    folder = Path(folder)
    raw = quant_config(folder, "awq")
    if raw is None:
        raise UnicompError(f"{folder} is not an AWQ checkpoint (no quant_method: awq)", "load it with transformers")
    group_size = _check(raw, folder)
    model, hf_config = empty_model(folder, dtype)
    parts, rest = split_packed(read_tensors(folder), TENSORS)
    linears = {name: decode(tensors, group_size, name) for name, tensors in parts.items()}
    return finish_quantized(model, hf_config, linears, rest, pack=pack, execution=execution)
