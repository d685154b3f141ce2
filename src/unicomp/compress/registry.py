"""Every compression method by name: the one place `unicomp compress` and run configs look.

Methods register themselves where they are defined (`@register` above the class, next to its
pydantic config), and every module of the method packages is imported on first lookup, so a new
method is one new file in `compress/prune/`, `compress/quant/` or `compress/distill/` (plus its test), and
nothing here.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Any, TypeVar

from unicomp.compress.base import Method
from unicomp.errors import NotFoundError, UnicompError

_PACKAGES = ("unicomp.compress.prune", "unicomp.compress.quant", "unicomp.compress.distill")
_REGISTERED: dict[str, type[Method]] = {}
M = TypeVar("M", bound=type[Method])


def register(cls: M) -> M:
    """Class decorator: make the method available by its `name`."""
    if cls.name in _REGISTERED and _REGISTERED[cls.name] is not cls:
        raise ValueError(f"two compression methods are named {cls.name!r}")
    _REGISTERED[cls.name] = cls
    return cls


def methods() -> dict[str, type[Method]]:
    """name -> method class, after importing every module of the method packages once."""
    for package_name in _PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{module.name}")
    return dict(_REGISTERED)


def get_method(name: str) -> type[Method]:
    """The method class named `name` (or named by the preset `name`)."""
    from unicomp.compress.presets import PRESETS

    known = methods()
    if name in PRESETS:
        name = PRESETS[name].method
    if name not in known:
        close = difflib.get_close_matches(name, [*known, *PRESETS], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise NotFoundError(f"unknown compression method {name!r}{hint}", f"known methods: {', '.join(known)}; presets: {', '.join(PRESETS)}")
    return known[name]


def make_method(name: str, options: dict[str, Any]) -> Method:
    """A configured method; bad options give one line naming the option."""
    from pydantic import ValidationError

    from unicomp.compress.presets import resolve

    name, options = resolve(name, options)
    cls = get_method(name)
    try:
        return cls(cls.Config(**options))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or name
        msg = first["msg"]
        if first.get("ctx", {}).get("error") is not None and isinstance(first["ctx"]["error"], UnicompError):
            raise first["ctx"]["error"] from None
        if first["type"] == "extra_forbidden":
            known = ", ".join(cls.Config.model_fields)
            raise UnicompError(f"{name} has no option {where!r}", f"{name}'s options: {known}") from None
        raise UnicompError(f"{name}: option {where!r}: {msg}", f"see `unicomp ls methods` for {name}'s options") from None
