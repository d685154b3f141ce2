"""Chat data for the SFT stage: the loss mask covers exactly the assistant's turns (decoded back, they
are the assistant's words and nothing else), windows are cut or padded to one length, and test
splits, templateless tokenizers and wrong field names fail with one clear error."""

from __future__ import annotations

import copy

import pytest
from tiny_models import tiny_tokenizer

from unicomp.compress.distill.sft_data import ChatData, build_chat_samples, render
from unicomp.errors import UnicompError

TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|> {% endif %}")


def _tokenizer():
    tok = copy.deepcopy(tiny_tokenizer())
    tok.chat_template = TEMPLATE
    return tok


def test_the_mask_covers_the_assistant_turns_only():
    tok = _tokenizer()
    chat = [{"role": "user", "content": "What is the boiling point of water?"},
            {"role": "assistant", "content": "100 degrees Celsius."},
            {"role": "user", "content": "And the fox?"}, {"role": "assistant", "content": "It jumps."}]
    ids, mask = render(tok, chat)
    assert len(ids) == len(mask)
    kept = tok.decode([i for i, m in zip(ids, mask) if m])
    assert kept == "100 degrees Celsius.\nIt jumps.\n"
    assert tok.decode(ids) == tok.apply_chat_template(chat, tokenize=False)


def test_gsm8k_train_becomes_fixed_length_conversations(mirror):
    data = ChatData(n_samples=6, seq_len=160)
    out = build_chat_samples(data, _tokenizer(), data_dir=mirror)
    assert len(out.samples) == 6 and all(len(s) == 160 for s in out.samples)
    assert all(len(m) == 160 and 0 < sum(m) < 160 for m in out.loss_mask)
    assert out.record["provenance"]["split"] == "train"
    assert build_chat_samples(data, _tokenizer(), data_dir=mirror).samples == out.samples  # seeded


def test_bad_chat_data_fails_with_one_clear_error(mirror):
    with pytest.raises(UnicompError, match="test splits are what evaluation scores"):
        build_chat_samples(ChatData(split="test"), _tokenizer(), data_dir=mirror)
    with pytest.raises(UnicompError, match="no chat template"):
        build_chat_samples(ChatData(), tiny_tokenizer(), data_dir=mirror)
    with pytest.raises(UnicompError, match="has no field 'prompt'"):
        build_chat_samples(ChatData(prompt_field="prompt", n_samples=2), _tokenizer(), data_dir=mirror)
