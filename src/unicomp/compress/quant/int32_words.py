"""Integer codes packed into int32 words, as the GPTQ and AWQ checkpoint formats store them.

Value j of a word sits in bits [j*bits, (j+1)*bits); `order` names, for each of those slots, which
position of the unpacked run it holds (AWQ's GEMM layout interleaves: slot j holds position
[0, 2, 4, 6, 1, 3, 5, 7][j]).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def unpack(words: torch.Tensor, bits: int, dim: int, order: Sequence[int] | None = None) -> torch.Tensor:
    """int32 words -> int32 codes in [0, 2^bits), 32 // bits of them per word along `dim`."""
    shifts = torch.arange(0, 32, bits, dtype=torch.int32, device=words.device)
    w = words.to(torch.int32).movedim(dim, -1)
    codes = (w.unsqueeze(-1) >> shifts) & (2 ** bits - 1)  # [..., words, slot]
    if order is not None:
        codes = codes[..., torch.argsort(torch.tensor(list(order), device=words.device))]
    return codes.flatten(-2).movedim(-1, dim).contiguous()
