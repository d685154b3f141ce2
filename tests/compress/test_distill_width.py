"""Minitron width pruning against independent computations: keeping every channel is the teacher
exactly; dropping MLP channels or heads equals the teacher with those activations zeroed by hooks;
GQA stays valid; the student reloads from its own folder; bad sizes fail clearly."""

from __future__ import annotations

import pytest
import torch
from tiny_models import _common, tiny_llama, tiny_qwen2, tiny_tokenizer
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from unicomp.compress.distill.width import WidthConfig, prune_width
from unicomp.errors import UnicompError


def _batches() -> list[dict[str, torch.Tensor]]:
    ids = torch.randint(2, len(tiny_tokenizer()), (2, 10), generator=torch.Generator().manual_seed(3))
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    return [{"input_ids": ids, "attention_mask": mask}]


def _logits(model, batch=None) -> torch.Tensor:
    batch = batch or _batches()[0]
    with torch.no_grad():
        return model(**batch, use_cache=False).logits


def _llama_more_heads() -> LlamaForCausalLM:
    torch.manual_seed(0)  # 8 query heads in 4 KV groups of 2, head_dim 16
    cfg = LlamaConfig(**{**_common(len(tiny_tokenizer())), "num_attention_heads": 8, "num_key_value_heads": 4,
                         "head_dim": 16, "hidden_size": 128}, tie_word_embeddings=False)
    return LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("make", [tiny_llama, tiny_qwen2])  # tied / untied embeddings, q/k/v biases
def test_keeping_every_channel_is_the_teacher_exactly(make):
    teacher = make()
    student, report = prune_width(teacher, _batches(), WidthConfig())
    assert report["student"] == report["teacher"]
    assert torch.equal(_logits(student), _logits(teacher))


def test_dropping_mlp_channels_equals_zeroing_them_in_the_teacher():
    teacher = tiny_llama()
    student, report = prune_width(teacher, _batches(), WidthConfig(intermediate_size=96))
    assert student.config.intermediate_size == 96 and student.model.layers[0].mlp.down_proj.in_features == 96
    handles = []
    for layer, kept in zip(teacher.model.layers, report["kept_mlp_channels"]):
        keep = torch.zeros(teacher.config.intermediate_size)
        keep[kept] = 1
        handles.append(layer.mlp.down_proj.register_forward_pre_hook(lambda m, a, keep=keep: (a[0] * keep,)))
    zeroed = _logits(teacher)
    for h in handles:
        h.remove()
    assert torch.allclose(_logits(student), zeroed, atol=1e-5)


def test_dropping_heads_keeps_whole_kv_groups_and_equals_zeroing_them():
    teacher = _llama_more_heads()
    student, report = prune_width(teacher, _batches(), WidthConfig(num_attention_heads=4, num_key_value_heads=2))
    attn = student.model.layers[0].self_attn
    assert (student.config.num_attention_heads, student.config.num_key_value_heads, student.config.head_dim) == (4, 2, 16)
    assert attn.q_proj.out_features == 64 and attn.k_proj.out_features == 32 and attn.o_proj.in_features == 64
    handles = []
    for layer, kept in zip(teacher.model.layers, report["kept_query_heads"]):
        groups = {h // 2 for h in kept}
        assert len(groups) == 2 and all(sum(h // 2 == g for h in kept) == 2 for g in groups)  # 2 whole groups
        keep = torch.zeros(8, 16)
        keep[kept] = 1
        handles.append(layer.self_attn.o_proj.register_forward_pre_hook(lambda m, a, keep=keep: (a[0] * keep.reshape(-1),)))
    zeroed = _logits(teacher)
    for h in handles:
        h.remove()
    assert torch.allclose(_logits(student), zeroed, atol=1e-5)


def test_a_narrower_residual_stream_reloads_from_its_folder(tmp_path):
    teacher = _llama_more_heads()
    student, report = prune_width(teacher, _batches(), WidthConfig(hidden_size=96, intermediate_size=64))
    assert len(report["kept_hidden_channels"]) == 96 and student.model.embed_tokens.weight.shape[1] == 96
    student.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert again.config.hidden_size == 96 and again.config.head_dim == 16
    assert torch.equal(_logits(again), _logits(student))
    assert torch.isfinite(_logits(student)).all()


def test_bad_sizes_fail_with_one_clear_error():
    teacher = _llama_more_heads()
    with pytest.raises(UnicompError, match="larger than the teacher's"):
        prune_width(teacher, _batches(), WidthConfig(hidden_size=256))  # a wider student
    with pytest.raises(UnicompError, match="not divisible by the head size 16"):
        prune_width(teacher, _batches(), WidthConfig(hidden_size=100))
    with pytest.raises(UnicompError, match="not divisible by 6 attention heads"):
        prune_width(teacher, _batches(), WidthConfig(hidden_size=64, num_attention_heads=6, num_key_value_heads=2))
    with pytest.raises(UnicompError, match="cannot be split over"):
        prune_width(teacher, _batches(), WidthConfig(num_attention_heads=6, num_key_value_heads=4))
