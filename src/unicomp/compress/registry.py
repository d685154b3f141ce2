"""Every compression method by name: the one place `unicomp compress` and run configs look."""

from __future__ import annotations

import difflib
from typing import Any

from unicomp.compress.base import Method
from unicomp.compress.prune.magnitude import Magnitude
from unicomp.compress.prune.sparsegpt import SparseGPT
from unicomp.compress.prune.wanda import Wanda
from unicomp.compress.quant.awq import AWQ
from unicomp.compress.quant.gptq import GPTQ
from unicomp.compress.quant.rtn import RTN
from unicomp.compress.quant.smoothquant import SmoothQuant
from unicomp.errors import NotFoundError, UnicompError

METHODS: dict[str, type[Method]] = {m.name: m for m in (Magnitude, Wanda, SparseGPT, RTN, GPTQ, AWQ, SmoothQuant)}


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        close = difflib.get_close_matches(name, METHODS, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise NotFoundError(f"unknown compression method {name!r}{hint}", f"known methods: {', '.join(METHODS)}")
    return METHODS[name]


def make_method(name: str, options: dict[str, Any]) -> Method:
    """A configured method; bad options give one line naming the option."""
    from pydantic import ValidationError

    cls = get_method(name)
    try:
        return cls(cls.Config(**options))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or name
        msg = first["msg"]
        if first.get("ctx", {}).get("error") is not None and isinstance(first["ctx"]["error"], UnicompError):
            raise first["ctx"]["error"] from None
        raise UnicompError(f"{name}: option {where!r}: {msg}", f"see `unicomp ls methods` for {name}'s options") from None
