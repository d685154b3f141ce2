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
    prompt (prompt prefill not timed)
  - prefill tokens/s: one forward of --prefill-batch x --prefill-tokens, logits of the last position only
  Both are medians of --repeats rounds after one warm-up round, each round timing every variant once
  (interleaved, so the VM's drift hits all variants alike); ratios are against the faster of fp32 and
  bf16, as the efficiency targets are stated
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
from _machine import machine  # where it ran: ratios differ between CPUs

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
    ap.add_argument("--prefill-batch", type=int, default=1, help="sequences per prefill forward (the prompt repeated)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--table", default=None, metavar="JSON", help="print the markdown table of a stored --out file")
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

    The summary keeps the fake-quantized model's top-1 tokens on `ids` ("_fake_logits"), so packing error
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
    fake_logits = prefill(model, ids).argmax(-1)  # W8A8's activation rounding only happens once packed
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


@torch.inference_mode()
def prefill(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Logits of every position of the first sequence (for the top-1 agreement columns)."""
    return model(ids, use_cache=False).logits[0].float()


@torch.inference_mode()
def timed_prefill(model: torch.nn.Module, ids: torch.Tensor) -> None:
    """What generation's prefill computes: the whole prompt, logits for the last position only (as in
    efficiency/runtime.py), so the dense lm_head over 1,024 positions does not dilute the ratios."""
    model(ids, use_cache=False, logits_to_keep=1)


def top1_agreement(logits: torch.Tensor, reference: torch.Tensor | None) -> float | None:
    """Share of positions whose top-1 tokens agree (`logits` and `reference`: logits or their argmax)."""
    if reference is None:
        return None
    top = logits if logits.dim() == 1 else logits.argmax(-1)
    ref = reference if reference.dim() == 1 else reference.argmax(-1)
    return float((top == ref).float().mean())


def interleaved_samples(fns: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """`repeats` results per name, taken round-robin (one of each per round, after one warm-up round): on
    a shared VM the machine's speed drifts over minutes, and interleaving makes the drift hit every
    variant alike instead of whichever happened to run during a slow spell. Each round starts one
    variant later than the one before, so no variant always runs right after the same other one
    (e.g. bf16 always after fp32's large working set)."""
    for fn in fns.values():
        fn()
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            samples[name].append(fns[name]())
    return samples


def paired_speedups(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per variant: speed relative to the faster float variant (fp32 or bf16, by median), computed
    round by round (baseline seconds / variant seconds within one round) and summarised by the median
    and quartiles, so a slow spell that hits both of a round's runs cancels out."""
    floats = [v for v in ("fp32", "bf16") if v in samples]
    if not floats:
        return {}
    base = min(floats, key=lambda v: statistics.median(samples[v]))
    out = {}
    for name, seconds in samples.items():
        ratios = sorted(b / s for b, s in zip(samples[base], seconds))
        q1, median, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else (ratios[0],) * 3
        out[name] = {"baseline": base, "median": median, "q1": q1, "q3": q3}
    return out


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    return run


def measure_all(models: dict[str, tuple[torch.nn.Module, dict]], args: argparse.Namespace,
                prompt: torch.Tensor, long_ids: torch.Tensor) -> list[dict[str, Any]]:
    """Every variant's row; timings interleaved across variants (`interleaved_medians`)."""
    from unicomp.compress.quant.packed import linear_weight_bytes

    logits = {v: prefill(model, long_ids).argmax(-1) for v, (model, _) in models.items()}  # top-1 tokens only
    batch_ids = long_ids.repeat(args.prefill_batch, 1)
    prefill_samples = interleaved_samples({v: timed(lambda m=m: timed_prefill(m, batch_ids)) for v, (m, _) in models.items()},
                                          args.repeats)
    decode_samples = interleaved_samples({v: (lambda m=m: decode(m, prompt, args.new_tokens))
                                          for v, (m, _) in models.items()}, args.repeats)
    prefill_s = {v: statistics.median(t) for v, t in prefill_samples.items()}
    decode_s = {v: statistics.median(t) for v, t in decode_samples.items()}
    prefill_vs, decode_vs = paired_speedups(prefill_samples), paired_speedups(decode_samples)
    rows = []
    for variant, (model, summary) in models.items():
        fake = summary.pop("_fake_logits", None)
        rows.append({
            "variant": variant,
            "linear_weight_bytes": linear_weight_bytes(model),
            "decode_tokens_per_s": args.new_tokens / decode_s[variant],
            "prefill_tokens_per_s": batch_ids.numel() / prefill_s[variant],
            "decode_vs_faster_float": decode_vs.get(variant),
            "prefill_vs_faster_float": prefill_vs.get(variant),
            "top1_agreement_vs_fp32": top1_agreement(logits[variant], logits["fp32"]) if variant != "fp32" else None,
            "top1_agreement_vs_fake_quant": top1_agreement(logits[variant], fake),
            "pack": summary,
            "prefill_seconds": prefill_samples[variant],  # per round, for recomputing any ratio
            "decode_seconds": decode_samples[variant],
        })
    return rows


# --- report ---------------------------------------------------------------------------------------


def markdown(rows: list[dict[str, Any]], bf16_bytes: int) -> str:
    """One row per variant; speed ratios against the faster of fp32 and bf16, paired per round
    (median [quartiles]; `paired_speedups`)."""
    def ratio(r: dict[str, Any], key: str) -> str:
        v = r.get(key)
        return "-" if v is None else f"{v['median']:.2f}x [{v['q1']:.2f}-{v['q3']:.2f}]"

    lines = ["| variant | linear weights (MiB) | vs bf16 | decode tok/s | vs faster float | prefill tok/s "
             "| vs faster float | top-1 vs fp32 | top-1 vs fake-quant | kernels |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        kinds = ", ".join(f"{k} x{v}" for k, v in r["pack"].get("modules", {}).items()) or "dense"
        agree = " | ".join("-" if r[k] is None else f"{r[k]:.3f}"
                           for k in ("top1_agreement_vs_fp32", "top1_agreement_vs_fake_quant"))
        lines.append(f"| {r['variant']} | {r['linear_weight_bytes'] / 2**20:.1f} | {r['linear_weight_bytes'] / bf16_bytes:.3f} "
                     f"| {r['decode_tokens_per_s']:.1f} | {ratio(r, 'decode_vs_faster_float')} "
                     f"| {r['prefill_tokens_per_s']:.0f} | {ratio(r, 'prefill_vs_faster_float')} "
                     f"| {agree} | {kinds} |")
    return "\n".join(lines)


def table_from_json(path: str) -> str:
    """The markdown table of a results file written by --out (docs/benchmarks.md quotes these)."""
    with open(path) as fh:
        data = json.load(fh)
    rows = data["results"]
    bf16_bytes = next(r["linear_weight_bytes"] / r["ratio_to_bf16"] for r in rows)
    dequant = data["setup"].get("int4_prefill_dequantization")
    return markdown(rows, bf16_bytes) + (f"\n\nint4 prefill dequantization: {dequant}." if dequant else "")


def main() -> None:
    args = parse_args()
    if args.table:
        print(table_from_json(args.table))
        return
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    torch.set_num_threads(args.threads)
    from unicomp.compress.quant.native import int4_library
    from unicomp.compress.quant.packed import cpu_supports_bf16, default_compute_dtype, linear_weight_bytes

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    base, tokenizer, name = base_model(args)
    prompt, long_ids, inputs = token_inputs(args, base.config.vocab_size, tokenizer)
    bf16_bytes = linear_weight_bytes(base) // 2  # fp32 -> bf16 halves every linear

    models = {v: build(v, base, args.group_size, long_ids) for v in ["fp32"] + [v for v in variants if v != "fp32"]}
    rows = [r for r in measure_all(models, args, prompt, long_ids) if r["variant"] in variants]
    for row in rows:
        print(f"{row['variant']}: decode {row['decode_tokens_per_s']:.1f} tok/s, "
              f"prefill {row['prefill_tokens_per_s']:.0f} tok/s", flush=True)
    for row in rows:
        row["ratio_to_bf16"] = row["linear_weight_bytes"] / bf16_bytes

    setup = {"model": name, "inputs": inputs, "threads": args.threads, "group_size_w4": args.group_size,
             "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens, "prefill_tokens": args.prefill_tokens, "prefill_batch": args.prefill_batch,
             "repeats": args.repeats, "timing": "interleaved rounds; medians; ratios paired per round", "cpu_bf16": cpu_supports_bf16(),
             "packed_compute_dtype": str(default_compute_dtype("cpu")).removeprefix("torch."),
             "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
             "int4_prefill_dequantization": "native C kernel" if int4_library() else "PyTorch ops (no C compiler)"}
    print()
    print(f"model {name}, {args.threads} threads, packed compute {setup['packed_compute_dtype']}, inputs {inputs}")
    print(markdown(rows, bf16_bytes))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"setup": setup, "machine": machine(), "results": rows}, fh, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
