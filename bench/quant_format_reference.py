"""Reference GPTQ / AWQ checkpoints of a tiny random Llama, written by GPTQModel on CPU.

Builds a tiny random `LlamaForCausalLM` (fixed seed), quantizes it with GPTQModel's own
quantize pipeline (real GPTQ with calibration, real AWQ scale search) and writes each result
as a Hugging Face folder exactly as GPTQModel's `save()` writes it (config.json with its
`quantization_config`, quantize_config.json, model.safetensors). Each folder is then loaded
back with GPTQModel's own CPU torch kernels (`TorchLinear` for GPTQ, `AwqTorchLinear` for
AWQ GEMM) and the logits on fixed input ids are saved next to it, so a loader can be tested
against tensors and logits that the reference implementation produced.

As a sanity check the script also dequantizes the written tensors itself, in plain torch,
following the format spec (see `dequant_gptq_v1` / `dequant_awq_gemm` below), runs a plain
transformers forward with those weights and records the max abs difference to the reference
logits, plus the difference obtained with deliberately wrong conventions (to show how much
headroom a test tolerance has).

This script is standalone: it must NOT import `unicomp`. Run it in its own virtualenv
(GPTQModel 7.7 needs torch>=2.14.1, so 7.6.0 is the newest that runs on the 2.13 CPU wheel):

    python3 -m venv /root/.venvs/quantref
    V=/root/.venvs/quantref/bin
    # torch FIRST, the CPU wheel (here a local wheel; elsewhere use the CPU index:
    #   $V/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)
    $V/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
    # then GPTQModel, with torch pinned so pip can never swap in a CUDA build. The sdist is
    # pure python (its kernels are JIT-built on demand, none are needed for the torch path).
    echo 'torch==2.13.0+cpu' > /tmp/quantref-constraints.txt
    $V/pip install -c /tmp/quantref-constraints.txt 'gptqmodel==7.6.0'
    # optional, only for the informative transformers-integration check of GPTQ folders
    $V/pip install -c /tmp/quantref-constraints.txt 'optimum==2.3.0'

Versions this was written and run against:
    gptqmodel==7.6.0  torch==2.13.0+cpu  transformers==5.24.0  safetensors==0.8.0
    accelerate==1.15.0  numpy==2.2.6  tokenizers==0.23.3  torchao==0.18.0  optimum==2.3.0
    (Python 3.11.7)

Example (about 20 s on 2 cores, deterministic: reruns give byte-identical safetensors):

    /root/.venvs/quantref/bin/python bench/quant_format_reference.py --out /tmp/quantref/fixtures

Output under --out:
    fp16/                               unquantized model (safetensors) + tiny word-level tokenizer
    fp16.logits.safetensors             `input_ids` int64 [2,16], `logits` float32 [2,16,vocab]
    <variant>/                          GPTQModel-written checkpoint folder
    <variant>.logits.safetensors        same keys; logits from GPTQModel's own CPU kernel
    <variant>.reference.json            args, versions, kernel class, config, sanity check
    manifest.json                       everything above in one file
Variants (group size G = --group-size):
    gptq_w4_g{G}_sym_descact   GPTQ v1 ("gptq" checkpoint_format), sym=True,  desc_act=True
    gptq_w4_g{G}_asym          GPTQ v1 ("gptq" checkpoint_format), sym=False, desc_act=False
    awq_gemm_w4_g{G}_zp        AWQ GEMM ("version": "gemm"), zero_point=True

Format conventions (verified by the sanity check; all packing is little-endian nibbles,
nibble j of an int32 word = bits [4j, 4j+4), read with `(word >> 4j) & 0xF`):
  GPTQ v1 (checkpoint_format "gptq"):
    qweight int32 [in/8, out]: input row i = 8*r + j is nibble j of qweight[r, o].
    qzeros  int32 [n_groups, out/8]: output column o = 8*c + j is nibble j of qzeros[g, c];
            the stored value is zero-1 ("v1"); GPTQModel undoes it by adding 0x11111111 to the
            whole int32 word (wrapping), which equals per-nibble +1 unless a stored nibble
            borrowed (zero == 0, asym only); the check counts such words.
    scales  fp16 [n_groups, out];  g_idx int32 [in]: group of input row i (qweight rows stay in
            the original input order; with desc_act g_idx is non-monotonic, each group still
            owns exactly group_size rows; without desc_act g_idx == i // group_size).
    W[o, i] = scales[g_idx[i], o] * (q[i, o] - (z_stored[g_idx[i], o] + 1)).
  AWQ GEMM (version "gemm"):
    qweight int32 [in, out/8], qzeros int32 [n_groups, out/8]: nibble j of word c holds
            output column 8*c + [0, 2, 4, 6, 1, 3, 5, 7][j] (AWQ interleave; inverse
            permutation [0, 4, 1, 5, 2, 6, 3, 7]). Zeros are stored as is (no +1).
    scales  fp16 [n_groups, out]; no g_idx, group of input row i is i // group_size.
    W[o, i] = scales[i // G, o] * (q[i, o] - z[i // G, o]).
    AWQ folds its activation scales into the preceding ops, so the checkpoint's RMSNorm
    weights (and v_proj for o_proj when shapes allow) differ from the fp16 model: a loader
    must take every tensor from the AWQ checkpoint.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path

# GPTQModel 7.6.0 sizes its CPU thread pool as (cpu_count + 1) // 2 workers, which is 1 on a
# 2-core machine, but its "model_loader:cpu" sub-pool asks for 2 -> ValueError at quantize().
# Setting the worker count explicitly avoids that. Must be set before gptqmodel is imported.
os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")

KEY_PACKAGES = [
    "gptqmodel", "torch", "transformers", "safetensors", "accelerate", "numpy",
    "tokenizers", "torchao", "defuser", "tokenicer", "logbar", "device-smi", "huggingface_hub",
    "optimum",
]

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]          # packed nibble j holds logical column AWQ_ORDER[j]
AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]  # logical column k is packed nibble AWQ_REVERSE_ORDER[k]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--variants", default="gptq_sym_descact,gptq_asym,awq_gemm",
                   help="comma list of: gptq_sym_descact, gptq_asym, awq_gemm")
    p.add_argument("--group-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="model init seed")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--intermediate", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--init-std", type=float, default=0.02, help="LlamaConfig.initializer_range")
    p.add_argument("--calib-samples", type=int, default=16)
    p.add_argument("--calib-len", type=int, default=64)
    p.add_argument("--calib-seed", type=int, default=1)
    p.add_argument("--input-seed", type=int, default=2)
    p.add_argument("--batch", type=int, default=2, help="rows of the fixed input ids")
    p.add_argument("--seq", type=int, default=16, help="columns of the fixed input ids")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-hf-check", action="store_true",
                   help="skip the informative transformers AutoModelForCausalLM load (needs optimum for GPTQ)")
    p.add_argument("--allow-compile", action="store_true",
                   help="let GPTQModel torch.compile its dequant (default: eager, TORCH_COMPILE_DISABLE=1)")
    return p.parse_args(argv)


def versions():
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in KEY_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_files(folder: Path):
    return {p.name: {"bytes": p.stat().st_size, "sha256": sha256(p)}
            for p in sorted(folder.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------------------------
# Plain-torch unpacking following the format spec (independent of GPTQModel's code)
# --------------------------------------------------------------------------------------------

def _nibbles_last(words, torch):
    """int32 [..., n] -> int64 [..., 8n]; element 8c+j = nibble j (bits 4j..4j+3) of word c."""
    w = words.to(torch.int64) & 0xFFFFFFFF
    shifts = torch.arange(0, 32, 4, dtype=torch.int64)
    nib = (w.unsqueeze(-1) >> shifts) & 0xF
    return nib.reshape(*words.shape[:-1], words.shape[-1] * 8)


def _gptq_qweight_rows(qweight, torch):
    """GPTQ qweight int32 [in/8, out] -> int64 [in, out]; row 8r+j = nibble j of qweight[r]."""
    w = qweight.to(torch.int64) & 0xFFFFFFFF
    shifts = torch.arange(0, 32, 4, dtype=torch.int64)
    nib = (w.unsqueeze(1) >> shifts.view(1, 8, 1)) & 0xF   # [in/8, 8, out]
    return nib.reshape(qweight.shape[0] * 8, qweight.shape[1])


def dequant_gptq_v1(t, torch, *, zeros_mode="word", use_g_idx=True, group_size=None):
    """Return W [out, in] (fp16) from a GPTQ v1 layer dict t = {qweight, qzeros, scales, g_idx}.

    zeros_mode: "word"   add 0x11111111 to each int32 qzeros word, then unpack (GPTQModel);
                "nibble" unpack, then +1 per nibble (AutoGPTQ style);
                "none"   WRONG on purpose: no +1.
    """
    qw, qz, sc, gi = t["qweight"], t["qzeros"], t["scales"], t["g_idx"]
    q = _gptq_qweight_rows(qw, torch)                               # [in, out]
    if zeros_mode == "word":
        z = _nibbles_last(((qz.to(torch.int64) + 0x11111111) & 0xFFFFFFFF), torch)
    elif zeros_mode == "nibble":
        z = _nibbles_last(qz, torch) + 1
    elif zeros_mode == "none":
        z = _nibbles_last(qz, torch)
    else:
        raise ValueError(zeros_mode)
    in_features = q.shape[0]
    if use_g_idx:
        g = gi.to(torch.int64)
    else:  # WRONG on purpose for act-order checkpoints: assume sequential groups
        g = torch.arange(in_features) // group_size
    w = sc[g].float() * (q - z[g]).float()                           # [in, out]
    return w.t().contiguous().to(torch.float16)


def dequant_awq_gemm(t, torch, group_size, *, interleave=True, plus_one=False):
    """Return W [out, in] (fp16) from an AWQ GEMM layer dict t = {qweight, qzeros, scales}."""
    qw, qz, sc = t["qweight"], t["qzeros"], t["scales"]
    q = _nibbles_last(qw, torch)                                     # packed order [in, out]
    z = _nibbles_last(qz, torch)                                     # packed order [G, out]
    if interleave:
        n = q.shape[-1]
        perm = torch.arange(n).view(-1, 8)[:, AWQ_REVERSE_ORDER].reshape(-1)
        q, z = q[:, perm], z[:, perm]
    if plus_one:  # WRONG on purpose: GPTQ v1 convention
        z = z + 1
    g = torch.arange(q.shape[0]) // group_size
    w = sc[g].float() * (q - z[g]).float()
    return w.t().contiguous().to(torch.float16)


# --------------------------------------------------------------------------------------------

def build_tokenizer(vocab_size, folder):
    """Tiny word-level tokenizer ("t0".."tN"); GPTQModel.load insists on a tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(vocab_size)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="t0"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    ht = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="t0", pad_token="t0",
                                 bos_token="t1", eos_token="t2")
    ht.save_pretrained(folder)


