"""The sequential calibration engine on tiny real architectures (Llama, Qwen2, Gemma3)."""

from __future__ import annotations

import pytest
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from tiny_models import tiny_llama, tiny_qwen2, tiny_tokenizer
from unicomp.compress.apply import compress_model
from unicomp.compress.registry import make_method
from unicomp.compress.sequential import capture_layer_inputs, run_sequential
from unicomp.errors import UnicompError


def tiny_gemma3(seed: int = 0):
    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(vocab_size=len(tiny_tokenizer()), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                           sliding_window=8, layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                           bos_token_id=0, eos_token_id=0, pad_token_id=1)
    return Gemma3ForCausalLM(cfg).eval()


MAKERS = {"llama": tiny_llama, "qwen2": tiny_qwen2, "gemma3": tiny_gemma3}


def samples(n: int = 6, length: int = 24, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, len(tiny_tokenizer()), (n, length), generator=g).tolist()


@pytest.mark.parametrize("arch", list(MAKERS))
def test_layer_by_layer_replay_equals_plain_forward(arch):
    """Captured layer-0 inputs and per-layer replays reproduce output_hidden_states exactly."""
    model = MAKERS[arch]()
    data = samples()
    batches = [torch.tensor(data[:4]), torch.tensor(data[4:])]
    hidden, kwargs = capture_layer_inputs(model, batches)
    layers = model.model.layers
    with torch.no_grad():
        for b, ids in enumerate(batches):
            ref = model(input_ids=ids, output_hidden_states=True).hidden_states
            h = hidden[b]
            assert torch.equal(h, ref[0])
            for i, layer in enumerate(layers[:-1]):  # the last entry of hidden_states is after the final norm
                h = layer(h, **kwargs[i][b])
                assert torch.allclose(h, ref[i + 1], atol=1e-5), (arch, i)


def test_statistics_of_layer_zero_equal_a_plain_hooked_forward():
    model = tiny_llama()
    data = samples()
    reference = {}
    q = model.model.layers[0].self_attn.q_proj
    handle = q.register_forward_hook(lambda m, i, o: reference.setdefault("x", []).append(i[0].reshape(-1, 64)))
    with torch.no_grad():
        model(input_ids=torch.tensor(data))
    handle.remove()
    x = torch.cat(reference["x"])
    captured = {}

    class Spy(type(make_method("wanda", {}))):
        def compress_linear(self, name, linear, stats):
            if name == "self_attn.q_proj" and "sq" not in captured:
                captured["sq"] = stats.sq.clone()
                captured["tokens"] = stats.tokens
            return super().compress_linear(name, linear, stats)

    spy = Spy(make_method("wanda", {}).config)
    run_sequential(model, data, spy, batch_size=4)
    assert captured["tokens"] == x.shape[0]
    assert torch.allclose(captured["sq"], (x ** 2).sum(0), rtol=1e-5)


@pytest.mark.parametrize("arch", list(MAKERS))
@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_compress_model_prunes_every_decoder_linear_and_nothing_else(arch, method):
    model = MAKERS[arch]()
    embed = model.model.embed_tokens.weight.detach().clone()
    head = model.lm_head.weight.detach().clone()
    cal = type("Cal", (), {"samples": samples(8, 16), "record": {"n": 8}})()
    report = compress_model(model, make_method(method, {"sparsity": 0.5}), cal, batch_size=3)
    assert len(report.per_layer) == 7 * len(model.model.layers)
    for name, stats in report.per_layer.items():
        assert stats["sparsity"] >= 0.5 - 1e-9, name
    assert report.summary["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert torch.equal(model.model.embed_tokens.weight, embed) and torch.equal(model.lm_head.weight, head)
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=torch.tensor(samples(1, 10))).logits).all()
    assert report.wall_seconds > 0 and report.peak_memory_bytes > 0


def test_data_aware_method_without_calibration_is_an_error():
    with pytest.raises(UnicompError, match="needs calibration data"):
        compress_model(tiny_llama(), make_method("wanda", {}), None)


def test_unknown_architecture_names_class_and_fix():
    class Mystery(torch.nn.Module):
        pass

    with pytest.raises(UnicompError) as exc:
        compress_model(Mystery(), make_method("magnitude", {}), None)
    assert "Mystery" in str(exc.value) and "ANATOMIES" in str(exc.value)


def test_bf16_calibration_passes_keep_fp32_weights_and_nearly_the_same_mask():
    """Autocast speeds up the passes; weights stay fp32 and Wanda's masks barely move."""
    ref, fast = tiny_llama(), tiny_llama()
    cal = type("Cal", (), {"samples": samples(8, 16), "record": {}})()
    compress_model(ref, make_method("wanda", {"sparsity": 0.5}), cal)
    report = compress_model(fast, make_method("wanda", {"sparsity": 0.5}), cal, compute_dtype="bfloat16")
    assert report.extra["calibration_compute_dtype"] == "bfloat16"
    same = total = 0
    for (name, a), b in zip(ref.named_parameters(), fast.parameters()):
        assert b.dtype == torch.float32
        if name.endswith("proj.weight"):
            same += int(((a == 0) == (b == 0)).sum())
            total += a.numel()
    assert same / total > 0.97
    with pytest.raises(UnicompError, match="compute dtype"):
        compress_model(tiny_llama(), make_method("wanda", {}), cal, compute_dtype="int3")


