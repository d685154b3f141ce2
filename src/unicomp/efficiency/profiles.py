"""Device profiles: what a roofline projection needs to know about a device (memory, bandwidth,
peak throughput per dtype, which compressed formats have kernels). Datasheet profiles are YAML
files in `efficiency/devices/`; a user passes a name (`l4`) or a path to their own file.

Format names: `w4a16` (int4 weight-only), `w8a16` (int8 weight-only), `w8a8_int8`, `w8a8_fp8`,
`sparse_2_4` (2:4 structured sparsity). A format without a kernel on a device runs dense there.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from unicomp.errors import NotFoundError, UnicompError

DEVICES_DIR = Path(__file__).parent / "devices"
FORMATS = ("w4a16", "w8a16", "w8a8_int8", "w8a8_fp8", "sparse_2_4")
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4")


class DeviceProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    title: str
    kind: Literal["datasheet", "measured"]
    memory_gb: float = Field(gt=0)
    memory_bandwidth_gbps: float = Field(gt=0)
    peak_tflops: dict[Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4"], float]
    sparse_2_4_speedup: float = Field(1.0, ge=1.0)
    kernels: list[Literal["w4a16", "w8a16", "w8a8_int8", "w8a8_fp8", "sparse_2_4"]] = Field(default_factory=list)
    tdp_w: float | None = None
    sources: list[str] = Field(default_factory=list)

    def has_kernel(self, fmt: str) -> bool:
        return fmt in self.kernels


def known_profiles() -> list[str]:
    return sorted(p.stem for p in DEVICES_DIR.glob("*.yaml"))


def load_profile(name_or_path: str) -> DeviceProfile:
    """A shipped profile by name, or a profile file by path; one-line errors for both mistakes."""
    path = Path(name_or_path).expanduser()
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        known = known_profiles()
        if name_or_path not in known:
            close = difflib.get_close_matches(name_or_path, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise NotFoundError(f"unknown device profile {name_or_path!r}{hint}",
                                f"use one of: {', '.join(known)}, or pass a profile .yaml file")
        path = DEVICES_DIR / f"{name_or_path}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UnicompError(f"device profile {path} is not valid YAML: {str(exc).splitlines()[0]}",
                           "fix the file's syntax") from None
    if not isinstance(data, dict):
        raise UnicompError(f"device profile {path} is not a mapping", "see efficiency/devices/l4.yaml for the fields")
    try:
        return DeviceProfile(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        what = "is missing" if err["type"] == "missing" else f"is invalid: {err['msg']}"
        raise UnicompError(f"device profile {path}: field {field!r} {what}",
                           "see efficiency/devices/l4.yaml for the fields") from None