def variant_specs(args):
    G = args.group_size
    return {
        "gptq_sym_descact": {"name": f"gptq_w4_g{G}_sym_descact", "method": "gptq",
                             "qc": {"bits": 4, "group_size": G, "desc_act": True, "sym": True},
                             "backend": "GPTQ_TORCH"},
        "gptq_asym": {"name": f"gptq_w4_g{G}_asym", "method": "gptq",
                      "qc": {"bits": 4, "group_size": G, "desc_act": False, "sym": False},
                      "backend": "GPTQ_TORCH"},
        # AWQ's zero_point=True is sym=False in GPTQModel's config (it writes zero_point = not sym)
        "awq_gemm": {"name": f"awq_gemm_w4_g{G}_zp", "method": "awq",
                     "qc": {"bits": 4, "group_size": G, "sym": False, "method": "awq", "format": "gemm"},
                     "backend": "AWQ_TORCH"},
    }


def plain_forward(fp_dir, ckpt_dir, spec, args, input_ids, torch, mode):
    """Plain transformers forward with weights dequantized by this script."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, LlamaForCausalLM

    cfg = AutoConfig.from_pretrained(fp_dir)
    model = LlamaForCausalLM(cfg).to(torch.float16).eval()
    sd = load_file(str(Path(ckpt_dir) / "model.safetensors"))
    new_sd, layers, weights = {}, {}, {}
    for k, v in sd.items():
        for suffix in ("qweight", "qzeros", "scales", "g_idx"):
            if k.endswith("." + suffix):
                layers.setdefault(k[: -len(suffix) - 1], {})[suffix] = v
                break
        else:
            new_sd[k] = v
    stats = {"quantized_linears": len(layers), "borrow_words": 0, "qzeros_words": 0,
             "word_vs_nibble_weight_mismatch": 0}
    for prefix, t in layers.items():
        if spec["method"] == "gptq":
            w = dequant_gptq_v1(t, torch, zeros_mode=mode.get("zeros_mode", "word"),
                                use_g_idx=mode.get("use_g_idx", True), group_size=args.group_size)
            if mode == {}:
                w_nib = dequant_gptq_v1(t, torch, zeros_mode="nibble")
                stats["word_vs_nibble_weight_mismatch"] += int((w != w_nib).sum())
                nib = _nibbles_last(t["qzeros"], torch)
                stats["borrow_words"] += int((nib == 15).any(-1).sum())  # stored 15 <=> zero 0 borrowed
                stats["qzeros_words"] += t["qzeros"].numel()
                in_f = t["g_idx"].numel()
                trivial = bool((t["g_idx"].to(torch.int64) == torch.arange(in_f) // args.group_size).all())
                stats["g_idx_trivial_layers"] = stats.get("g_idx_trivial_layers", 0) + int(trivial)
        else:
            w = dequant_awq_gemm(t, torch, args.group_size, interleave=mode.get("interleave", True),
                                 plus_one=mode.get("plus_one", False))
        new_sd[prefix + ".weight"] = w
        weights[prefix] = w
    missing, unexpected = model.load_state_dict(new_sd, strict=False)
    missing = [m for m in missing if not m.endswith("rotary_emb.inv_freq")]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing={missing} unexpected={unexpected}")
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits.float()
    return logits, stats, weights


def reference_dequant_weights(model, spec):
    """W [out, in] per quantized Linear, dequantized by GPTQModel's own code."""
    import torch
    out = {}
    for name, m in model.named_modules():
        if not hasattr(m, "qweight"):
            continue
        if spec["method"] == "gptq":
            w = m.dequantize_weight()                     # TorchLinear: [in, out], v2 zeros
        else:
            from gptqmodel.quantization.awq.utils.packing_utils import dequantize_gemm
            w = dequantize_gemm(m.qweight, m.qzeros, m.scales, m.bits, m.group_size)  # [in, out]
        out[name] = w.t().contiguous().to(torch.float16)
    return out


