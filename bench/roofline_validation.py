"""Roofline projection vs measurement on this CPU: decode tokens/s at batch 1 for fp32, bf16 and
int4 weight-only (packed kernels, bf16 compute) on SmolLM2-135M.

1. This CPU as a device profile, measured (efficiency/machine.py: STREAM-like read bandwidth,
   matmul throughput per dtype).
2. Each variant's decode speed measured (efficiency/runtime.py: warm-up, --repeats passes,
   median) and projected by the roofline (efficiency/roofline.py) at the same context length.
3. The per-step framework overhead measured directly: the same 30-layer architecture with a
   hidden size of 64 (weights ~1 MB, so bytes and FLOPs are negligible) decodes at the speed
   the Python and kernel-dispatch cost of 30 layers allows. The roofline plus that overhead is
   the second projection.
4. What the matmuls of one decode step actually take: every linear module of the model called
   once on a 1-token input, timed as a sequence (median of --repeats after a warm-up). Their
   bytes over that time is the bandwidth this machine reaches at the model's matrix shapes,
   which the large-matrix read figure of step 1 overstates for small matrices.

    UNICOMP_DATA_DIR=../shared/data python bench/roofline_validation.py --json bench/results/roofline_validation.json

Run on an otherwise idle machine (timings). `--table JSON` prints the markdown table of a stored
--json file (docs/benchmarks.md quotes it) and exits.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--group-size", type=int, default=64)
    ap.add_argument("--json", default=None)
    ap.add_argument("--table", default=None, metavar="JSON", help="print the markdown table of a stored --json file")
    return ap.parse_args()


LABELS = {"w4a16": "int4 W4A16 (packed, bf16)"}  # int4() below packs to bf16


def markdown(out: dict) -> str:
    """One row per variant: bytes per decode step, measured decode tok/s, and the three projections with
    measured / projected in brackets."""
    head = ["format", "bytes per step", "measured tok/s", "roofline tok/s (ratio)", "+ measured overhead (ratio)",
            "measured linears + overhead (ratio)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in out.get("rows") or []:
        measured = r.get("measured_decode_tokens_per_s")

        def projected(tok_key: str, ratio_key: str, r: dict = r) -> str:
            tok, ratio = r.get(tok_key), r.get(ratio_key)
            if ratio is None and tok and measured is not None:
                ratio = measured / tok
            return "-" if tok is None else f"{tok:.1f}" + ("" if ratio is None else f" ({ratio:.2f})")

        step = r.get("bytes_per_step")
        cells = [LABELS.get(r.get("variant"), str(r.get("variant"))), "-" if step is None else f"{step / 1e6:.0f} MB",
                 "-" if measured is None else f"{measured:.1f}",
                 projected("roofline_decode_tokens_per_s", "measured_over_roofline"),
                 projected("roofline_plus_overhead_tokens_per_s", "measured_over_roofline_plus_overhead"),
                 projected("linears_plus_overhead_tokens_per_s", "measured_over_linears_plus_overhead")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_from_json(path: str) -> str:
    """The markdown table of a results file written by --json."""
    with open(path, encoding="utf-8") as fh:
        return markdown(json.load(fh))


def int4(model: torch.nn.Module, group_size: int) -> torch.nn.Module:
    from unicomp.compress.apply import compress_model
    from unicomp.compress.quant.packed import pack_model
    from unicomp.compress.registry import make_method

    model = copy.deepcopy(model)
    compress_model(model, make_method("rtn", {"bits": 4, "group_size": group_size}))
    pack_model(model, torch.bfloat16)
    return model.to(torch.bfloat16)


def overhead_model(config) -> torch.nn.Module:
    """The same layer count and layer types, hidden 64: what 30 layers cost with no work in them."""
    from transformers import AutoModelForCausalLM

    small = config.to_dict() | {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2,
                                "num_key_value_heads": 1, "head_dim": 32, "vocab_size": 256}
    cfg = type(config)(**{k: v for k, v in small.items() if not k.startswith("_")})
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg).eval()


def linear_step_seconds(model: torch.nn.Module, repeats: int) -> float:
    """Seconds to run every linear module of `model` once on a 1-token input."""
    import statistics

    from unicomp.compress.quant.packed import PackedLinear

    mods = [m for m in model.modules() if isinstance(m, PackedLinear) or type(m) is torch.nn.Linear]
    dtype = next(model.parameters()).dtype
    inputs = [torch.randn(1, 1, m.in_features).to(dtype) for m in mods]

    @torch.inference_mode()
    def run() -> None:
        for m, x in zip(mods, inputs):
            m(x)

    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    args = parse_args()
    if args.table:
        print(table_from_json(args.table))
        return
    from unicomp.efficiency.flops import Shape
    from unicomp.efficiency.machine import measure_this_cpu
    from unicomp.efficiency.roofline import Format, project, weight_bytes
    from unicomp.efficiency.runtime import Workload, measure_runtime
    from unicomp.models.loading import load_model

    torch.set_num_threads(args.threads)
    started = time.time()
    profile, raw = measure_this_cpu(args.threads)
    print(f"this CPU: {raw['cpu']}, {raw['threads']} threads: read {profile.memory_bandwidth_gbps:.1f} GB/s "
          f"(copy {raw['copy_bandwidth_bytes_per_s'] / 1e9:.1f}), "
          f"matmul fp32 {profile.peak_tflops['fp32'] * 1e3:.0f} GFLOP/s, bf16 {profile.peak_tflops['bf16'] * 1e3:.0f} GFLOP/s")
    base = load_model(args.model, dtype="float32").model
    workload = Workload(prompt_tokens=args.prompt_tokens, new_tokens=2, decode_tokens=args.decode_tokens,
                        batch_sizes=[1], repeats=args.repeats, threads=args.threads)
    variants = {
        "fp32": (lambda: base, Format("dense", dtype="fp32")),
        "bf16": (lambda: copy.deepcopy(base).to(torch.bfloat16), Format("dense", dtype="bf16")),
        "w4a16": (lambda: int4(base, args.group_size),
                  Format("w4a16", dtype="bf16", group_size=args.group_size, zero_point=True)),
    }
    rows = []
    for name, (build, fmt) in variants.items():
        model = build()
        measured = measure_runtime(model, workload)["batches"][0]["decode_tokens_per_s"]
        tiny = overhead_model(model.config).to(next(model.parameters()).dtype)
        overhead_s = 1.0 / measure_runtime(tiny, workload)["batches"][0]["decode_tokens_per_s"]
        # the roofline's decode step sits at prompt + new_tokens // 2; match the measured steps' mean context
        proj = project(model.config, fmt, profile, batch=1, prompt=args.prompt_tokens,
                       new_tokens=args.decode_tokens)
        roofline = proj["decode_tokens_per_s"]
        with_overhead = 1.0 / (1.0 / roofline + overhead_s)
        linear_s = linear_step_seconds(model, max(args.repeats, 5))
        wb = weight_bytes(Shape.of(model.config), fmt)
        linear_bytes = wb["linear"] + wb["lm_head"]
        components = 1.0 / (linear_s + overhead_s)
        rows.append({"variant": name, "measured_decode_tokens_per_s": measured,
                     "roofline_decode_tokens_per_s": roofline, "roofline_bound": proj["decode_bound"],
                     "measured_over_roofline": measured / roofline,
                     "framework_overhead_s_per_step": overhead_s,
                     "roofline_plus_overhead_tokens_per_s": with_overhead,
                     "measured_over_roofline_plus_overhead": measured / with_overhead,
                     "linear_matmuls_s_per_step": linear_s,
                     "achieved_linear_bandwidth_bytes_per_s": linear_bytes / linear_s,
                     "linears_plus_overhead_tokens_per_s": components,
                     "measured_over_linears_plus_overhead": measured / components,
                     "bytes_per_step": proj["weight_bytes"]})
        print(f"{name:6s} measured {measured:7.1f} tok/s | roofline {roofline:7.1f} ({proj['decode_bound']}-bound) "
              f"ratio {measured / roofline:.2f} | overhead {overhead_s * 1e3:.1f} ms/step -> "
              f"{with_overhead:7.1f} tok/s, ratio {measured / with_overhead:.2f} | linears {linear_s * 1e3:.1f} ms "
              f"({linear_bytes / linear_s / 1e9:.1f} GB/s) + overhead -> {components:7.1f} tok/s, "
              f"ratio {measured / components:.2f}")
        del model, tiny
    out = {"profile": profile.model_dump(), "measurements": raw, "workload": workload.model_dump(),
           "model": args.model, "rows": rows, "seconds": time.time() - started,
           "date": time.strftime("%Y-%m-%d")}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
