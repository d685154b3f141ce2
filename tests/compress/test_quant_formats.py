"""The paper's public checkpoint formats load onto unicomp's grid: GPTQ (act-order g_idx, symmetric
and asymmetric) and AWQ GEMM folders written by GPTQModel 7.6's own packers (the reference, which
runs on a CPU; bench/quant_format_reference.py regenerates the fixtures), checked against the
logits GPTQModel's own CPU kernels computed for the same input ids."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from unicomp.compress.quant import int32_words
from unicomp.compress.quant.awq_format import AWQ_ORDER, load_awq
from unicomp.compress.quant.gptq_format import load_gptq
from unicomp.errors import UnicompError
from unicomp.models import load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "quant_formats"
VARIANTS = ["gptq_w4_g32_sym_descact", "gptq_w4_g32_asym", "awq_gemm_w4_g32_zp"]


def reference(variant: str) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = load_file(FIXTURES / f"{variant}.logits.safetensors")
    return tensors["input_ids"], tensors["logits"]


def bf16_tolerance(logits: torch.Tensor) -> float:
    """One bf16 rounding step at the largest logit: 2^-8 of it (bf16 keeps 8 significant bits)."""
    return float(logits.abs().max()) * 2 ** -8


@pytest.mark.parametrize("variant", VARIANTS)
def test_reference_checkpoints_give_the_references_logits(variant: str) -> None:
    ids, expected = reference(variant)
    model = load_model(str(FIXTURES / variant), dtype="float32").model
    with torch.no_grad():
        got = model(ids).logits.float()
    assert (got - expected).abs().max() <= bf16_tolerance(expected)
    # Every decoder linear arrived quantized (packed, or the exact fp32 reference of its grid).
    linears = [n for n, m in model.named_modules() if n.startswith("model.layers")
               and (hasattr(m, "to_quantized_weight") or hasattr(m, "quantized"))]
    assert len(linears) == 14


@pytest.mark.parametrize("variant", VARIANTS)
def test_packed_bf16_execution_stays_within_bf16_rounding_of_the_reference(variant: str) -> None:
    ids, expected = reference(variant)
    loader = load_awq if variant.startswith("awq") else load_gptq
    model = loader(FIXTURES / variant, torch.bfloat16)
    with torch.no_grad():
        got = model(ids).logits.float()
    # bf16 activations through 2 layers: a few bf16 steps of the largest logit.
    assert (got - expected).abs().max() <= 8 * bf16_tolerance(expected)


def test_act_order_groups_are_applied_and_wrong_conventions_would_show() -> None:
    """Decoding without g_idx (or AWQ without its interleave) moves the logits far outside tolerance,
    so the agreement above is not an accident of tiny weights."""
    ids, expected = reference("gptq_w4_g32_sym_descact")
    state = load_file(FIXTURES / "gptq_w4_g32_sym_descact" / "model.safetensors")
    g_idx = state["model.layers.0.self_attn.q_proj.g_idx"].long()
    assert not torch.equal(g_idx, torch.arange(g_idx.numel()) // 32)  # act-order really scattered the groups
    assert torch.equal(torch.bincount(g_idx), torch.full((4,), 32))
    model = load_gptq(FIXTURES / "gptq_w4_g32_sym_descact", torch.float32, pack=False)
    qw = model.get_submodule("model.layers.0.self_attn.q_proj").quantized
    assert qw.g_idx is not None and bool((qw.zero == 8).all())  # symmetric: every zero is 8 after v1's minus one
    words = state["model.layers.0.self_attn.q_proj.qweight"]
    manual = torch.stack([(words >> (4 * j)) & 15 for j in range(8)], dim=1).reshape(-1, words.shape[1])
    assert torch.equal(qw.q, manual.t())  # input row 8r + j is nibble j of word r


def test_int32_word_unpacking_matches_a_bit_by_bit_count() -> None:
    torch.manual_seed(0)
    codes = torch.randint(0, 16, (3, 16), dtype=torch.int32)
    slots = [codes[:, 8 * c:8 * c + 8][:, list(AWQ_ORDER)] for c in range(2)]  # slot j holds column AWQ_ORDER[j]
    words = torch.stack([sum((s[:, j].to(torch.int64) << (4 * j)) for j in range(8)) for s in slots], dim=1)
    words = words.to(torch.int64).where(words < 2 ** 31, words - 2 ** 32).to(torch.int32)
    assert torch.equal(int32_words.unpack(words, 4, dim=1, order=AWQ_ORDER), codes)
    eights = torch.randint(0, 256, (8, 5), dtype=torch.int32)
    packed = sum((eights[j::4].to(torch.int64) << (8 * j)) for j in range(4))
    packed = packed.where(packed < 2 ** 31, packed - 2 ** 32).to(torch.int32)
    assert torch.equal(int32_words.unpack(packed, 8, dim=0), eights)  # row 4r + j is byte j of word r


def test_a_gptq_checkpoint_is_a_prebuilt_variant_of_a_run(tmp_path: Path) -> None:
    from unicomp.config import ExperimentConfig
    from unicomp.runs.experiment import run_experiment

    base = tmp_path / "fp16"
    base.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(FIXTURES / "gptq_w4_g32_asym" / name, base / name)
    config = json.loads((base / "config.json").read_text())
    config.pop("quantization_config")
    (base / "config.json").write_text(json.dumps(config))
    # The base: the GPTQ model's own dequantized weights saved dense (what the variant must equal).
    dense = load_gptq(FIXTURES / "gptq_w4_g32_asym", torch.float32, pack=False)
    save_file({k: v.contiguous() for k, v in dense.state_dict().items() if k != "lm_head.weight" or
               not config.get("tie_word_embeddings")}, base / "model.safetensors")
    cfg = ExperimentConfig(name="gptq-prebuilt", model=str(base), store=str(tmp_path / "s.sqlite"),
                           output_dir=str(tmp_path / "out"),
                           evaluation={"tasks": ["wikitext2_fixed"], "task_limits": {"wikitext2_fixed": 1}, "batch_size": 1},
                           distance={"windows": 1, "seq_len": 64},
                           variants=[{"name": "gptq", "model": str(FIXTURES / "gptq_w4_g32_asym")}])
    result = run_experiment(cfg)
    (row,) = [r for r in result["rows"] if r["model"] == "gptq"]
    base_row = next(r for r in result["rows"] if r["model"] == "base" and r["task"] == row["task"])
    assert row["score"] == pytest.approx(base_row["score"], rel=1e-3)  # same weights, packed vs dense
    assert result["distance"]["gptq"]["kl_mean"] < 1e-4


def test_unreadable_variants_are_refused_with_a_fix(tmp_path: Path) -> None:
    from unicomp.compress.quant.gptq_format import is_gptq_folder

    folder = tmp_path / "gptq3"
    shutil.copytree(FIXTURES / "gptq_w4_g32_asym", folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"]["bits"] = 3
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnicompError, match="3-bit GPTQ checkpoints are not readable.*2, 4, 8-bit"):
        load_gptq(folder)
    assert not is_gptq_folder(folder)  # left to transformers (and its kernels) rather than refused
    assert is_gptq_folder(FIXTURES / "gptq_w4_g32_asym")
    broken = tmp_path / "gidx"
    shutil.copytree(FIXTURES / "gptq_w4_g32_sym_descact", broken)
    state = load_file(broken / "model.safetensors")
    state["model.layers.0.self_attn.q_proj.g_idx"] = state["model.layers.0.self_attn.q_proj.g_idx"] + 4
    save_file(state, broken / "model.safetensors")
    with pytest.raises(UnicompError, match="g_idx is not one group in"):
        load_gptq(broken)
    awq = tmp_path / "gemv"
    shutil.copytree(FIXTURES / "awq_gemm_w4_g32_zp", awq)
    config = json.loads((awq / "config.json").read_text())
    config["quantization_config"]["version"] = "gemv"
    (awq / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnicompError, match="'gemv' checkpoints are not readable"):
        load_awq(awq)