def compare_to_fp16(fp_dir, ckpt_dir, torch):
    """Which unquantized tensors of the checkpoint differ from the fp16 model (AWQ folds scales)."""
    from safetensors.torch import load_file
    fp = load_file(str(Path(fp_dir) / "model.safetensors"))
    q = load_file(str(Path(ckpt_dir) / "model.safetensors"))
    differ = sorted(k for k, v in q.items() if k in fp and not torch.equal(v, fp[k]))
    return {"unquantized_tensors_differing_from_fp16": differ,
            "unquantized_tensors_equal_to_fp16": sum(1 for k in q if k in fp) - len(differ)}


def transformers_auto_check(vdir, input_ids, ref_logits, torch):
    """Load the folder with transformers' own integration (it picks a GPTQModel kernel itself)."""
    try:
        from transformers import AutoModelForCausalLM
        m = AutoModelForCausalLM.from_pretrained(str(vdir), device_map="cpu", dtype=torch.float16).eval()
        kernels = sorted({f"{type(x).__module__}.{type(x).__qualname__}"
                          for x in m.modules() if hasattr(x, "qweight")})
        with torch.no_grad():
            lg = m(input_ids=input_ids).logits.float()
        return {"kernels": kernels, "max_abs_vs_reference": float((lg - ref_logits).abs().max())}
    except Exception as e:  # noqa: BLE001 - optimum missing etc.: informative only
        return {"error": f"{type(e).__name__}: {e}"}


