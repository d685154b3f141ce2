"""How fast, and how exactly, a quantized checkpoint evaluates under each execution unicomp can give it.

The efficiency issue measured a GPTQ W4A16 checkpoint evaluating 1.18x slower on its packed bf16
kernels than on the fp32 reference path (50 items of ARC-Easy and HellaSwag). Loglikelihood
evaluation is all prefill (batches of whole sequences), so it runs through the packed modules'
prefill dispatch (dequantize once per call, dense GEMM). This script loads one compressed-tensors
checkpoint under each execution and scores the same items:

  float32  auto -> reference  the float grid values in fp32 (what `unicomp eval --dtype float32` runs)
  bfloat16 auto -> kernels    the packed int4 modules in bf16 (what `--dtype bfloat16` runs; deployment)
  bfloat16 reference          the float grid values cast to bf16 (dense, not what a deployment computes)

and reports seconds (median of `--repeats N` interleaved rounds after a warm-up of each, default 3;
`--rounds` is the older name), accuracy, and the largest loglikelihood difference from the fp32
reference. Per execution and per task `seconds_per_round` holds every round and `seconds_stats`
their min/median/max. The fp32 packed kernels are not run: they are exact but ~10x slower than the
reference.

    UNICOMP_DATA_DIR=../shared/data python bench/quantized_eval_speed.py --out bench/results/quantized_eval_speed.json

The checkpoint is made once (GPTQ W4A16 g64, 32 x 512 C4 calibration tokens) into --checkpoint.
`--table JSON` prints the markdown table of a stored --out file (docs/benchmarks.md quotes it) and exits.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
from _machine import machine, spread  # where it ran; min/median/max of repeats

EXECUTIONS = (("float32", "auto"), ("bfloat16", "auto"), ("bfloat16", "reference"))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--checkpoint", default="/tmp/unicomp-bench-gptq-w4", help="made here when missing")
    ap.add_argument("--tasks", default="arc_easy,hellaswag")
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", "--rounds", dest="repeats", type=int, default=3,
                    help="timed rounds over all executions (min/median/max)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--table", default=None, metavar="JSON", help="print the markdown table of a stored --out file")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    return args


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


EXECUTION_NAMES = {"reference": "float reference", "kernels": "packed kernels"}


def markdown(rows: list[dict[str, Any]]) -> str:
    """One row per execution: median seconds (with --repeats, min-max too), speed-up over the fp32 reference,
    each task's accuracy and the largest loglikelihood difference from the fp32 reference. Reads files of
    older versions of this script (no `seconds_stats`) as well."""
    tasks = list(dict.fromkeys(name for r in rows for name in (r.get("tasks") or {})))
    spread_col = any("seconds_stats" in r for r in rows)
    head = ["dtype", "execution", "seconds", *(["seconds min-max"] if spread_col else []), "vs fp32 reference",
            *(f"{t} acc" for t in tasks), "max abs loglikelihood diff vs fp32"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for r in rows:
        stats = r.get("seconds_stats") or {}
        execution = EXECUTION_NAMES.get(r.get("execution"), str(r.get("execution")))
        accs = [(((r.get("tasks") or {}).get(t) or {}).get("scores") or {}).get("acc") for t in tasks]
        diff = r.get("max_abs_loglikelihood_diff_vs_fp32_reference")
        speedup = r.get("speedup_vs_fp32_reference")
        cells = [str(r.get("dtype")), f"{execution} ({'auto' if r.get('requested', 'auto') == 'auto' else 'forced'})",
                 "-" if r.get("seconds") is None else f"{r['seconds']:.1f}",
                 *([f"{stats['min']:.1f}-{stats['max']:.1f}" if "min" in stats else "-"] if spread_col else []),
                 "-" if speedup is None else f"{speedup:.2f}x", *("-" if a is None else f"{a:.2f}" for a in accs),
                 "-" if diff is None else "0" if diff == 0 else f"{diff:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_from_json(path: str) -> str:
    """The markdown table of a results file written by --out."""
    return markdown(json.loads(Path(path).read_text()).get("results") or [])


def main() -> None:
    args = parse_args()
    if args.table:
        print(table_from_json(args.table))
        return
    torch.set_num_threads(args.threads)
    folder = ensure_checkpoint(args)
    warm = argparse.Namespace(**{**vars(args), "limit": 2})
    for dtype, execution in EXECUTIONS:
        evaluate(folder, dtype, execution, warm)
    # rounds interleave the executions, so the VM's drift hits all alike; seconds are per-round medians
    rounds = [[evaluate(folder, dtype, execution, args) for dtype, execution in EXECUTIONS] for _ in range(args.repeats)]
    rows = rounds[0]
    for i, row in enumerate(rows):
        for name, task in row["tasks"].items():  # each task's seconds too, not only the first round's
            task["seconds_per_round"] = [r[i]["tasks"][name]["seconds"] for r in rounds]
            task["seconds_stats"] = spread(task["seconds_per_round"])
            task["seconds"] = task["seconds_stats"]["median"]
        row["seconds_per_round"] = [r[i]["seconds"] for r in rounds]
        row["seconds_stats"] = spread(row["seconds_per_round"])
        row["seconds"] = row["seconds_stats"]["median"]
    reference = rows[0]
    for row in rows:
        row["speedup_vs_fp32_reference"] = reference["seconds"] / row["seconds"]
        diffs = [abs(a - b) for name, t in row["tasks"].items()
                 for ours, ref in zip(t["loglikelihoods"], reference["tasks"][name]["loglikelihoods"])
                 for a, b in zip(ours, ref)]
        row["max_abs_loglikelihood_diff_vs_fp32_reference"] = max(diffs, default=None)
    print(markdown(rows))
    if args.out:
        for row in rows:
            for t in row["tasks"].values():
                t.pop("loglikelihoods")
        setup = {"model": args.model, "checkpoint": "GPTQ W4A16 g64 (32 x 512 C4)", "tasks": args.tasks,
                 "rounds": args.repeats, "repeats": args.repeats,
                 "timing": "one warm-up per execution, interleaved rounds, median",
                 "limit": args.limit, "batch_size": args.batch_size, "threads": args.threads,
                 "torch": torch.__version__, "cpu": platform.processor() or platform.machine()}
        Path(args.out).write_text(json.dumps({"setup": setup, "machine": machine(), "results": rows}, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
