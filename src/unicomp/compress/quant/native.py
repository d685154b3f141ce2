"""unicomp's one C kernel (int4 dequantization for prefill), built on first use and loaded with ctypes.

Why not a wheel or a torch extension: the kernel is ~40 lines with no Python API, so the system C
compiler (`cc`) builds it in well under a second, tuned to the CPU at hand (-march=native), and
ctypes loads it without Python headers or ninja. The library is cached under
`UNICOMP_CACHE/kernels/`, keyed by the source, the compiler, the flags and the CPU's feature flags,
so a shared cache never hands one CPU another's build. Without a compiler, or with
`UNICOMP_NATIVE_KERNELS=0`, every caller falls back to its PyTorch version, which computes the same
bits more slowly (a warning says so once).

OpenMP: the library links `libgomp.so.1`, which resolves to the copy PyTorch already loaded, so it
shares PyTorch's thread pool and follows `torch.set_num_threads`.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

from unicomp.efficiency.machine import cpu_flags
from unicomp.paths import cache_dir

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("int4_dequant.c")
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC")
_ARGS = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]


def enabled() -> bool:
    """Whether native kernels may be used (`UNICOMP_NATIVE_KERNELS=0` turns them off)."""
    return os.environ.get("UNICOMP_NATIVE_KERNELS", "1").strip().lower() not in ("0", "false", "no", "off")


def build(compiler: list[str], flags: tuple[str, ...], root: Path | None = None) -> Path:
    """Compile SOURCE once per (source, compiler, flags, CPU) under `root` (default: the cache)."""
    version = subprocess.run([*compiler, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    key = hashlib.sha256("\0".join([SOURCE.read_text(), " ".join(compiler), version, " ".join(flags),
                                    platform.machine(), " ".join(sorted(cpu_flags() or ())) or platform.processor()]
                                   ).encode()).hexdigest()[:16]
    target = (root or cache_dir() / "kernels") / f"int4_dequant-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:  # atomic: parallel builds never see half a file
        built = Path(tmp) / target.name
        done = subprocess.run([*compiler, *flags, str(SOURCE), "-o", str(built)],
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise OSError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "compiler failed")
        os.replace(built, target)
    return target


def _flag_sets() -> list[tuple[str, ...]]:
    """Flags to try, best first: tuned and multi-threaded; without OpenMP (e.g. Apple clang); without
    -march=native (compilers that reject it, e.g. clang 14 on aarch64)."""
    no_omp = tuple(f for f in FLAGS if f != "-fopenmp")
    return [FLAGS, no_omp, tuple(f for f in no_omp if f != "-march=native")]


def _openmp_runtimes() -> set[str]:
    """Distinct OpenMP runtime files mapped into this process (Linux only; empty elsewhere)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return set()
    return {line.split()[-1] for line in maps.splitlines() if re.search(r"lib(g|i)omp[^/]*\.so", line)}


def _compiler() -> list[str] | None:
    if os.environ.get("CC"):
        return shlex.split(os.environ["CC"])  # e.g. "ccache gcc"
    found = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    return None if found is None else [found]


@functools.lru_cache(maxsize=1)
def int4_library() -> ctypes.CDLL | None:
    """The compiled int4 dequantization library, or None (fallback to PyTorch) with one warning."""
    if not enabled():
        return None
    compiler = _compiler()
    if compiler is None:
        log.warning("no C compiler found: int4 prefill dequantizes with PyTorch ops (several times slower; "
                    "install gcc, e.g. `apt install gcc`, for the native kernel)")
        return None
    torch.zeros(1)  # PyTorch's libgomp is loaded before ours asks for libgomp.so.1
    errors = []
    for flags in _flag_sets():
        for root in (None, Path(tempfile.gettempdir()) / f"unicomp-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}"):
            try:
                lib = load(build(compiler, flags, root))
            except (OSError, subprocess.SubprocessError) as exc:  # compiler error, or a read-only cache
                errors.append(f"{' '.join(flags)}{'' if root is None else ' in ' + str(root)}: {exc}")
                continue
            if errors:
                log.info("native int4 kernel: built with %s after %s", " ".join(flags), "; ".join(errors))
            runtimes = _openmp_runtimes()
            if len(runtimes) > 1:
                log.warning("two OpenMP runtimes are loaded (%s): the native int4 kernel's threads do not follow "
                            "torch.set_num_threads; set UNICOMP_NATIVE_KERNELS=0 if prefill is slow",
                            ", ".join(sorted(runtimes)))
            return lib
    log.warning("building the native int4 kernel failed (%s): int4 prefill dequantizes with PyTorch ops",
                errors[-1] if errors else "?")
    return None


def load(path: Path) -> ctypes.CDLL:
    """A built library with its functions' C signatures declared (ctypes would guess int)."""
    lib = ctypes.CDLL(str(path))
    for name in ("unicomp_int4_dequant_bf16", "unicomp_int4_dequant_f32"):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = _ARGS, None
    return lib


_scratch = threading.local()


def scratch(numel: int, dtype: torch.dtype) -> torch.Tensor:
    """This thread's reusable buffer of at least `numel` elements (grown, never shrunk).

    A fresh multi-MB tensor per linear page-faults in all its memory on every prefill: for
    SmolLM2 at 512 tokens that was 17 ms of a 450 ms prefill. One buffer the size of the largest
    layer stays mapped (and mostly in cache). Per thread, so concurrent engines never share one."""
    buffers: dict[torch.dtype, torch.Tensor] = _scratch.__dict__.setdefault("buffers", {})
    buf = buffers.get(dtype)
    if buf is None or buf.numel() < numel:
        buf = buffers[dtype] = torch.empty(numel, dtype=dtype)
    return buf[:numel]


def int4_dequantize(packed: torch.Tensor, scale_and_zeros: torch.Tensor, n: int, k: int, group: int,
                    reuse: bool = False) -> torch.Tensor | None:
    """Dense [k, n] weight in scale_and_zeros' dtype from a CPU-packed int4 weight, or None when the
    native kernel is unavailable or the inputs are not what it reads (the caller then uses PyTorch).

    reuse: write into this thread's scratch buffer (valid until the next reuse call in the thread),
    for a caller that consumes the weight at once and keeps nothing that refers to it."""
    lib = int4_library()
    dtype = scale_and_zeros.dtype
    if (lib is None or dtype not in (torch.bfloat16, torch.float32) or packed.device.type != "cpu"
            or not packed.is_contiguous() or not scale_and_zeros.is_contiguous()
            or packed.numel() * 2 != n * k or scale_and_zeros.shape != (k // group, n, 2)
            or n % 64 or k % group):
        return None
    out = (scratch(n * k, dtype) if reuse else torch.empty(n * k, dtype=dtype)).view(k, n)
    fn = lib.unicomp_int4_dequant_bf16 if dtype == torch.bfloat16 else lib.unicomp_int4_dequant_f32
    fn(packed.data_ptr(), scale_and_zeros.data_ptr(), out.data_ptr(), n, k, group)
    return out
