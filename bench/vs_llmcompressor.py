"""Compression quality and speed on SmolLM2-135M, ours vs llm-compressor 0.14 (pruning and GPTQ).

For each `--run` (a method and its options) this script
  1. builds ONE calibration set with unicomp (C4 windows, default 128 x 512 tokens, seed 0) and
     writes its token ids to a file, so both tools calibrate on identical tokens;
  2. prunes a fresh copy of the base with unicomp, timing `compress_model` alone (2 threads);
  3. optionally runs llm-compressor 0.14's `oneshot` on the same tokens in its own virtualenv
     (`bench/llmcompressor_reference.py`; it pins transformers <= 5.17) and reads its numbers;
  4. scores every model with the same WikiText-2 fixed-window perplexity (GPTQ-paper protocol,
     first `--ppl-windows` windows of 2048 tokens).

    UNICOMP_DATA_DIR=../shared/data python bench/vs_llmcompressor.py --json out.json \
        --run "wanda sparsity=0.5" --run "sparsegpt pattern=2:4" --run "gptq bits=4 group_size=64" \
        [--llmcompressor /root/.venvs/llmcompressor/bin/python]

Methods llm-compressor has a reference for: wanda, sparsegpt, gptq (others run ours only).

Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import tempfile
import time
from pathlib import Path

import torch

RUNS = ["magnitude", "magnitude pattern=2:4", "wanda", "wanda pattern=2:4", "sparsegpt", "sparsegpt pattern=2:4"]
PRUNING_DEFAULTS = {"sparsity": 0.5, "pattern": "unstructured"}
REFERENCE_METHODS = ("wanda", "sparsegpt", "gptq")


def parse_run(spec: str) -> tuple[str, dict]:
    """'gptq bits=4 group_size=64' -> ("gptq", {"bits": 4, "group_size": 64})."""
    method, *pairs = spec.split()
    options: dict = dict(PRUNING_DEFAULTS) if method in ("magnitude", "wanda", "sparsegpt") else {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        options[key] = json.loads(value) if value not in ("unstructured",) and not ":" in value else value
    return method, options


def reference_args(method: str, options: dict) -> list[str]:
    """llm-compressor reference script arguments for the same method and options."""
    if method == "gptq":
        return ["--bits", str(options.get("bits", 4)), "--group-size", str(options.get("group_size", 128)),
                "--actorder", "weight" if options.get("actorder", True) else "none"]
    return ["--sparsity", str(options["sparsity"]), "--pattern", options["pattern"]]


def perplexity(lm, text: str, windows: int) -> float:
    nlls = lm.fixed_window_nll(text, 2048, max_windows=windows)
    return math.exp(sum(nlls) / len(nlls))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--n-samples", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--ppl-windows", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8, help="unicomp calibration batch size")
    ap.add_argument("--compute-dtype", default=None, help="unicomp calibration passes in this dtype (e.g. bfloat16)")
    ap.add_argument("--run", action="append", default=None,
                    help="'METHOD key=value ...' (repeatable); default: the pruning set")
    ap.add_argument("--llmcompressor", default=None, help="python of the llm-compressor venv; omit to skip")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from unicomp.compress.apply import compress_model
    from unicomp.compress.registry import make_method
    from unicomp.data.calibration import CalibrationConfig, build_calibration
    from unicomp.data.resolver import load_rows
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.models.loading import load_model

    base = load_model(args.model)
    text = "\n\n".join(r["text"] for r in load_rows("Salesforce/wikitext", "wikitext-2-raw-v1", "test").rows)
    cal = build_calibration(CalibrationConfig(source="c4", n_samples=args.n_samples, seq_len=args.seq_len, seed=0),
                            base.tokenizer)
    report = {"model": base.record(), "threads": args.threads, "calibration": {k: cal.record[k] for k in
              ("n_samples", "total_tokens", "sha256") if k in cal.record}, "ppl_windows": args.ppl_windows, "runs": []}
    report["base_ppl"] = perplexity(LanguageModel(base.model, base.tokenizer), text, args.ppl_windows)
    print(f"base ppl {report['base_ppl']:.3f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        cal_file = Path(tmp) / "calibration.json"
        cal_file.write_text(json.dumps(cal.samples))
        for spec in args.run or RUNS:
            method, options = parse_run(spec)
            fresh = load_model(args.model)
            start = time.perf_counter()
            rep = compress_model(fresh.model, make_method(method, options), cal, batch_size=args.batch_size,
                                 compute_dtype=args.compute_dtype)
            seconds = time.perf_counter() - start
            ppl = perplexity(LanguageModel(fresh.model, fresh.tokenizer), text, args.ppl_windows)
            row = {"method": method, "options": options, "compute_dtype": args.compute_dtype or "float32",
                   "unicomp_seconds": seconds, "unicomp_ppl": ppl, "summary": rep.summary,
                   "peak_rss_mib": rep.peak_memory_bytes / 2**20}
            if args.llmcompressor and method in REFERENCE_METHODS:
                out = Path(tmp) / f"{len(report['runs'])}-{method}.json"
                cmd = [args.llmcompressor, str(Path(__file__).with_name("llmcompressor_reference.py")), "--model",
                       base.location, "--method", method, *reference_args(method, options),
                       "--calibration", str(cal_file), "--threads", str(args.threads),
                       "--ppl-windows", str(args.ppl_windows), "--out", str(out)]
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                theirs = json.loads(out.read_text())
                row.update({"llmcompressor_seconds": theirs["oneshot_seconds"], "llmcompressor_ppl": theirs["wikitext2"]["ppl"],
                            "llmcompressor_sparsity": (theirs.get("sparsity") or {}).get("overall"),
                            "time_ratio": seconds / theirs["oneshot_seconds"]})
            report["runs"].append(row)
            print(json.dumps(row), flush=True)
            Path(args.json).write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
