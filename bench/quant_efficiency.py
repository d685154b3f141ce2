"""Memory and CPU speed of packed quantized models, side by side in one process.

Variants (each built from the same fp32 base):
  fp32   the base model
  bf16   the base cast to bfloat16
  w4a16  RTN 4-bit symmetric, --group-size (64: SmolLM2's 576 hidden is not divisible by 128),
         packed to the int4 kernel (Int4PackedLinear)
  w8a16  RTN 8-bit symmetric per-channel, packed to the int8 weight-only kernel (Int8WeightLinear)
  w8a8   RTN 8-bit symmetric per-channel weights marked activations="int8-per-token", packed to
         torch._int_mm (W8A8Linear); no smoothing, so it measures speed, not SmoothQuant quality
Packed variants compute in `default_compute_dtype` (bf16 on CPUs with avx512_bf16) and the rest of
the model (embeddings, norms, lm_head) is cast to that dtype too.

Measured per variant:
  - resident bytes of the decoder layers' linear weights (`linear_weight_bytes`) and ratio to bf16
  - decode tokens/s at batch 1: greedy with KV cache, --new-tokens steps after a --prompt-tokens
    prompt (prompt prefill not timed), median of --repeats after one warm-up
  - prefill tokens/s: one forward of 1 x --prefill-tokens, median of --repeats after one warm-up
  - top-1 agreement of the prefill logits with the fp32 base (quantization + packing error) and
    with the fake-quantized model before packing (packing error alone: bf16 rounding, for W8A8
    also the int8 activations)

    python bench/quant_efficiency.py --out docs/bench-quant-efficiency.json              # SmolLM2-135M
    python bench/quant_efficiency.py --synthetic-hidden 2048 --synthetic-layers 4        # wider, random

Timings use torch.set_num_threads(--threads) (default 2); run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from typing import Any, Callable

import torch

VARIANTS = ("fp32", "bf16", "w4a16", "w8a16", "w8a8")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="unicomp model alias or path")
    ap.add_argument("--synthetic-hidden", type=int, default=None, help="use a random Llama of this width instead")
    ap.add_argument("--synthetic-layers", type=int, default=4)
    ap.add_argument("--synthetic-vocab", type=int, default=8192)
    ap.add_argument("--group-size", type=int, default=64, help="W4A16 group size")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prefill-tokens", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    return ap.parse_args()


# --- models ---------------------------------------------------------------------------------------


def synthetic_llama(hidden: int, layers: int, vocab: int) -> torch.nn.Module:
    """A random Llama of the given width (heads of 64, GQA 4:1, MLP ~8/3 x hidden), to see kernels at scale."""
    from transformers import LlamaConfig, LlamaForCausalLM

    heads = max(1, hidden // 64)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=_round_up(8 * hidden // 3, 256),
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 4),
                      max_position_embeddings=4096, tie_word_embeddings=True)
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).eval()


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def base_model(args: argparse.Namespace) -> tuple[torch.nn.Module, Any, str]:
    """(model, tokenizer or None for the random model, name)."""
    if args.synthetic_hidden:
        name = f"synthetic-llama-h{args.synthetic_hidden}-l{args.synthetic_layers}-v{args.synthetic_vocab}"
        return synthetic_llama(args.synthetic_hidden, args.synthetic_layers, args.synthetic_vocab), None, name
    from unicomp.models.loading import load_model

    loaded = load_model(args.model, dtype="float32")
    return loaded.model, loaded.tokenizer, args.model


def token_inputs(args: argparse.Namespace, vocab: int, tokenizer: Any) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Decode prompt and prefill ids: C4 text for a real model, so top-1 agreement means something
    (on random ids the next-token distribution is nearly flat and any rounding flips the argmax);
    random ids for the random model."""
    if tokenizer is None:
        g = torch.Generator().manual_seed(0)
        return (torch.randint(0, vocab, (1, args.prompt_tokens), generator=g),
                torch.randint(0, vocab, (1, args.prefill_tokens), generator=g), "random ids")
    from unicomp.data.calibration import build_calibration

    cal = build_calibration({"source": "c4", "n_samples": 2, "seed": 1,
                             "seq_len": max(args.prompt_tokens, args.prefill_tokens)}, tokenizer)
    prompt, long = cal.samples
    return (torch.tensor([prompt[:args.prompt_tokens]]), torch.tensor([long[:args.prefill_tokens]]),
            f"C4 windows (seed 1, {cal.record['sha256'][:19]})")


def quantized(base: torch.nn.Module, options: dict[str, Any], ids: torch.Tensor,
              activations: str | None = None) -> tuple[torch.nn.Module, dict]:
    """RTN-quantize a copy of `base`, pack it, and cast the rest of the model to the compute dtype.

    The summary keeps the fake-quantized model's logits on `ids` ("_fake_logits"), so packing error
    can be told apart from quantization error.
    """
    from unicomp.compress.apply import compress_model
    from unicomp.compress.quant.packed import default_compute_dtype, pack_model
    from unicomp.compress.registry import make_method
    from unicomp.models.anatomy import decoder_layers

    model = copy.deepcopy(base)
    compress_model(model, make_method("rtn", options))
    if activations is not None:
        for module in decoder_layers(model).modules():
            if getattr(module, "quantized", None) is not None:
                module.quantized.activations = activations
    fake_logits = prefill(model, ids)  # W8A8's activation rounding only happens once packed
    summary = pack_model(model, "auto")
    return model.to(default_compute_dtype("cpu")), {**summary, "_fake_logits": fake_logits}


