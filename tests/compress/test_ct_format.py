"""compressed-tensors export of quantized models: exact round trips through our loader and the library's own."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from tiny_models import tiny_llama, tiny_qwen2, tiny_tokenizer
from unicomp.compress.apply import compress_model
from unicomp.compress.checkpoint import save_compressed
from unicomp.compress.quant import ct_format
from unicomp.compress.quant.grid import QuantizedWeight, attach
from unicomp.compress.registry import make_method
from unicomp.errors import UnicompError
from unicomp.models import load_model


def bf16_llama():
    """tiny_llama in bf16 as from_pretrained would give it: `.to(bf16)` also rounds the fp32 rotary buffers."""
    model = tiny_llama(dtype=torch.bfloat16)
    for name, buffer in tiny_llama().model.rotary_emb.named_buffers():
        setattr(model.model.rotary_emb, name, buffer)
    return model


TOKENS = torch.tensor([[1, 5, 9, 20, 33, 7, 64, 2]])
CASES = {  # name: (model factory, rtn options, W8A8?)
    "w4-sym-llama": (tiny_llama, {"bits": 4, "group_size": 32}, False),
    "w4-asym-qwen2": (tiny_qwen2, {"bits": 4, "group_size": 32, "symmetric": False}, False),
    "w8a8-llama": (tiny_llama, {"bits": 8, "group_size": None}, True),
    "w4-sym-llama-bf16": (bf16_llama, {"bits": 4, "group_size": 32}, False),
    "w3-asym-channel-llama": (tiny_llama, {"bits": 3, "group_size": None, "symmetric": False}, False),
    "w2-sym-qwen2": (tiny_qwen2, {"bits": 2, "group_size": 32}, False),
}


def quantized(case: str):
    factory, options, w8a8 = CASES[case]
    model = factory()
    report = compress_model(model, make_method("rtn", options))
    if w8a8:
        for module in model.modules():
            if hasattr(module, "quantized"):
                module.quantized.activations = "int8-per-token"
    return model, report


def weights_of(model) -> dict[str, QuantizedWeight]:
    return {name: qw for name, module in model.named_modules() if (qw := ct_format.quantized_weight_of(module)) is not None}


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(TOKENS).logits.float()


def assert_same_weights(got: QuantizedWeight, want: QuantizedWeight, name: str) -> None:
    assert torch.equal(got.q, want.q.to(torch.int32)), name
    assert torch.equal(got.scale, want.scale.float()) and torch.equal(got.zero, want.zero.float()), name
    assert got.scheme == want.scheme and got.activations == want.activations and got.g_idx is None, name


def save(model, report, folder, storage="compressed-tensors"):
    return save_compressed(model, tiny_tokenizer(), folder, report, base={"name": "tiny"}, storage=storage)


def library_load(folder, dtype):
    """compressed-tensors' own decompression, as transformers runs it on load (dequantize=True)."""
    from transformers import AutoModelForCausalLM, CompressedTensorsConfig

    with warnings.catch_warnings():  # "the model's own quantization_config is used": intended, we only set dequantize
        warnings.simplefilter("ignore", UserWarning)
        return AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype,
                                                    quantization_config=CompressedTensorsConfig(dequantize=True)).eval()


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_through_our_loader_and_the_library(tmp_path, case):
    """Our loader and compressed-tensors' give back the exact grid and logits; the folder is what the library writes."""
    model, report = quantized(case)
    dtype = next(model.parameters()).dtype
    save(model, report, tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())["quantization_config"]
    assert config["format"] == ("int-quantized" if "w8a8" in case else "pack-quantized")
    assert config["quant_method"] == "compressed-tensors" and config["quantization_status"] == "compressed"
    assert config["ignore"] == ["lm_head"]
    scales = [t for k, t in load_file(tmp_path / "ckpt" / "model.safetensors").items() if k.endswith("weight_scale")]
    assert scales and all(t.dtype == dtype for t in scales)  # model dtype holds our bf16-valued scales exactly

    ours = ct_format.load_quantized(tmp_path / "ckpt", dtype, pack=False)
    want = weights_of(model)
    got = weights_of(ours)
    assert set(got) == set(want)
    for name in want:
        assert_same_weights(got[name], want[name], name)
    assert torch.equal(logits(ours), logits(model))

    library = library_load(tmp_path / "ckpt", dtype)
    assert all(torch.equal(t, ours.state_dict()[k]) for k, t in library.state_dict().items())
    assert torch.equal(logits(library), logits(model))

    library_export(model, tmp_path / "lib")  # the same grid compressed and saved by compressed-tensors itself
    assert_same_folder(tmp_path / "ckpt", tmp_path / "lib")


