"""Chat data for the supervised fine-tuning stage: conversations rendered with the tokenizer's chat
template, cut or padded to one length, with a loss mask that is 1 on the assistant's tokens only.

A row is either a list of messages (`messages_field`, role/content dicts, as chat datasets such as
smol-smoltalk or UltraChat keep them) or a prompt and a response (`prompt_field`, `response_field`:
one user turn and one assistant turn). The default, GSM8K train (question -> worked answer), is a
chat-shaped dataset the local mirror serves; on a machine with the hub, point it at any chat set.

An assistant turn is found by rendering the conversation up to that turn with the generation
prompt, and up to its end: the characters in between are the assistant's, and so are the tokens
that overlap them (a template that does not render conversations as growing prefixes is refused). Test splits are refused: they are
what evaluation scores.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unicomp.data.calibration import samples_sha256
from unicomp.errors import UnicompError


class ChatData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = "openai/gsm8k"
    config: str | None = "main"
    split: str = "train"
    messages_field: str | None = None
    prompt_field: str = "question"
    response_field: str = "answer"
    n_samples: int = Field(256, gt=0)
    seq_len: int = Field(256, gt=1)
    seed: int = 0


@dataclass
class ChatSamples:
    samples: list[list[int]]
    loss_mask: list[list[int]]
    record: dict[str, Any]


def _text(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def render(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Token ids of a conversation and its loss mask (1 on the tokens that overlap an assistant turn)."""
    text = _text(tokenizer, messages, False)
    spans = []
    for k, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before, through = _text(tokenizer, messages[:k], True), _text(tokenizer, messages[:k + 1], False)
        if not text.startswith(through) or not through.startswith(before):
            raise UnicompError("the chat template does not render a conversation as a growing prefix",
                               "use a tokenizer whose template does, or give prompt/response pairs")
        spans.append((len(before), len(through)))
    if not getattr(tokenizer, "is_fast", False):
        raise UnicompError("finding the assistant's tokens needs a fast tokenizer (character offsets)",
                           "load the model's fast tokenizer (tokenizer.json)")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    # a token counts when it overlaps an assistant span (one merged across the span's start included)
    mask = [int(any(start < hi and end > lo for lo, hi in spans)) for start, end in encoded["offset_mapping"]]
    return encoded["input_ids"], mask


def _messages(row: dict[str, Any], data: ChatData) -> list[dict[str, str]]:
    if data.messages_field is not None:
        messages = row.get(data.messages_field)
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m and "content" in m
                                                     for m in messages):
            raise UnicompError(f"{data.dataset}: field {data.messages_field!r} is not a list of role/content messages",
                               "name the field that holds the conversation, or use prompt_field/response_field")
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
    for name in (data.prompt_field, data.response_field):
        if name not in row:
            raise UnicompError(f"{data.dataset} has no field {name!r} (it has: {', '.join(sorted(row))})",
                               "set prompt_field and response_field to the dataset's columns")
    return [{"role": "user", "content": str(row[data.prompt_field])},
            {"role": "assistant", "content": str(row[data.response_field])}]


def build_chat_samples(data: ChatData, tokenizer: Any, *, data_dir: Any = None, sources: Any = None) -> ChatSamples:
    """`n_samples` conversations of exactly `seq_len` tokens (cut or padded) and their loss masks."""
    from unicomp.data.resolver import load_rows

    if "test" in data.split.lower():
        raise UnicompError(f"supervised fine-tuning on {data.dataset} split {data.split!r}: test splits are what "
                           "evaluation scores", "fine-tune on a train split")
    if not getattr(tokenizer, "chat_template", None):
        raise UnicompError("the tokenizer has no chat template, so chat data cannot be rendered for fine-tuning",
                           "fine-tune an instruct model (its tokenizer has one), or drop the sft stage")
    resolved = load_rows(data.dataset, data.config, data.split, sources=sources, data_dir=data_dir)
    rows = list(resolved.rows)
    order = list(range(len(rows)))
    random.Random(data.seed).shuffle(order)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    samples, masks, used, truncated = [], [], [], 0
    for index in order:
        ids, mask = render(tokenizer, _messages(rows[index], data))
        if sum(mask[1:data.seq_len]) == 0:  # nothing of the assistant's survives the cut: nothing to learn
            continue
        truncated += len(ids) > data.seq_len
        ids, mask = ids[:data.seq_len], mask[:data.seq_len]
        fill = data.seq_len - len(ids)
        samples.append(ids + [pad] * fill)
        masks.append(mask + [0] * fill)
        used.append(index)
        if len(samples) == data.n_samples:
            break
    if len(samples) < data.n_samples:
        raise UnicompError(f"{data.dataset} {data.split} gives {len(samples)} usable conversations, "
                           f"{data.n_samples} were asked for", "ask for fewer (n_samples) or a longer seq_len")
    record = {"config": data.model_dump(), "provenance": resolved.record(), "row_indices": used,
              "truncated": truncated, "assistant_tokens": sum(map(sum, masks)),
              "total_tokens": sum(len(s) for s in samples), "sha256": samples_sha256(samples)}
    return ChatSamples(samples=samples, loss_mask=masks, record=record)


__all__ = ["ChatData", "ChatSamples", "build_chat_samples", "render"]
