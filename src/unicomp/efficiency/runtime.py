"""Runtime of a loaded model, measured: prefill, time to first token, decode tokens/s and peak
memory per batch size, on the paper's workload (1,024 prompt tokens, 16 output tokens) plus a
128-token decode.

Protocol: a fixed thread count; random prompt ids (seeded: speed does not depend on the text);
one warm-up pass, then `repeats` timed passes, reporting the median with min and max. A pass is
one prefill and the greedy steps after it, on one KV cache. Prefill = one forward over the
prompt, logits for the last position only (what generation does). TTFT = prefill + picking the
first token. End-to-end latency = TTFT + the next `new_tokens - 1` steps. Decode tokens/s =
batch x `decode_tokens` / the time of the first `decode_tokens` steps. Peak memory: CUDA's
allocator peak on a GPU; on the CPU the process's peak resident set during the batch (sampled
every 2 ms), which includes the interpreter and the weights.

What runs is recorded with the numbers: dtype, device, threads, torch version and the kernels
each linear layer uses (packed int4 / int8 / W8A8, dequantized fallback, or dense). Runtime
depends on shapes, dtypes and kernels, never on weight values, so `runtime_signature` (the key
of a profile) leaves the values out: a pruned model with dense kernels shares its base's profile.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field


class Workload(BaseModel):
    """What a profile measures."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = Field(1024, gt=0, description="prompt length (paper: 1,024)")
    new_tokens: int = Field(16, gt=0, description="output tokens of the end-to-end latency (paper: 16)")
    decode_tokens: int = Field(128, gt=0, description="greedy steps timed for decode tokens/s")
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 8], min_length=1)
    repeats: int = Field(3, ge=1)
    threads: int | None = Field(None, ge=1, description="torch threads (default: torch's current setting)")
    seed: int = 0


def kernels_used(model: torch.nn.Module) -> dict[str, int]:
    """Linear layers by the module that computes them (nn.Linear = dense)."""
    from unicomp.compress.quant.packed import PackedLinear

    counts: Counter[str] = Counter()
    for module in model.modules():
        if isinstance(module, PackedLinear) or type(module) is torch.nn.Linear:
            counts[type(module).__name__] += 1
    return dict(sorted(counts.items()))


def linear_sparsity(model: torch.nn.Module) -> float:
    """Share of exact zeros in the dense linear weights (0 for packed ones)."""
    zeros = total = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            zeros += int((module.weight == 0).sum())
            total += module.weight.numel()
    return zeros / total if total else 0.0


def runtime_signature(model: torch.nn.Module, workload: Workload, device: str) -> dict[str, Any]:
    """Everything a measured speed depends on, without the weight values."""
    from unicomp.models.fingerprint import _config_json

    param = next(model.parameters())
    config = json.loads(_config_json(model.config))
    config.pop("_name_or_path", None)
    return {"config_sha256": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest(),
            "dtype": str(param.dtype).removeprefix("torch."), "device": device, "kernels": kernels_used(model),
            "workload": workload.model_dump()}


class _PeakRss:
    """Peak resident set of this process while the block runs (CPU), sampled in a thread."""

    def __init__(self, interval_s: float = 0.002) -> None:
        import psutil

        self.process = psutil.Process()
        self.interval = interval_s
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> "_PeakRss":
        self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _cache_kw(model: torch.nn.Module) -> str:
    """transformers 5.x renamed forward's `past_key_values` to `cache`; use whichever it takes."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.inference_mode()
def _prefill(model, ids):
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    out = model(ids, use_cache=True, logits_to_keep=1, **{_cache_kw(model): cache})
    return cache, out.logits[:, -1:].argmax(-1)


@torch.inference_mode()
def _decode_steps(model, cache, token, steps: int, device: str) -> list[float]:
    """Greedy steps; the time after each one, from the first step's start."""
    kw = _cache_kw(model)
    stamps = []
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        out = model(token, use_cache=True, **{kw: cache})  # the cache grows in place
        token = out.logits[:, -1:].argmax(-1)
        _sync(device)
        stamps.append(time.perf_counter() - start)
    return stamps


def _timed(fn: Callable[[], Any], device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def measure_batch(model: torch.nn.Module, batch: int, workload: Workload, device: str,
                  progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One prefill and then max(decode_tokens, new_tokens - 1) greedy steps per pass: the
    end-to-end latency ends after new_tokens - 1 steps, decode tokens/s is over the first
    decode_tokens steps."""
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(workload.seed + batch)
    ids = torch.randint(0, vocab, (batch, workload.prompt_tokens), generator=g).to(device)
    steps = max(workload.decode_tokens, workload.new_tokens - 1)
    prefill, ttft, e2e, decode = [], [], [], []

    def one_pass() -> tuple[float, float, float, float]:
        holder: dict[str, Any] = {}
        t_prefill = _timed(lambda: holder.update(state=_prefill(model, ids)), device)
        cache, token = holder["state"]
        t_first = _timed(lambda: token.cpu(), device)  # the first token is ready: picked from prefill's logits
        stamps = _decode_steps(model, cache, token, steps, device)
        rest = stamps[workload.new_tokens - 2] if workload.new_tokens > 1 else 0.0
        return t_prefill, t_prefill + t_first, t_prefill + t_first + rest, stamps[workload.decode_tokens - 1]

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with _PeakRss() as rss:
        one_pass()  # warm-up
        for _ in range(workload.repeats):
            p, f, e, d = one_pass()
            prefill.append(p)
            ttft.append(f)
            e2e.append(e)
            decode.append(d)
            if progress is not None:
                progress(1)
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else rss.peak
    return {"batch": batch, "prefill_s": _stats(prefill),
            "prefill_tokens_per_s": batch * workload.prompt_tokens / statistics.median(prefill),
            "ttft_s": _stats(ttft), "e2e_latency_s": _stats(e2e),
            "decode_tokens_per_s": batch * workload.decode_tokens / statistics.median(decode),
            "decode_s": _stats(decode), "peak_memory_bytes": int(peak),
            "peak_memory_kind": "cuda_max_allocated" if device.startswith("cuda") else "process_peak_rss"}


def model_notes(model: torch.nn.Module) -> tuple[dict[str, int], float, list[str]]:
    """Kernels, sparsity, and what they mean for speed on this backend."""
    kernels = kernels_used(model)
    sparsity = linear_sparsity(model)
    notes = []
    if sparsity >= 0.25:
        notes.append(f"{sparsity:.0%} of the dense linear weights are zero, but no sparse kernel runs here: "
                     "the model computes dense, so pruning gives no speed-up on this backend")
    if kernels.get("DequantLinear"):
        notes.append(f"{kernels['DequantLinear']} quantized linears have no packed kernel for their layout and run "
                     "dequantized (small, not faster)")
    return kernels, sparsity, notes


def measure_runtime(model: torch.nn.Module, workload: Workload, device: str = "cpu",
                    progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Per batch size: prefill, TTFT, end-to-end latency, decode tokens/s and peak memory, with
    what ran (dtype, kernels, threads)."""
    previous = torch.get_num_threads()
    if workload.threads:
        torch.set_num_threads(workload.threads)
    try:
        rows = [measure_batch(model, b, workload, device, progress) for b in workload.batch_sizes]
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
    param = next(model.parameters())
    kernels, sparsity, notes = model_notes(model)
    return {"backend": f"torch {torch.__version__} ({device})", "device": device, "threads": threads,
            "dtype": str(param.dtype).removeprefix("torch."), "kernels": kernels, "linear_sparsity": sparsity,
            "workload": workload.model_dump(), "batches": rows, "notes": notes}