def main(argv=None):
    args = parse_args(argv)
    if not args.allow_compile:
        os.environ["TORCH_COMPILE_DISABLE"] = "1"
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ver = versions()
    t_start = time.time()

    # ---- tiny random fp16 model -------------------------------------------------------------
    cfg = LlamaConfig(hidden_size=args.hidden, intermediate_size=args.intermediate,
                      num_hidden_layers=args.layers, num_attention_heads=args.heads,
                      num_key_value_heads=args.kv_heads, vocab_size=args.vocab,
                      max_position_embeddings=max(128, args.calib_len, args.seq),
                      initializer_range=args.init_std, tie_word_embeddings=False,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(args.seed)
    fp_model = LlamaForCausalLM(cfg).to(torch.float16).eval()
    fp_dir = out / "fp16"
    fp_model.save_pretrained(fp_dir)
    build_tokenizer(args.vocab, fp_dir)

    input_ids = torch.randint(0, args.vocab, (args.batch, args.seq),
                              generator=torch.Generator().manual_seed(args.input_seed))
    with torch.no_grad():
        fp_logits = fp_model(input_ids=input_ids).logits.float()
    save_file({"input_ids": input_ids.contiguous(), "logits": fp_logits.contiguous()},
              str(out / "fp16.logits.safetensors"), metadata={"computed_by": "transformers LlamaForCausalLM fp16"})
    del fp_model
    gen = torch.Generator().manual_seed(args.calib_seed)
    calib = [{"input_ids": torch.randint(0, args.vocab, (args.calib_len,), generator=gen).tolist(),
              "attention_mask": [1] * args.calib_len} for _ in range(args.calib_samples)]

    from gptqmodel import BACKEND, GPTQModel, QuantizeConfig

    manifest = {"args": vars(args), "versions": ver, "env": {
        k: os.environ.get(k) for k in ("GPTQMODEL_CPU_WORKERS", "TORCH_COMPILE_DISABLE")},
        "fp16": {"folder": str(fp_dir), "logits": str(out / "fp16.logits.safetensors"),
                 "files": folder_files(fp_dir)}, "variants": {}}
    specs = variant_specs(args)
    for key in [v.strip() for v in args.variants.split(",") if v.strip()]:
        spec = specs[key]
        name, backend = spec["name"], getattr(BACKEND, spec["backend"])
        vdir = out / name
        t0 = time.time()
        # offload_to_disk=False: otherwise a random temp path lands in the saved config's meta
        qc = QuantizeConfig(**spec["qc"], offload_to_disk=False)
        qmodel = GPTQModel.load(str(fp_dir), qc, device="cpu", dtype=torch.float16)
        qmodel.quantize(calib, batch_size=1, backend=backend)
        qmodel.save(str(vdir))
        del qmodel
        gc.collect()
        t_quant = time.time() - t0

        # ---- reference forward: GPTQModel's own CPU torch kernel on the saved folder --------
        rmodel = GPTQModel.load(str(vdir), device="cpu", backend=backend, dtype=torch.float16)
        kernels = sorted({f"{type(m).__module__}.{type(m).__qualname__}"
                          for m in rmodel.model.modules() if hasattr(m, "qweight")})
        qzero_formats = sorted({m.qzero_format() for m in rmodel.model.modules()
                                if hasattr(m, "qweight") and hasattr(m, "qzero_format")})
        with torch.no_grad():
            ref_logits = rmodel.model(input_ids=input_ids).logits.float()
            ref_weights = reference_dequant_weights(rmodel.model, spec)
        del rmodel
        gc.collect()
        logits_path = out / f"{name}.logits.safetensors"
        save_file({"input_ids": input_ids.contiguous(), "logits": ref_logits.contiguous()},
                  str(logits_path), metadata={"computed_by": ",".join(kernels) + f" (BACKEND.{spec['backend']})"})
        # (one metadata key only: safetensors orders several keys differently from run to run)

        # ---- sanity check: plain-torch dequant per the spec, then a plain transformers forward
        check = {}
        plain, stats, spec_weights = plain_forward(fp_dir, vdir, spec, args, input_ids, torch, {})
        check["spec_dequant_vs_reference_max_abs"] = float((plain - ref_logits).abs().max())
        check["spec_weights_vs_reference_kernel_weights_max_abs"] = max(
            float((spec_weights[n].float() - w.float()).abs().max()) for n, w in ref_weights.items())
        check["weights_compared"] = len(ref_weights)
        check["dequant_stats"] = stats
        check.update(compare_to_fp16(fp_dir, vdir, torch))
        wrong_modes = ({"no_plus_one_on_zeros": {"zeros_mode": "none"},
                        "ignore_g_idx": {"use_g_idx": False}} if spec["method"] == "gptq" else
                       {"no_awq_interleave": {"interleave": False}, "plus_one_on_zeros": {"plus_one": True}})
        for label, mode in wrong_modes.items():
            wl, _, _ = plain_forward(fp_dir, vdir, spec, args, input_ids, torch, mode)
            check[f"WRONG_{label}_vs_reference_max_abs"] = float((wl - ref_logits).abs().max())
        check["reference_vs_fp16_max_abs"] = float((ref_logits - fp_logits).abs().max())
        check["reference_logits_abs_max"] = float(ref_logits.abs().max())
        if not args.no_hf_check:
            check["transformers_auto_load"] = transformers_auto_check(vdir, input_ids, ref_logits, torch)

        cfg_json = json.loads((vdir / "config.json").read_text())
        info = {"folder": str(vdir), "logits": str(logits_path), "variant": key,
                "packed_by": "gptqmodel GPTQModel.load(fp16, QuantizeConfig).quantize(calib, backend="
                             f"BACKEND.{spec['backend']}) + .save()",
                "quantize_config_args": spec["qc"], "logits_backend": f"BACKEND.{spec['backend']}",
                "logits_computed_by": kernels, "runtime_qzero_format": qzero_formats,
                "quantization_config": cfg_json.get("quantization_config"),
                "files": folder_files(vdir), "quantize_seconds": round(t_quant, 1),
                "sanity_check": check, "args": vars(args), "versions": ver}
        (out / f"{name}.reference.json").write_text(json.dumps(info, indent=2, default=str))
        manifest["variants"][name] = info
        print(f"[{name}] kernels={kernels} spec-dequant max|diff|={check['spec_dequant_vs_reference_max_abs']:.3g} "
              f"(wrong conventions: " + ", ".join(f"{k}={v:.3g}" for k, v in check.items() if k.startswith("WRONG")) + ")",
              flush=True)

    manifest["seconds"] = round(time.time() - t_start, 1)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    print(f"wrote {out} in {manifest['seconds']} s")


if __name__ == "__main__":
    main()
