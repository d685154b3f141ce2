"""Multiply-accumulates of a decoder-only transformer, from its config alone.

Counted: every matrix product a forward pass executes (q/k/v/o projections, the gated MLP's three
projections, the LM head, and attention's two batched products QK^T and AV), which is what
`torch.utils.flop_counter` counts; FLOPs = 2 x MACs. Not counted, as there: norms, rotary
embeddings, activations, softmax and the embedding lookup (a few per cent of a small model's
work, none of it a matmul).

Attention is counted as dense kernels (eager or SDPA) execute it: a prefill of T tokens computes
the full T x T score matrix, the causal mask saves no work; FlashAttention-style kernels skip
masked blocks and do about half of that term. A decode step attends to every cached token, and a
sliding-window layer (Gemma 3's local layers) to at most its window, since its cache keeps no more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Shape:
    """What the count needs from a config."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    windows: tuple[int | None, ...]  # per layer: sliding window, or None for full attention

    @classmethod
    def of(cls, config: Any) -> "Shape":
        cfg = getattr(config, "text_config", None) or config  # multimodal wrappers hold the LM's config
        heads = cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        layer_types = getattr(cfg, "layer_types", None) or ["full_attention"] * cfg.num_hidden_layers
        window = getattr(cfg, "sliding_window", None)
        windows = tuple(window if t == "sliding_attention" and window else None for t in layer_types)
        return cls(cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, heads,
                   getattr(cfg, "num_key_value_heads", None) or heads, head_dim, cfg.vocab_size, windows)

    @property
    def linear_macs_per_token(self) -> int:
        """Projections of one token through every layer (the weight matrices' sizes)."""
        q_out, kv_out = self.heads * self.head_dim, self.kv_heads * self.head_dim
        attention = self.hidden * (q_out + 2 * kv_out) + q_out * self.hidden
        mlp = 3 * self.hidden * self.intermediate  # gate, up, down
        return self.layers * (attention + mlp)


def forward_macs(config: Any, tokens: int, *, past: int = 0, batch: int = 1, logits: str = "all") -> dict[str, int]:
    """MACs of one forward pass over `tokens` new tokens per row, after `past` cached ones.

    `logits`: "all" (a plain forward, every position) or "last" (generation: only the last one).
    A prefill is `past=0`; a decode step is `tokens=1, past=L`."""
    s = Shape.of(config)
    linear = batch * tokens * s.linear_macs_per_token
    attention = 0
    for window in s.windows:
        if past == 0:  # prefill: dense T x T scores, whatever the mask
            keys = tokens
        else:  # cached: a sliding layer keeps at most `window` past tokens
            kept = past if window is None else min(past, window - 1)
            keys = kept + tokens
        attention += 2 * batch * s.heads * tokens * keys * s.head_dim  # QK^T and AV
    head = batch * (tokens if logits == "all" else 1) * s.hidden * s.vocab
    return {"linear": linear, "attention": attention, "lm_head": head, "total": linear + attention + head}


def per_token(config: Any, context: int) -> dict[str, float]:
    """FLOPs and MACs of generating one token after `context` tokens (batch 1): the decode cost
    the efficiency report quotes."""
    macs = forward_macs(config, 1, past=context, logits="last")["total"]
    return {"macs": float(macs), "flops": 2.0 * macs}