def library_export(model, folder) -> None:
    """What compressed-tensors writes itself for the same grid: schemes applied, qparams set, ModelCompressor."""
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import (QuantizationArgs, QuantizationConfig, QuantizationScheme,
                                                 QuantizationStatus, apply_quantization_config, preset_name_to_scheme)

    model = copy.deepcopy(model)
    weights = weights_of(model)
    first = next(iter(weights.values()))
    grid = first.scheme
    strategy = {"strategy": "group", "group_size": grid.group_size} if grid.group_size else {"strategy": "channel"}
    w8a8_inputs = preset_name_to_scheme("W8A8", ["Linear"]).input_activations  # dynamic per-token int8
    scheme = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(num_bits=grid.bits, symmetric=grid.symmetric, **strategy),
                                input_activations=w8a8_inputs if first.activations else None)
    apply_quantization_config(model, QuantizationConfig(config_groups={"group_0": scheme}, ignore=["lm_head"]))
    for name, qw in weights.items():
        module = model.get_submodule(name)
        module.weight_scale.data.copy_(qw.scale)
        module.weight_zero_point.data.copy_(qw.zero - 2 ** (qw.scheme.bits - 1))
        module.quantization_status = QuantizationStatus.FROZEN
        del module.quantized
    compressor = ModelCompressor.from_pretrained_model(model)
    compressor.compress_model(model)
    model.save_pretrained(folder)
    compressor.update_config(str(folder))


def assert_same_folder(ours, lib) -> None:
    """Identical tensors (names, dtypes, values) and an identical config.json."""
    ours_t, lib_t = load_file(ours / "model.safetensors"), load_file(lib / "model.safetensors")
    assert set(ours_t) == set(lib_t)
    for key, tensor in lib_t.items():
        assert ours_t[key].dtype == tensor.dtype and torch.equal(ours_t[key], tensor), key
    assert json.loads((ours / "config.json").read_text()) == json.loads((lib / "config.json").read_text())


def test_load_model_reads_the_folder_with_quantized_linears(tmp_path):
    model, report = quantized("w4-asym-qwen2")
    save(model, report, tmp_path / "ckpt", storage="pack-quantized")
    loaded = load_model(str(tmp_path / "ckpt"))  # what `unicomp eval --model DIR` and runs call
    got, want = weights_of(loaded.model), weights_of(model)
    assert set(got) == set(want) and loaded.fingerprint
    for name in want:
        assert_same_weights(got[name], want[name], name)


def test_packed_models_export_the_same_folder(tmp_path):
    packed = pytest.importorskip("unicomp.compress.quant.packed")
    model, report = quantized("w4-asym-qwen2")
    save(model, report, tmp_path / "fake")
    packed.pack_model(model)
    assert not any(hasattr(m, "quantized") for m in model.modules())  # codes now come from to_quantized_weight()
    save(model, report, tmp_path / "packed")
    assert_same_folder(tmp_path / "packed", tmp_path / "fake")


