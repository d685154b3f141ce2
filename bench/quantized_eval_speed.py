"""How fast, and how exactly, a quantized checkpoint evaluates under each execution unicomp can give it.

The efficiency issue measured a GPTQ W4A16 checkpoint evaluating 1.18x slower on its packed bf16
kernels than on the fp32 reference path (50 items of ARC-Easy and HellaSwag). Loglikelihood
evaluation is all prefill (batches of whole sequences), so it runs through the packed modules'
prefill dispatch (dequantize once per call, dense GEMM). This script loads one compressed-tensors
checkpoint under each execution and scores the same items:

  float32  auto -> reference  the float grid values in fp32 (what `unicomp eval --dtype float32` runs)
  bfloat16 auto -> kernels    the packed int4 modules in bf16 (what `--dtype bfloat16` runs; deployment)
  bfloat16 reference          the float grid values cast to bf16 (dense, not what a deployment computes)

and reports seconds (median of --rounds interleaved rounds after a warm-up of each), accuracy, and
the largest loglikelihood difference from the fp32 reference. The fp32 packed kernels are not run: they are exact but ~10x slower than the reference.

    UNICOMP_DATA_DIR=../shared/data python bench/quantized_eval_speed.py --out bench/results/quantized_eval_speed.json

The checkpoint is made once (GPTQ W4A16 g64, 32 x 512 C4 calibration tokens) into --checkpoint.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

EXECUTIONS = (("float32", "auto"), ("bfloat16", "auto"), ("bfloat16", "reference"))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--checkpoint", default="/tmp/unicomp-bench-gptq-w4", help="made here when missing")
    ap.add_argument("--tasks", default="arc_easy,hellaswag")
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds over all executions (median)")
    ap.add_argument("--out", default=None)
    return ap.parse_args()


def ensure_checkpoint(args: argparse.Namespace) -> Path:
    folder = Path(args.checkpoint)
    if (folder / "config.json").is_file():
        return folder
    from unicomp.compress.runner import run_compression
    from unicomp.requests import CompressRequest

    run_compression(CompressRequest(model=args.model, method="gptq", out=str(folder), n_samples=32, seq_len=512,
                                    options={"bits": 4, "group_size": 64}))
    return folder


def evaluate(folder: Path, dtype: str, execution: str, args: argparse.Namespace) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from unicomp.compress.quant.ct_format import load_quantized
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.evaluate.runner import evaluate_task, load_task_docs
    from unicomp.evaluate.tasks import get_task
    from unicomp.models.options import torch_dtype

    model = load_quantized(folder, torch_dtype(dtype), execution=execution)
    lm = LanguageModel(model, AutoTokenizer.from_pretrained(str(folder)), batch_size=args.batch_size)
    tasks = {}
    for name in args.tasks.split(","):
        spec = get_task(name)
        docs, resolved = load_task_docs(spec, args.limit)
        start = time.perf_counter()
        result = evaluate_task(lm, spec, docs, resolved, limit=args.limit)
        seconds = time.perf_counter() - start
        tasks[name] = {"seconds": seconds, "items": len(result.records), "scores": result.scores,
                       "loglikelihoods": [list(r.loglikelihoods) for r in result.records]}
    return {"dtype": dtype, "execution": model.unicomp_execution["execution"], "requested": execution,
            "modules": model.unicomp_execution.get("modules"), "tasks": tasks,
            "seconds": sum(t["seconds"] for t in tasks.values())}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    folder = ensure_checkpoint(args)
    warm = argparse.Namespace(**{**vars(args), "limit": 2})
    for dtype, execution in EXECUTIONS:
        evaluate(folder, dtype, execution, warm)
    # rounds interleave the executions, so the VM's drift hits all alike; seconds are per-round medians
    rounds = [[evaluate(folder, dtype, execution, args) for dtype, execution in EXECUTIONS] for _ in range(args.rounds)]
    rows = rounds[0]
    for i, row in enumerate(rows):
        row["seconds_per_round"] = [r[i]["seconds"] for r in rounds]
        row["seconds"] = statistics.median(row["seconds_per_round"])
    reference = rows[0]
    for row in rows:
        row["speedup_vs_fp32_reference"] = reference["seconds"] / row["seconds"]
        diffs = [abs(a - b) for name, t in row["tasks"].items()
                 for ours, ref in zip(t["loglikelihoods"], reference["tasks"][name]["loglikelihoods"])
                 for a, b in zip(ours, ref)]
        row["max_abs_loglikelihood_diff_vs_fp32_reference"] = max(diffs, default=None)
    print("| dtype | execution | seconds | vs fp32 reference | " + " | ".join(args.tasks.split(",")) + " | max abs dLL vs fp32 |")
    print("|---|---|---:|---:|" + "---:|" * len(args.tasks.split(",")) + "---:|")
    for row in rows:
        accs = " | ".join(f"{t['scores'].get('acc', float('nan')):.2f}" for t in row["tasks"].values())
        print(f"| {row['dtype']} | {row['execution']} | {row['seconds']:.1f} | {row['speedup_vs_fp32_reference']:.2f}x "
              f"| {accs} | {row['max_abs_loglikelihood_diff_vs_fp32_reference'] or 0:.3f} |")
    if args.out:
        for row in rows:
            for t in row["tasks"].values():
                t.pop("loglikelihoods")
        setup = {"model": args.model, "checkpoint": "GPTQ W4A16 g64 (32 x 512 C4)", "tasks": args.tasks,
                 "rounds": args.rounds, "timing": "one warm-up per execution, interleaved rounds, median",
                 "limit": args.limit, "batch_size": args.batch_size, "threads": args.threads,
                 "torch": torch.__version__, "cpu": platform.processor() or platform.machine()}
        Path(args.out).write_text(json.dumps({"setup": setup, "results": rows}, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
