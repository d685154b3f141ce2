"""This machine as a device profile, measured at run time: memory bandwidth from STREAM-like
kernels over buffers far larger than the caches (a copy, counting bytes read + written, and a
read: one fp32 matrix-vector product over a 1 GiB matrix, the access pattern of a decode step),
and matmul throughput per dtype (best of a few square GEMMs), with the formats unicomp has CPU
kernels for (`compress/quant/packed.py`). The profile's bandwidth is the read figure: decode
reads weights and writes almost nothing. The roofline then projects this machine the way it
projects a datasheet device, and the projection is checked against the speed measured here
(docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import platform
import time
from typing import Any

import torch

from unicomp.efficiency.profiles import DeviceProfile

COPY_BYTES = 1 << 30  # per buffer; L3 caches are tens of MB (hundreds on some server parts)
GEMM_SIZE = 1024


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: page faults, thread pool start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def copy_bandwidth(n_bytes: int = COPY_BYTES, repeats: int = 5) -> float:
    """Bytes per second of `dst.copy_(src)`, counting the read and the write (STREAM's copy)."""
    src = torch.ones(n_bytes // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    return 2 * n_bytes / _best_seconds(lambda: dst.copy_(src), repeats)


def read_bandwidth(n_bytes: int = COPY_BYTES, repeats: int = 5) -> float:
    """Bytes per second of reading a square fp32 matrix once (torch.mv)."""
    n = int((n_bytes // 4) ** 0.5)
    a = torch.ones(n, n)
    x = torch.ones(n)
    return 4 * n * n / _best_seconds(lambda: torch.mv(a, x), repeats)


def matmul_flops(dtype: torch.dtype, n: int = GEMM_SIZE, repeats: int = 5) -> float:
    """FLOP/s of an n x n x n matmul in `dtype`."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    return 2 * n**3 / _best_seconds(lambda: torch.mm(a, b), repeats)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags from /proc/cpuinfo ("flags" on x86, "Features" on aarch64), or None
    where the kernel does not expose them (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return frozenset(flags)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_this_cpu(threads: int | None = None, buffer_bytes: int = COPY_BYTES) -> tuple[DeviceProfile, dict[str, Any]]:
    """The profile, and the raw measurements it came from (for the record)."""
    import psutil

    from unicomp.compress.quant.packed import default_compute_dtype

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        copy = copy_bandwidth(buffer_bytes)
        bandwidth = read_bandwidth(buffer_bytes)
        fp32 = matmul_flops(torch.float32)
        bf16 = matmul_flops(torch.bfloat16)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
    peaks = {"fp32": fp32 / 1e12, "bf16": bf16 / 1e12}
    raw = {"cpu": cpu_name(), "threads": used, "buffer_bytes": buffer_bytes, "copy_bandwidth_bytes_per_s": copy,
           "read_bandwidth_bytes_per_s": bandwidth,
           "gemm_size": GEMM_SIZE, "matmul_flops_per_s": {"fp32": fp32, "bf16": bf16},
           "packed_compute_dtype": str(default_compute_dtype("cpu")).removeprefix("torch."),
           "torch": torch.__version__}
    profile = DeviceProfile(
        name="this-cpu", title=f"{raw['cpu']} ({used} threads, measured)", kind="measured",
        memory_gb=psutil.virtual_memory().total / 1e9, memory_bandwidth_gbps=bandwidth / 1e9, peak_tflops=peaks,
        kernels=["w4a16", "w8a16", "w8a8_int8"],
        sources=[f"measured {time.strftime('%Y-%m-%d')}: fp32 matrix-vector read of {buffer_bytes >> 20} MiB "
                 f"(copy: {copy / 1e9:.1f} GB/s), {GEMM_SIZE}^3 matmul per dtype, best of 5"])
    return profile, raw


@functools.lru_cache(maxsize=8)
def _matmul_tflops(device: str, threads: int) -> float | None:
    try:
        if torch.device(device).type == "cuda":
            n = GEMM_SIZE * 4
            a = torch.randn(n, n, device=device)

            def run() -> None:
                torch.mm(a, a)
                torch.cuda.synchronize(device)

            return 2 * n**3 / _best_seconds(run, 3) / 1e12
        return matmul_flops(torch.float32, repeats=3) / 1e12
    except (RuntimeError, ValueError, AssertionError):  # full GPU, no CUDA, bad device: no figure, no failed run
        return None


def matmul_tflops(device: str = "cpu") -> float | None:
    """fp32 matmul TFLOP/s of `device` (the one the run computes on), measured once per process, device
    and thread count (~30 ms on a CPU), or None when it cannot be measured: what compute-cost
    conversions between devices scale by (efficiency/compute_cost.py). The CUDA path is untested here."""
    return _matmul_tflops(str(device), torch.get_num_threads())