def test_bf16_passes_still_accumulate_fp32_hessians():
    """Under autocast, X^T X must not be computed in bf16 (it would lose positive definiteness)."""
    model = tiny_llama()
    captured = {}
    base = make_method("sparsegpt", {})

    class Spy(type(base)):
        def compress_linear(self, name, linear, stats):
            if name == "self_attn.q_proj" and "h" not in captured:
                captured["h"] = stats.h.clone()
            return super().compress_linear(name, linear, stats)

    data = samples()
    run_sequential(model, data, Spy(base.config), batch_size=4, compute_dtype=torch.bfloat16)
    h = captured["h"]
    assert h.dtype == torch.float32
    assert torch.linalg.eigvalsh(h).min() > -1e-4 * h.diagonal().mean()


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_lm_head_is_pruned_only_when_asked_and_embeddings_never(method, tmp_path):
    cal = type("Cal", (), {"samples": samples(8, 16), "record": {}})()
    model = tiny_llama()  # ties lm_head to the input embeddings
    embed = model.model.embed_tokens.weight.detach().clone()
    compress_model(model, make_method(method, {"sparsity": 0.5}), cal)
    assert torch.equal(model.lm_head.weight, embed) and torch.equal(model.model.embed_tokens.weight, embed)

    model = tiny_llama()
    report = compress_model(model, make_method(method, {"sparsity": 0.5, "include_lm_head": True}), cal)
    head = model.lm_head.weight
    assert report.per_layer["lm_head"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert float((head == 0).float().mean()) == pytest.approx(0.5, abs=0.01)  # (one zero padding row)
    assert torch.equal(model.model.embed_tokens.weight, embed)  # untied, untouched
    model.save_pretrained(tmp_path / "m")
    reloaded = type(model).from_pretrained(tmp_path / "m")
    assert torch.equal(reloaded.lm_head.weight, head) and torch.equal(reloaded.model.embed_tokens.weight, embed)


def test_wanda_lm_head_scores_use_the_final_norm_outputs():
    """The head's inputs are the final norm of the (pruned) last layer's outputs: its mask equals a
    brute-force Wanda ranking on the hidden states a plain forward pass of the pruned decoder gives."""
    data = samples(4, 16)
    cal = type("Cal", (), {"samples": data, "record": {}})()
    decoder_only = tiny_llama()
    compress_model(decoder_only, make_method("wanda", {"sparsity": 0.5}), cal, batch_size=4)
    with torch.no_grad():
        out = decoder_only(input_ids=torch.tensor(data), output_hidden_states=True)
    x = out.hidden_states[-1].reshape(-1, decoder_only.config.hidden_size)  # HF applies the final norm here
    w = decoder_only.lm_head.weight.detach().clone()
    keep = (w.abs() * x.pow(2).sum(0).sqrt()).argsort(dim=1, descending=True, stable=True)[:, : w.shape[1] // 2]
    expected = torch.zeros_like(w).scatter_(1, keep, 1.0) * w

    model = tiny_llama()
    compress_model(model, make_method("wanda", {"sparsity": 0.5, "include_lm_head": True}), cal, batch_size=4)
    assert torch.equal(model.lm_head.weight, expected)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma3"])
@pytest.mark.parametrize("compute_dtype", [None, torch.bfloat16], ids=["fp32", "bf16"])
def test_true_sequential_replay_of_finished_blocks_changes_nothing_but_the_work(arch, compute_dtype):
    """GPTQ with attention / MLP replayed from cached o_proj / down_proj inputs gives bit-identical
    weights to recomputing every pass, while q_proj runs once per batch instead of four times."""
    from unicomp.compress.quant.gptq import GPTQ, GPTQConfig

    cal = samples(6, 24)
    results, q_calls = {}, {}
    for budget in (0, None):  # 0: replay off; None: default budget
        model = MAKERS[arch](seed=3)
        calls = []
        model.model.layers[0].self_attn.q_proj.register_forward_hook(lambda *a: calls.append(1))
        run_sequential(model, cal, GPTQ(GPTQConfig(group_size=16)), batch_size=4, compute_dtype=compute_dtype,
                       block_cache_bytes=budget)
        results[budget] = {n: m.weight.detach().clone() for n, m in model.named_modules()
                           if isinstance(m, torch.nn.Linear)}
        q_calls[budget] = len(calls)
    assert results[0].keys() == results[None].keys()
    for name in results[0]:
        assert torch.equal(results[0][name], results[None][name]), name
    batches = 2  # 6 samples, batch size 4
    assert q_calls == {0: 4 * batches, None: 1 * batches}  # o, gate/up, down passes + propagation vs o pass only


def test_block_replay_respects_its_memory_budget_and_methods_that_edit_other_modules():
    from unicomp.compress.quant.gptq import GPTQ, GPTQConfig

    cal = samples(6, 24)
    for budget, method, expected in [(1, GPTQ(GPTQConfig(group_size=16)), 8),  # too small: no replay
                                     (None, make_method("wanda", {"sparsity": 0.5}), 4)]:  # not true-sequential
        model = tiny_llama(seed=3)
        calls = []
        model.model.layers[0].self_attn.q_proj.register_forward_hook(lambda *a: calls.append(1))
        run_sequential(model, cal, method, batch_size=4, block_cache_bytes=budget)
        assert len(calls) == expected, (budget, method.name)