def build(variant: str, base: torch.nn.Module, group_size: int, ids: torch.Tensor) -> tuple[torch.nn.Module, dict]:
    builders: dict[str, Callable[[], tuple[torch.nn.Module, dict]]] = {
        "fp32": lambda: (base, {}),
        "bf16": lambda: (copy.deepcopy(base).to(torch.bfloat16), {}),
        "w4a16": lambda: quantized(base, {"bits": 4, "group_size": group_size}, ids),
        "w8a16": lambda: quantized(base, {"bits": 8, "group_size": None}, ids),
        "w8a8": lambda: quantized(base, {"bits": 8, "group_size": None}, ids, activations="int8-per-token"),
    }
    return builders[variant]()


# --- measurements ---------------------------------------------------------------------------------


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-call allocations, kernel dispatch caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.inference_mode()
def decode(model: torch.nn.Module, prompt: torch.Tensor, new_tokens: int) -> float:
    """Seconds for `new_tokens` greedy steps with KV cache after an untimed prompt prefill."""
    out = model(prompt, use_cache=True)
    past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
    start = time.perf_counter()
    for _ in range(new_tokens):
        out = model(token, past_key_values=past, use_cache=True)
        past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
    return time.perf_counter() - start


def decode_tokens_per_s(model: torch.nn.Module, prompt: torch.Tensor, new_tokens: int, repeats: int) -> float:
    decode(model, prompt, new_tokens)  # warm-up
    return new_tokens / statistics.median(decode(model, prompt, new_tokens) for _ in range(repeats))


@torch.inference_mode()
def prefill(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    return model(ids, use_cache=False).logits[0].float()


def top1_agreement(logits: torch.Tensor, reference: torch.Tensor | None) -> float | None:
    return None if reference is None else float((logits.argmax(-1) == reference.argmax(-1)).float().mean())


def measure(variant: str, model: torch.nn.Module, summary: dict, args: argparse.Namespace,
            prompt: torch.Tensor, long_ids: torch.Tensor, reference: torch.Tensor | None) -> dict[str, Any]:
    from unicomp.compress.quant.packed import linear_weight_bytes

    logits = prefill(model, long_ids)
    seconds = median_seconds(lambda: prefill(model, long_ids), args.repeats)
    fake = summary.pop("_fake_logits", None)
    return {
        "variant": variant,
        "linear_weight_bytes": linear_weight_bytes(model),
        "decode_tokens_per_s": decode_tokens_per_s(model, prompt, args.new_tokens, args.repeats),
        "prefill_tokens_per_s": long_ids.shape[1] / seconds,
        "top1_agreement_vs_fp32": top1_agreement(logits, reference),
        "top1_agreement_vs_fake_quant": top1_agreement(logits, fake),
        "pack": summary,
        "_logits": logits,
    }


# --- report ---------------------------------------------------------------------------------------


def markdown(rows: list[dict[str, Any]], bf16_bytes: int) -> str:
    lines = ["| variant | linear weights (MiB) | vs bf16 | decode tok/s | prefill tok/s | top-1 vs fp32 "
             "| top-1 vs fake-quant | kernels |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        kinds = ", ".join(f"{k} x{v}" for k, v in r["pack"].get("modules", {}).items()) or "dense"
        agree = " | ".join("-" if r[k] is None else f"{r[k]:.3f}"
                           for k in ("top1_agreement_vs_fp32", "top1_agreement_vs_fake_quant"))
        lines.append(f"| {r['variant']} | {r['linear_weight_bytes'] / 2**20:.1f} | {r['linear_weight_bytes'] / bf16_bytes:.3f} "
                     f"| {r['decode_tokens_per_s']:.1f} | {r['prefill_tokens_per_s']:.0f} | {agree} | {kinds} |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    from unicomp.compress.quant.packed import cpu_supports_bf16, default_compute_dtype, linear_weight_bytes

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    base, tokenizer, name = base_model(args)
    prompt, long_ids, inputs = token_inputs(args, base.config.vocab_size, tokenizer)
    bf16_bytes = linear_weight_bytes(base) // 2  # fp32 -> bf16 halves every linear

    rows: list[dict[str, Any]] = []
    reference = None
    for variant in ["fp32"] + [v for v in variants if v != "fp32"]:  # fp32 first: it is the reference
        model, summary = build(variant, base, args.group_size, long_ids)
        row = measure(variant, model, summary, args, prompt, long_ids, reference)
        if variant == "fp32":
            reference = row["_logits"]
        if variant in variants:
            rows.append(row)
        print(f"{variant}: decode {row['decode_tokens_per_s']:.1f} tok/s, prefill {row['prefill_tokens_per_s']:.0f} tok/s",
              flush=True)
        del model
    for row in rows:
        row.pop("_logits")
        row["ratio_to_bf16"] = row["linear_weight_bytes"] / bf16_bytes

    setup = {"model": name, "inputs": inputs, "threads": args.threads, "group_size_w4": args.group_size,
             "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens, "prefill_tokens": args.prefill_tokens,
             "repeats": args.repeats, "cpu_bf16": cpu_supports_bf16(),
             "packed_compute_dtype": str(default_compute_dtype("cpu")).removeprefix("torch."),
             "torch": torch.__version__, "cpu": platform.processor() or platform.machine()}
    print()
    print(f"model {name}, {args.threads} threads, packed compute {setup['packed_compute_dtype']}, inputs {inputs}")
    print(markdown(rows, bf16_bytes))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"setup": setup, "results": rows}, fh, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
