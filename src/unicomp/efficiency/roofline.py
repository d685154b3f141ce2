"""Roofline projections of prefill and decode speed and memory, per variant format per device.

A forward pass takes at least max(bytes it must move / memory bandwidth, FLOPs / peak compute).
Decode moves every weight once per step (plus the KV cache it reads), so it is bandwidth-bound
and gains from smaller weights; prefill of a long prompt is compute-bound and gains only where
a kernel computes in a faster dtype (int8, fp8) or skips zeros (2:4). A format without a kernel
on the device runs dense: no gain. Results are labelled "modeled": an upper bound on speed from
peak numbers, never mixed with measured ones.

Weight bytes: decoder linears at the format's bits plus one 16-bit scale per group (and a 16-bit
zero point for asymmetric grids); 2:4 keeps half the values plus 2 bits of position metadata per
kept value (compressed-tensors' 2:4 layout); embeddings and the LM head stay 16-bit (32 in fp32).
A decode step reads the LM head whole but only one row of the input embedding, so bytes moved
count the head once; memory counts the embedding once more unless it is tied to the head.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from unicomp.efficiency.flops import Shape, forward_macs
from unicomp.efficiency.profiles import DeviceProfile


@dataclass(frozen=True)
class Format:
    """How a variant stores and computes its decoder linears."""

    name: str  # "dense", "w4a16", "w8a16", "w8a8_int8", "w8a8_fp8", "sparse_2_4"
    dtype: str = "bf16"  # activations / dense compute dtype
    group_size: int | None = None  # None: per output channel
    zero_point: bool = False

    @property
    def weight_bits(self) -> float:
        return {"w4a16": 4, "w8a16": 8, "w8a8_int8": 8, "w8a8_fp8": 8}.get(self.name, _BITS[self.dtype])


_BITS = {"fp32": 32, "bf16": 16, "fp16": 16}


def weight_bytes(shape: Shape, fmt: Format, with_kernel: bool = True, tied: bool = True) -> dict[str, float]:
    """Bytes of the decoder linears as stored for the kernel (dense when there is none), of the LM
    head, and of a separate input embedding (0 when tied to the head)."""
    linear_params = shape.linear_macs_per_token  # one MAC per weight per token
    dense_bits = _BITS[fmt.dtype]
    if fmt.name == "dense" or not with_kernel:
        linear = linear_params * dense_bits / 8
    elif fmt.name == "sparse_2_4":
        linear = linear_params / 2 * (dense_bits + 2) / 8
    else:
        rows = shape.layers * (shape.heads * shape.head_dim + 2 * shape.kv_heads * shape.head_dim + shape.hidden
                               + 2 * shape.intermediate + shape.hidden)  # output channels of q,k,v,o,gate,up,down
        groups = linear_params / fmt.group_size if fmt.group_size else rows
        linear = linear_params * fmt.weight_bits / 8 + groups * (2 + (2 if fmt.zero_point else 0))
    head = shape.vocab * shape.hidden * dense_bits / 8
    return {"linear": linear, "lm_head": head, "embedding": 0.0 if tied else head}


def kv_bytes(shape: Shape, tokens: int, batch: int, dtype: str = "bf16") -> float:
    """Keys and values of `tokens` positions in every layer (a sliding layer keeps its window)."""
    kept = [min(tokens, w) if w else tokens for w in shape.windows]
    return batch * 2 * shape.kv_heads * shape.head_dim * sum(kept) * _BITS[dtype] / 8


def _peak(profile: DeviceProfile, fmt: Format, with_kernel: bool) -> float:
    """FLOP/s of the decoder linears' maths."""
    compute = fmt.dtype
    if with_kernel and fmt.name == "w8a8_int8":
        compute = "int8"
    elif with_kernel and fmt.name == "w8a8_fp8":
        compute = "fp8"
    peak = profile.peak_tflops.get(compute) or profile.peak_tflops.get(fmt.dtype) or profile.peak_tflops["fp32"]
    if with_kernel and fmt.name == "sparse_2_4":
        peak *= profile.sparse_2_4_speedup
    return peak * 1e12


def project(config: Any, fmt: Format, profile: DeviceProfile, *, batch: int = 1, prompt: int = 1024,
            new_tokens: int = 16) -> dict[str, Any]:
    """Modeled prefill time, time to first token, decode tokens/s and memory for one workload."""
    shape = Shape.of(config)
    kernel = fmt.name == "dense" or profile.has_kernel(fmt.name)
    tied = bool(getattr(getattr(config, "text_config", None) or config, "tie_word_embeddings", False))
    weights = weight_bytes(shape, fmt, kernel, tied)
    moved_per_step = weights["linear"] + weights["lm_head"]
    weight_total = moved_per_step + weights["embedding"]
    bw = profile.memory_bandwidth_gbps * 1e9
    dense_peak = (profile.peak_tflops.get(fmt.dtype) or profile.peak_tflops["fp32"]) * 1e12
    linear_peak = _peak(profile, fmt, kernel)

    def step_seconds(tokens: int, past: int) -> tuple[float, str]:
        macs = forward_macs(config, tokens, past=past, batch=batch, logits="last")
        compute = 2 * macs["linear"] / linear_peak + 2 * (macs["attention"] + macs["lm_head"]) / dense_peak
        moved = moved_per_step + kv_bytes(shape, past + tokens, batch, fmt.dtype)
        memory = moved / bw
        return max(compute, memory), "compute" if compute >= memory else "memory"

    prefill_s, prefill_bound = step_seconds(prompt, 0)
    mid = prompt + new_tokens // 2  # a representative decode step
    decode_s, decode_bound = step_seconds(1, mid)
    peak_memory = weight_total + kv_bytes(shape, prompt + new_tokens, batch, fmt.dtype)
    return {"device": profile.name, "format": fmt.name, "dtype": fmt.dtype, "kernel": kernel,
            "label": "modeled", "batch": batch, "prompt_tokens": prompt, "new_tokens": new_tokens,
            "prefill_s": prefill_s, "prefill_tokens_per_s": batch * prompt / prefill_s, "prefill_bound": prefill_bound,
            "ttft_s": prefill_s + decode_s, "decode_tokens_per_s": batch / decode_s, "decode_bound": decode_bound,
            "weight_bytes": weight_total, "peak_memory_bytes": peak_memory,
            "fits": peak_memory <= profile.memory_gb * 1e9, "format_spec": asdict(fmt)}
