"""Tiny real models and a tiny real tokenizer for fast unit tests (no downloads)."""

from __future__ import annotations

from pathlib import Path

import torch

SENTENCES = [
    "The capital of France is Paris.",
    "Small language models can be pruned, quantized and distilled.",
    "A tokenizer turns text into integer ids and back again.",
    "Evaluation needs the same weights every time: 1 2 3 4 5.",
]
SPECIAL = ["<unk>", "<s>", "</s>"]


def tiny_tokenizer():
    """A byte-level BPE trained on four sentences, wrapped like any hub tokenizer.

    It has bos/eos/unk but deliberately no pad token, so loading must supply one.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(SENTENCES, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>")


def tiny_model(arch: str, vocab_size: int, seed: int = 0):
    """A randomly initialised 2-layer LlamaForCausalLM or Qwen2ForCausalLM."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    common = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=128, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    if arch == "llama":
        return LlamaForCausalLM(LlamaConfig(**common)).eval()
    if arch == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=True)).eval()
    raise ValueError(arch)


def save_tiny(folder: Path, arch: str = "llama") -> Path:
    """Save a tiny model and its tokenizer as a transformers (safetensors) folder."""
    tokenizer = tiny_tokenizer()
    model = tiny_model(arch, len(tokenizer))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_tiny_gguf(path: Path, seed: int = 0) -> Path:
    """A real GGUF file (llama architecture, F32 tensors, gpt2-style BPE vocabulary) holding
    a tiny random model, written with the `gguf` library as llama.cpp would lay it out."""
    import json

    import gguf
    import numpy as np

    tokenizer = tiny_tokenizer()
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    n_vocab, hidden, ff, layers, heads, kv_heads = len(tokens), 32, 64, 2, 4, 2
    rng = np.random.default_rng(seed)

    def rand(*shape: int) -> np.ndarray:  # gguf tensors are stored as numpy (rows, cols)
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(128)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in SPECIAL else 1 for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(vocab["<s>"])
    writer.add_eos_token_id(vocab["</s>"])
    writer.add_unk_token_id(vocab["<unk>"])
    head_dim = hidden // heads
    writer.add_tensor("token_embd.weight", rand(n_vocab, hidden))
    writer.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    writer.add_tensor("output.weight", rand(n_vocab, hidden))
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.attn_q.weight", rand(heads * head_dim, hidden))
        writer.add_tensor(f"blk.{i}.attn_k.weight", rand(kv_heads * head_dim, hidden))
        writer.add_tensor(f"blk.{i}.attn_v.weight", rand(kv_heads * head_dim, hidden))
        writer.add_tensor(f"blk.{i}.attn_output.weight", rand(hidden, heads * head_dim))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", rand(ff, hidden))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", rand(ff, hidden))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", rand(hidden, ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
