"""Minitron depth pruning against independent computations: dropping nothing is the teacher; dropping
a layer equals the teacher with that layer skipped by a hook; block influence equals the cosine of
hidden_states transformers returns; loss importance equals the loss of the actually-pruned model;
the student saves, reloads and generates with its KV cache like any model; bad requests fail clearly."""

from __future__ import annotations

import copy

import pytest
import torch
from tiny_models import _common, tiny_tokenizer
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from unicomp.compress.distill.depth import (DepthConfig, block_influence, depth_prune, drop_layers, layers_to_drop,
                                            loss_importance)
from unicomp.errors import UnicompError

LAYERS = 5


def _llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**_common(len(tiny_tokenizer())), "num_hidden_layers": LAYERS})).eval()


def _batches() -> list[dict[str, torch.Tensor]]:
    ids = torch.randint(2, len(tiny_tokenizer()), (2, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    return [{"input_ids": ids, "attention_mask": mask}]


def _logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch, use_cache=False).logits


def test_dropping_no_layer_is_the_teacher_and_dropping_one_is_the_teacher_skipping_it():
    teacher, batch = _llama(), _batches()[0]
    assert torch.equal(_logits(drop_layers(copy.deepcopy(teacher), []), batch), _logits(teacher, batch))

    def skip(module, args, kwargs, output):  # the teacher with layer 2's output replaced by its input
        h = args[0] if args else kwargs["hidden_states"]
        return (h, *output[1:]) if isinstance(output, tuple) else h

    handle = teacher.model.layers[2].register_forward_hook(skip, with_kwargs=True)
    skipped = _logits(teacher, batch)
    handle.remove()
    student = drop_layers(copy.deepcopy(teacher), [2])
    assert student.config.num_hidden_layers == LAYERS - 1 and len(student.model.layers) == LAYERS - 1
    assert torch.equal(_logits(student, batch), skipped)


def test_block_influence_equals_the_cosine_of_transformers_hidden_states():
    model, batches = _llama(), _batches()
    ours = block_influence(model, batches)
    with torch.no_grad():
        hs = model(**batches[0], output_hidden_states=True).hidden_states  # hs[i] enters layer i
    mask = batches[0]["attention_mask"].float()
    for i in range(LAYERS - 1):  # transformers' last entry is after the final norm, so it is not layer L-1's output
        cos = torch.nn.functional.cosine_similarity(hs[i], hs[i + 1], dim=-1)
        assert ours[i] == pytest.approx(1 - float((cos * mask).sum() / mask.sum()), abs=1e-5)


def test_loss_importance_equals_the_loss_of_the_pruned_model():
    model, batches = _llama(), _batches()
    scores = loss_importance(model, batches)
    labels = batches[0]["input_ids"].masked_fill(batches[0]["attention_mask"] == 0, -100)
    with torch.no_grad():
        base = float(model(**batches[0], labels=labels).loss)
        for i in (0, 3):
            pruned = drop_layers(copy.deepcopy(model), [i])
            assert scores[i] == pytest.approx(float(pruned(**batches[0], labels=labels).loss) - base, abs=1e-5)


def test_the_student_reloads_and_generates_with_its_kv_cache(tmp_path):
    student = _llama()
    report = depth_prune(student, _batches(), DepthConfig(drop_layers=2))
    assert report["layers_after"] == LAYERS - 2 and 0 not in report["dropped"] and LAYERS - 1 not in report["dropped"]
    student.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert again.config.num_hidden_layers == LAYERS - 2
    ids = _batches()[0]["input_ids"][:1, :6]
    with torch.no_grad():
        cached = again.generate(ids, max_new_tokens=6, do_sample=False, use_cache=True)
        uncached = again.generate(ids, max_new_tokens=6, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)  # re-indexed layers find their own cache entries


def test_per_layer_attention_types_follow_the_dropped_layers():
    torch.manual_seed(0)
    cfg = Qwen2Config(**{**_common(len(tiny_tokenizer())), "num_hidden_layers": 4}, use_sliding_window=True,
                      sliding_window=8, max_window_layers=2)
    model = Qwen2ForCausalLM(cfg).eval()
    types = list(model.config.layer_types)
    assert len(set(types)) == 2  # full and sliding layers, so the trimming is visible
    drop_layers(model, [1])
    assert model.config.layer_types == [types[0], types[2], types[3]]


def test_bad_requests_fail_with_one_clear_error():
    scores = [0.5] * LAYERS
    with pytest.raises(UnicompError, match="cannot drop 4 of 5 decoder layers"):
        layers_to_drop(scores, DepthConfig(drop_layers=4))  # first and last are kept
    assert layers_to_drop(scores, DepthConfig(drop_layers=4, keep_first_last=False)) == [1, 2, 3, 4]  # ties: later first
    assert layers_to_drop([0.9, 0.1, 0.5, 0.2, 0.8], DepthConfig(drop_layers=2)) == [1, 3]
    with pytest.raises(UnicompError, match="cannot drop 6 of 5"):
        layers_to_drop(scores, DepthConfig(drop_layers=6, keep_first_last=False))
    with pytest.raises(UnicompError, match="cannot drop layers"):
        drop_layers(_llama(), [7])