def relabel_groups(qw: QuantizedWeight, order: torch.Tensor) -> QuantizedWeight:
    """The same grid with group k stored as group order[k]: a permuted, still block-contiguous g_idx."""
    size = qw.scheme.group_size
    g_idx = order[torch.arange(qw.q.shape[1]) // size]
    scale, zero = torch.empty_like(qw.scale), torch.empty_like(qw.zero)
    scale[:, order], zero[:, order] = qw.scale, qw.zero
    return QuantizedWeight(q=qw.q, scale=scale, zero=zero, scheme=qw.scheme, g_idx=g_idx)


def test_permuted_block_g_idx_round_trips_exactly(tmp_path):
    model, report = quantized("w4-asym-qwen2")
    down = model.model.layers[0].mlp.down_proj  # 128 inputs = 4 groups of 32
    before = down.weight.detach().clone()
    attach(down, relabel_groups(down.quantized, torch.tensor([2, 0, 3, 1])))
    assert torch.equal(down.weight, before)
    save(model, report, tmp_path / "ckpt")
    ours = ct_format.load_quantized(tmp_path / "ckpt", torch.float32, pack=False)
    assert torch.equal(ours.model.layers[0].mlp.down_proj.weight, before)
    assert torch.equal(logits(ours), logits(model))
    assert torch.equal(logits(library_load(tmp_path / "ckpt", torch.float32)), logits(model))


def scattered(qw: QuantizedWeight, seed: int = 0) -> QuantizedWeight:
    """An act-order grid as GPTQ leaves it without static groups: each group's columns spread over the row."""
    g = torch.Generator().manual_seed(seed)
    g_idx = qw.scheme.default_g_idx(qw.q.shape[1])[torch.randperm(qw.q.shape[1], generator=g)]
    return QuantizedWeight(q=qw.q, scale=qw.scale, zero=qw.zero, scheme=qw.scheme, g_idx=g_idx)


def test_scattered_act_order_groups_are_refused_but_legacy_folders_load(tmp_path):
    model, report = quantized("w4-sym-llama")
    q_proj = model.model.layers[1].self_attn.q_proj
    act_order = scattered(q_proj.quantized)
    attach(q_proj, act_order)
    with pytest.raises(UnicompError, match="act-order groups .* not contiguous.*static groups"):
        save(model, report, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()

    # a folder from before compressed-tensors dropped actorder="group": g_idx stored as weight_g_idx
    q_proj.quantized = QuantizedWeight(act_order.q, act_order.scale, act_order.zero, act_order.scheme)  # exportable
    save(model, report, tmp_path / "legacy")
    weights = tmp_path / "legacy" / "model.safetensors"
    tensors = load_file(weights)
    tensors["model.layers.1.self_attn.q_proj.weight_g_idx"] = act_order.g_idx.to(torch.int32)
    save_file(tensors, str(weights), metadata={"format": "pt"})
    config_path = tmp_path / "legacy" / "config.json"
    config = json.loads(config_path.read_text())
    config["quantization_config"]["config_groups"]["group_0"]["weights"]["actorder"] = "group"
    config_path.write_text(json.dumps(config))

    ours = ct_format.load_quantized(tmp_path / "legacy", torch.float32, pack=False)
    got = ours.model.layers[1].self_attn.q_proj.quantized
    assert torch.equal(got.g_idx, act_order.g_idx) and torch.equal(got.q, act_order.q)
    assert torch.equal(ours.model.layers[1].self_attn.q_proj.weight, act_order.dequantize())
    assert torch.equal(logits(ours), logits(model))


def calibration(n: int = 6, length: int = 16):
    g = torch.Generator().manual_seed(0)
    samples = torch.randint(2, len(tiny_tokenizer()), (n, length), generator=g).tolist()
    return type("Calibration", (), {"samples": samples, "record": {"n": n}})()


def test_real_smoothquant_and_gptq_outputs_export_exactly(tmp_path):
    """SmoothQuant's W8A8 and GPTQ's static groups round-trip; GPTQ's scattered act-order groups are refused."""
    smoothquant = pytest.importorskip("unicomp.compress.quant.smoothquant")
    gptq = pytest.importorskip("unicomp.compress.quant.gptq")
    runs = {"w8a8": smoothquant.SmoothQuant(smoothquant.SmoothQuantConfig()),
            "gptq": gptq.GPTQ(gptq.GPTQConfig(group_size=32, static_groups=True))}
    for name, method in runs.items():
        model = tiny_llama()
        report = compress_model(model, method, calibration(), batch_size=6)
        save(model, report, tmp_path / name)
        ours = ct_format.load_quantized(tmp_path / name, torch.float32, pack=False)
        want, got = weights_of(model), weights_of(ours)
        for key in want:
            assert torch.equal(got[key].dequantize(), want[key].dequantize()), key
        assert torch.equal(logits(ours), logits(model))
    config = json.loads((tmp_path / "w8a8" / "config.json").read_text())["quantization_config"]
    assert config["format"] == "int-quantized"

    model = tiny_llama()
    report = compress_model(model, gptq.GPTQ(gptq.GPTQConfig(group_size=32, static_groups=False)), calibration(), batch_size=6)
    with pytest.raises(UnicompError, match="act-order groups"):
        save(model, report, tmp_path / "act-order")


def test_exports_that_cannot_hold_the_weights_are_refused_before_writing(tmp_path):
    pruned = tiny_llama()
    pruned_report = compress_model(pruned, make_method("magnitude", {"sparsity": 0.5}))
    w4, w4_report = quantized("w4-sym-llama")
    w8a8, w8a8_report = quantized("w8a8-llama")
    w4a8, w4a8_report = quantized("w4-sym-llama")
    for module in w4a8.modules():
        if hasattr(module, "quantized"):
            module.quantized.activations = "int8-per-token"
    refused = [
        (pruned, pruned_report, "pack-quantized", "has none.*sparse-bitmask"),
        (pruned, pruned_report, "compressed-tensors", "has none"),
        (w4, w4_report, "int-quantized", "W8A8.*weight-only.*pack-quantized"),
        (w4a8, w4a8_report, "compressed-tensors", "8-bit symmetric per-channel.*4-bit"),
        (w8a8, w8a8_report, "pack-quantized", "weight-only.*activations.*int-quantized"),
        (w4, w4_report, "sparse-bitmask", "quantized.*compressed-tensors"),
    ]
    for model, report, storage, message in refused:
        with pytest.raises(UnicompError, match=message) as caught:
            save(model, report, tmp_path / "out", storage=storage)
        assert "\n" not in str(caught.value) and caught.value.fix
        assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())


def test_scales_fall_back_to_float32_when_the_model_dtype_cannot_hold_them():
    for value in (2.0 ** -20 * (1 + 2.0 ** -7), 2.0 ** 17):  # bf16 values: below fp16's subnormal step, above its max
        scale = torch.tensor([[value, 0.5]])
        assert torch.equal(ct_format._scale_for_storage(scale, torch.float16), scale)  # float32, exact
    assert ct_format._scale_for_storage(scale, torch.bfloat16).dtype == torch.bfloat16
