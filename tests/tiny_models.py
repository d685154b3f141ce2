"""Tiny real models and a tiny real tokenizer for unit tests (random weights, built from configs).

Real components, just small: a byte-level BPE tokenizer trained in-process on a few sentences,
and Llama / Qwen2 causal LMs with two layers. Shared by every test package.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Question: What is the boiling point of water? Answer: 100 degrees Celsius.",
    "A man is sitting on a roof. He starts pulling up roofing on a roof.",
    "To open a jar, twist the lid counterclockwise until it comes loose.",
    "Robert Boulter is an English film, television and theatre actor.",
    "Natalie had 48 clips and sold half as many in May. The answer is 72.",
] * 20


@functools.lru_cache(maxsize=1)
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>", pad_token="<pad>")


def _common(vocab: int) -> dict:
    return dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                bos_token_id=0, eos_token_id=0, pad_token_id=1)


def tiny_llama(seed: int = 0, dtype: torch.dtype = torch.float32) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(**_common(len(tiny_tokenizer())), tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).to(dtype).eval()


def tiny_qwen2(seed: int = 0, dtype: torch.dtype = torch.float32) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen2Config(**_common(len(tiny_tokenizer())), tie_word_embeddings=False)
    return Qwen2ForCausalLM(cfg).to(dtype).eval()


def save_tiny_llama(folder: Path) -> Path:
    """`tiny_llama()` and `tiny_tokenizer()` saved as a normal transformers folder (what a user's
    local checkpoint looks like to the CLI and to runs)."""
    tiny_llama().save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def random_ids(n: int, length: int, seed: int = 0) -> list[list[int]]:
    """n token-id sequences for the tiny tokenizer (calibration samples, test inputs)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, len(tiny_tokenizer()), (n, length), generator=g).tolist()


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits
