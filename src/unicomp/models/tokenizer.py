"""Make a tokenizer usable for batched evaluation without changing its vocabulary.

Batching needs a pad token. Adding a new one would grow the vocabulary and require resizing
the embedding matrix, which changes the model being evaluated; so we reuse an existing special
token (eos first, as is conventional for decoder-only models). Padded positions are masked out
by the attention mask, so which token is used does not change results.
"""

from __future__ import annotations

from typing import Any


def ensure_pad_token(tokenizer: Any, model: Any | None = None) -> str | None:
    """Set `tokenizer.pad_token` from eos/unk/bos if missing; returns a note when it did."""
    size = len(tokenizer)
    note = None
    if tokenizer.pad_token is None:
        for attr in ("eos_token", "unk_token", "bos_token"):
            token = getattr(tokenizer, attr, None)
            if token is not None:
                tokenizer.pad_token = token
                note = f"pad token set to the {attr.removesuffix('_token')} token {token!r}"
                break
    if len(tokenizer) != size:  # pragma: no cover - guards the promise above
        raise RuntimeError("setting the pad token changed the vocabulary size")
    gen = getattr(model, "generation_config", None)
    if gen is not None and gen.pad_token_id is None and tokenizer.pad_token_id is not None:
        gen.pad_token_id = tokenizer.pad_token_id  # silences per-call generate() warnings
    return note
