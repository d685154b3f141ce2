"""Compression quality and speed on SmolLM2-135M, ours vs llm-compressor 0.14 (pruning, GPTQ, SmoothQuant W8A8).

For each `--run` (a method and its options) this script
  1. builds ONE calibration set with unicomp (C4 windows, default 128 x 512 tokens, seed 0) and
     writes its token ids to a file, so both tools calibrate on identical tokens (the reference's
     record of the ids' fingerprint is checked against ours: `calibration_identical`);
  2. compresses a fresh copy of the base with unicomp, timing `compress_model` alone (2 threads;
     `--repeats N` times on fresh copies, min/median/max reported; wall time, and the process CPU
     time with the 1-minute load average around each run, since other processes on the cores
     inflate wall time: `time_ratio` is ours / theirs in wall time, `cpu_time_ratio` in CPU time);
  3. optionally runs llm-compressor 0.14's `oneshot` on the same tokens in its own virtualenv
     (`bench/llmcompressor_reference.py`; it pins transformers <= 5.17), `--repeats N` times too,
     and reads its numbers;
  4. scores every model with the same WikiText-2 fixed-window perplexity (GPTQ-paper protocol,
     first `--ppl-windows` windows of 2048 tokens; the reference reads the very rows scored here,
     written to a file next to the calibration ids).

    UNICOMP_DATA_DIR=<data mirror> python bench/vs_llmcompressor.py --json out.json \\
        --run "wanda sparsity=0.5" --run "sparsegpt pattern=2:4" --run "gptq bits=4 group_size=64" \\
        --run "smoothquant" [--llmcompressor <llm-compressor venv>/bin/python] [--repeats 3]

Methods llm-compressor has a reference for: wanda, sparsegpt, gptq, and smoothquant with
`weights: gptq` (unicomp's default), whose reference is llm-compressor's W8A8 recipe
SmoothQuantModifier(smoothing_strength=alpha) + GPTQModifier(targets=["Linear"], scheme="W8A8",
ignore=["lm_head"]) (`--method smoothquant-w8a8` of the reference script; alpha, actorder and
dampening are passed on from unicomp's config). Other methods run ours only.

W8A8 (smoothquant): unicomp's compressed model is fake-quantized in its weights only; its
activations are rounded per token at run time. Here, as when unicomp loads a saved W8A8 model in
fp32 (`packed.prepare_execution(model, "reference")`), every such linear's input is rounded to the
symmetric per-token int8 grid before the perplexity is scored; llm-compressor's model does the same
through compressed-tensors' forward wrapper (the reference script checks it). `--weight-only-ppl`
also scores both models with activations left in float (a diagnostic).

Paths come only from arguments or the environment: the model (an alias or a local folder),
the data mirror (`--data-dir`, default $UNICOMP_DATA_DIR), the llm-compressor python and the outputs.

Results go in docs/benchmarks.md: `--table JSON` prints the markdown table of a stored --json file and exits.
"""

from __future__ import annotations

from _machine import cpu_model, spread  # shared with the other bench scripts (standalone: no unicomp)
import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RUNS = ["magnitude", "magnitude pattern=2:4", "wanda", "wanda pattern=2:4", "sparsegpt", "sparsegpt pattern=2:4"]
PRUNING_DEFAULTS = {"sparsity": 0.5, "pattern": "unstructured"}
# our method -> the reference script's --method
REFERENCE_METHODS = {"wanda": "wanda", "sparsegpt": "sparsegpt", "gptq": "gptq", "smoothquant": "smoothquant-w8a8"}


def parse_run(spec: str) -> tuple[str, dict]:
    """'gptq bits=4 group_size=64' -> ("gptq", {"bits": 4, "group_size": 64})."""
    method, *pairs = spec.split()
    options: dict = dict(PRUNING_DEFAULTS) if method in ("magnitude", "wanda", "sparsegpt") else {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        options[key] = json.loads(value) if value not in ("unstructured", "gptq", "rtn") and not ":" in value else value
    return method, options


def reference_method(method: str, config) -> str | None:
    """The reference script's --method for our method, or None when llm-compressor has no counterpart."""
    if method == "smoothquant" and getattr(config, "weights", "gptq") != "gptq":
        return None  # llm-compressor's W8A8 recipe quantizes the weights with GPTQ only
    return REFERENCE_METHODS.get(method)


def reference_args(method: str, options: dict, config) -> list[str]:
    """llm-compressor reference script arguments for the same method and options (`config`: our
    method's resolved config, defaults included)."""
    if method == "gptq":
        return ["--bits", str(options.get("bits", 4)), "--group-size", str(options.get("group_size", 128)),
                "--actorder", "weight" if options.get("actorder", True) else "none"]
    if method == "smoothquant":
        return ["--smoothing-strength", str(config.alpha), "--actorder", "weight" if config.actorder else "none",
                "--dampening", str(config.dampening)]
    return ["--sparsity", str(options["sparsity"]), "--pattern", options["pattern"]]


def perplexity(lm, text: str, windows: int) -> float:
    nlls = lm.fixed_window_nll(text, 2048, max_windows=windows)
    return math.exp(sum(nlls) / len(nlls))






def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], check=False,
                               cwd=Path(__file__).resolve().parent, capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


@torch.no_grad()
def probe_logits(model, ids: list[int]) -> torch.Tensor:
    return model(input_ids=torch.tensor([ids]), use_cache=False).logits.float()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="unicomp model alias or local model folder")
    ap.add_argument("--data-dir", default=None, help="local dataset mirror (default: $UNICOMP_DATA_DIR)")
    ap.add_argument("--n-samples", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--ppl-windows", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8, help="unicomp calibration batch size")
    ap.add_argument("--compute-dtype", default=None, help="unicomp calibration passes in this dtype (e.g. bfloat16)")
    ap.add_argument("--run", action="append", default=None,
                    help="'METHOD key=value ...' (repeatable); default: the pruning set")
    ap.add_argument("--repeats", type=int, default=1,
                    help="time each tool's compression this many times on fresh copies (min/median/max); "
                         "perplexity is scored once, on the last copy")
    ap.add_argument("--weight-only-ppl", action="store_true",
                    help="W8A8 methods: also score both models with activations left in float (diagnostic)")
    ap.add_argument("--llmcompressor", default=None, help="python of the llm-compressor venv; omit to skip")
    ap.add_argument("--reference-dir", default=None,
                    help="keep the reference's full JSON and log per run here (default: a temporary folder)")
    ap.add_argument("--resume", action="store_true",
                    help="reuse what --json and --reference-dir already hold for the same model, calibration ids, "
                         "windows and repeats: a run whose unicomp side is complete is not compressed again, and a "
                         "finished reference JSON in --reference-dir is read instead of re-run (long runs on a "
                         "machine where jobs get stopped)")
    ap.add_argument("--json", default=None, help="write the results here (required unless --table)")
    ap.add_argument("--table", default=None, metavar="JSON", help="print the markdown table of a stored --json file")
    args = ap.parse_args()
    if args.table:
        print(table_from_json(args.table))
        return
    if not args.json:
        ap.error("the following arguments are required: --json")
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    torch.set_num_threads(args.threads)
    data_dir = args.data_dir or os.environ.get("UNICOMP_DATA_DIR") or None

    from unicomp.compress.apply import compress_model
    from unicomp.compress.quant.packed import prepare_execution
    from unicomp.compress.registry import make_method
    from unicomp.data.calibration import CalibrationConfig, build_calibration
    from unicomp.data.resolver import load_rows
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.models.loading import load_model

    base = load_model(args.model)
    wiki = load_rows("Salesforce/wikitext", "wikitext-2-raw-v1", "test", data_dir=data_dir)
    text = "\n\n".join(r["text"] for r in wiki.rows)
    cal = build_calibration(CalibrationConfig(source="c4", n_samples=args.n_samples, seq_len=args.seq_len, seed=0),
                            base.tokenizer, data_dir=data_dir)
    report = {"model": base.record(), "threads": args.threads,
              "cpu": {"model_name": cpu_model(), "machine": platform.machine(), "cpu_count": os.cpu_count()},
              "unicomp_commit": git_commit(), "python": platform.python_version(), "torch": torch.__version__,
              "repeats": args.repeats,
              "calibration": {k: cal.record[k] for k in ("n_samples", "total_tokens", "sha256") if k in cal.record},
              "wikitext": {"source": wiki.source, "location": wiki.location, "rows": len(wiki.rows)},
              "ppl_windows": args.ppl_windows, "runs": []}
    previous: dict[str, dict] = {}
    if args.resume and Path(args.json).is_file():
        old = json.loads(Path(args.json).read_text())
        same = all(old.get(k) == report[k] for k in ("calibration", "ppl_windows", "repeats", "threads")) and \
            old.get("model", {}).get("location") == report["model"].get("location")
        if same:
            previous = {run_key(r["method"], r["options"]): r for r in old.get("runs", [])
                        if "unicomp_ppl" in r and (not args.weight_only_ppl or "unicomp_ppl_weights_only" in r
                                                   or "unicomp_execution" not in r)}
            if "base_ppl" in old:
                report["base_ppl"] = old["base_ppl"]
            report["resumed"] = {"from_commit": old.get("unicomp_commit"), "runs_reused": sorted(previous)}
        else:
            print(f"--resume: {args.json} was made with another model, calibration, windows, repeats or threads; "
                  "starting afresh", flush=True)
    if "base_ppl" not in report:
        report["base_ppl"] = perplexity(LanguageModel(base.model, base.tokenizer), text, args.ppl_windows)
    print(f"base ppl {report['base_ppl']:.3f}", flush=True)
    probe = cal.samples[0][:256]

    def save() -> None:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))

    def run_ours(method: str, options: dict) -> tuple[dict, dict, list[float]]:
        """Compress fresh copies with unicomp (--repeats times) and score the last: our row, timing stats, CPU times."""
        seconds_runs: list[float] = []
        cpu_runs: list[float] = []
        loadavg_runs: list[dict] = []
        for _ in range(args.repeats):
            fresh = load_model(args.model)
            compressor = make_method(method, options)
            load_before = os.getloadavg()[0]
            cpu_start = time.process_time()
            start = time.perf_counter()
            rep = compress_model(fresh.model, compressor, cal, batch_size=args.batch_size,
                                 compute_dtype=args.compute_dtype)
            seconds_runs.append(time.perf_counter() - start)
            cpu_runs.append(time.process_time() - cpu_start)
            loadavg_runs.append({"before": load_before, "after": os.getloadavg()[0]})
            print(f"{method}: unicomp run {len(seconds_runs)}/{args.repeats} {seconds_runs[-1]:.2f} s", flush=True)
            if len(seconds_runs) == 1:
                peak_rss_mib = rep.peak_memory_bytes / 2**20
        stats = spread(seconds_runs)
        row = {"method": method, "options": options, "config": compressor.config.model_dump(mode="json"),
               "compute_dtype": args.compute_dtype or "float32",
               "unicomp_seconds": stats["median"], "unicomp_seconds_runs": seconds_runs,
               "unicomp_seconds_stats": stats, "unicomp_cpu_seconds_runs": cpu_runs,
               "unicomp_cpu_seconds_stats": spread(cpu_runs), "unicomp_loadavg_1min_runs": loadavg_runs,
               "summary": rep.summary, "peak_rss_mib": peak_rss_mib}
        lm = LanguageModel(fresh.model, fresh.tokenizer)
        if getattr(compressor, "quantizes_activations", False):
            # W8A8: round each quantized linear's input per token, as a loaded fp32 W8A8 model runs
            if args.weight_only_ppl:
                row["unicomp_ppl_weights_only"] = perplexity(lm, text, args.ppl_windows)
            before = probe_logits(fresh.model, probe)
            row["unicomp_execution"] = prepare_execution(fresh.model, "reference")
            row["unicomp_probe_logits_max_abs_diff_act_quant_on_vs_off"] = float(
                (probe_logits(fresh.model, probe) - before).abs().max())
        row["unicomp_ppl"] = perplexity(lm, text, args.ppl_windows)
        return row, stats, cpu_runs

    with tempfile.TemporaryDirectory() as tmp:
        ref_dir = Path(args.reference_dir) if args.reference_dir else Path(tmp)
        ref_dir.mkdir(parents=True, exist_ok=True)
        # with --reference-dir the inputs stay too, so the reference can be re-run by hand
        cal_file = ref_dir / "calibration.json"
        cal_file.write_text(json.dumps(cal.samples))
        wiki_file = ref_dir / "wikitext-2-raw-v1-test.jsonl"  # the rows scored here, for the reference
        wiki_file.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in wiki.rows))
        for spec in args.run or RUNS:
            method, options = parse_run(spec)
            compressor = make_method(method, options)
            row = previous.get(run_key(method, options))
            if row is not None:  # --resume: ours is complete
                print(f"{method}: unicomp side reused from {args.json}", flush=True)
                stats, cpu_runs = row["unicomp_seconds_stats"], row.get("unicomp_cpu_seconds_runs")
                report["runs"].append(row)
            else:
                row, stats, cpu_runs = run_ours(method, options)
                report["runs"].append(row)
                save()  # ours is done: keep it even if the reference fails or is stopped
            if "llmcompressor_ppl" in row:
                print(json.dumps({k: v for k, v in row.items() if k not in ("summary", "llmcompressor_command",
                                                                           "llmcompressor_smoothing")}), flush=True)
                continue
            ref_method = reference_method(method, compressor.config)
            if args.llmcompressor and ref_method:
                stem = f"{len(report['runs']) - 1}-{ref_method}"
                out, log = ref_dir / f"{stem}.json", ref_dir / f"{stem}.log"
                cmd = [args.llmcompressor, str(Path(__file__).with_name("llmcompressor_reference.py")), "--model",
                       base.location, "--method", ref_method, *reference_args(method, options, compressor.config),
                       "--calibration", str(cal_file), "--wikitext", str(wiki_file), "--threads", str(args.threads),
                       "--ppl-windows", str(args.ppl_windows), "--repeats", str(args.repeats), "--out", str(out)]
                if args.weight_only_ppl and ref_method == "smoothquant-w8a8":
                    cmd.append("--weight-only-ppl")
                row["llmcompressor_command"] = cmd
                theirs = json.loads(out.read_text()) if args.resume and out.is_file() else None
                if theirs is not None and not (theirs.get("calibration", {}).get("sha256") == cal.record.get("sha256")
                                               and "wikitext2" in theirs
                                               and theirs["args"].get("ppl_windows") == args.ppl_windows
                                               and theirs["args"].get("repeats", 1) == args.repeats
                                               and theirs["args"].get("method") == ref_method):
                    theirs = None
                if theirs is None:
                    with log.open("w") as fh:
                        done = subprocess.run(cmd, check=False, stdout=fh, stderr=subprocess.STDOUT)  # loguru logs to stdout
                    if done.returncode:
                        sys.stderr.write(log.read_text()[-4000:])
                        raise SystemExit(f"llm-compressor reference failed ({done.returncode}); log: {log}")
                    theirs = json.loads(out.read_text())
                else:
                    print(f"{method}: reference reused from {out}", flush=True)
                    row["llmcompressor_reused"] = {"file": str(out), "written_at_utc": time.strftime(
                        "%Y-%m-%d %H:%M", time.gmtime(out.stat().st_mtime))}
                merge_reference(row, theirs, stats, cpu_runs, cal.record.get("sha256"))
                if args.reference_dir:
                    row["llmcompressor_json"] = str(out)
            elif args.llmcompressor and method in REFERENCE_METHODS:
                row["llmcompressor_skipped"] = "llm-compressor's W8A8 recipe has GPTQ weights only (weights: gptq)"
            save()
            print(json.dumps({k: v for k, v in row.items() if k not in ("summary", "llmcompressor_command",
                                                                       "llmcompressor_smoothing")}), flush=True)


def markdown(report: dict) -> str:
    """One row per run: perplexity of both tools and their difference (with --weight-only-ppl also with
    activations left in float), compression wall time (median, with --repeats min-max) and the time ratio
    ours / theirs. Reads files of older versions of this script (fields missing: "-") as well."""
    runs = report.get("runs") or []
    versions = {(r.get("llmcompressor_versions") or {}).get("llmcompressor") for r in runs if "llmcompressor_ppl" in r}
    theirs = "llm-compressor" + (f" {next(iter(versions))}" if len(versions) == 1 and None not in versions else "")
    repeats = report.get("repeats") or 1
    timing = f", median of {repeats} (min-max)" if repeats > 1 else ""
    float_ppl = any("unicomp_ppl_weights_only" in r or "llmcompressor_ppl_weights_only" in r for r in runs)
    head = ["method", "unicomp ppl", f"{theirs} ppl", f"unicomp ppl vs {theirs}",
            *(["unicomp ppl, activations left in float", f"{theirs} ppl, activations left in float"] if float_ppl
              else []), f"unicomp time{timing}", f"{theirs} time{timing}", "time ratio"]
    lines = [*setup_lines(report), "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]

    def num(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    def seconds(row: dict, tool: str) -> str:
        median, stats = row.get(f"{tool}_seconds"), row.get(f"{tool}_seconds_stats") or {}
        if median is None:
            return "-"
        spread_ = f" ({stats['min']:.1f}-{stats['max']:.1f})" if stats.get("n", 1) > 1 else ""
        return f"{median:.1f} s{spread_}"

    for r in runs:
        options = " ".join(f"{k}={v}" for k, v in (r.get("options") or {}).items())
        dtype = r.get("compute_dtype")
        method = " ".join(x for x in (str(r.get("method", "?")), options) if x) + (
            f", {dtype} passes" if dtype and dtype != "float32" else "")
        ours, ref = r.get("unicomp_ppl"), r.get("llmcompressor_ppl")
        diff = r.get("ppl_rel_diff", None if ours is None or not ref else (ours - ref) / ref)
        cells = [method, num(ours, ".3f"), num(ref, ".3f"), "-" if diff is None else f"{diff * 100:+.2f}%",
                 *([num(r.get("unicomp_ppl_weights_only"), ".3f"), num(r.get("llmcompressor_ppl_weights_only"), ".3f")]
                   if float_ppl else []),
                 seconds(r, "unicomp"), seconds(r, "llmcompressor"), num(r.get("time_ratio"), ".2f") + (
                     "x" if r.get("time_ratio") is not None else "")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def setup_lines(report: dict) -> list[str]:
    """What every row shares: the base model's perplexity on the same windows and the calibration set."""
    cal, windows = report.get("calibration") or {}, report.get("ppl_windows")
    parts = []
    if report.get("base_ppl") is not None:
        parts.append(f"base model perplexity {report['base_ppl']:.3f} (WikiText-2, "
                     f"{'every window' if not windows else f'first {windows} windows'} of 2048 tokens)")
    if cal.get("n_samples"):
        same = any(r.get("calibration_identical") for r in report.get("runs") or [])
        parts.append(f"calibration {cal['n_samples']} samples, {cal.get('total_tokens', '?')} tokens"
                     + (", the same token ids for both tools" if same else ""))
    reused = sorted({r["llmcompressor_reused"]["written_at_utc"] for r in report.get("runs") or []
                     if r.get("llmcompressor_reused")})
    if reused:
        parts.append("llm-compressor's side reused from its run on the same tokens, windows and threads at "
                     + ", ".join(reused) + " UTC (`--resume --reference-dir`), not run again")
    return [f"Shared by every row: {'; '.join(parts)}.", ""] if parts else []


def table_from_json(path: str) -> str:
    """The markdown table of a results file written by --json."""
    return markdown(json.loads(Path(path).read_text()))


def run_key(method: str, options: dict) -> str:
    return method + " " + json.dumps(options, sort_keys=True)


def merge_reference(row: dict, theirs: dict, stats: dict, cpu_runs: list[float] | None,
                    calibration_sha: str | None) -> None:
    """Copy the reference's numbers into our row, with the perplexity difference and the time ratios."""
    their_stats = theirs.get("oneshot_seconds_stats") or spread([theirs["oneshot_seconds"]])
    row.update({
        "llmcompressor_seconds": theirs["oneshot_seconds"],
        "llmcompressor_seconds_runs": theirs.get("oneshot_seconds_runs", [theirs["oneshot_seconds"]]),
        "llmcompressor_seconds_stats": their_stats,
        "llmcompressor_ppl": theirs["wikitext2"]["ppl"],
        "llmcompressor_sparsity": (theirs.get("sparsity") or {}).get("overall"),
        "llmcompressor_pipeline": (theirs.get("pipeline") or {}).get("ran"),
        "llmcompressor_recipe": theirs.get("recipe"),
        "llmcompressor_versions": {k: theirs["versions"].get(k) for k in
                                   ("llmcompressor", "compressed-tensors", "transformers", "torch")},
        "llmcompressor_cpu": theirs.get("cpu"),
        "calibration_identical": theirs["calibration"]["sha256"] == calibration_sha,
        "ppl_rel_diff": (row["unicomp_ppl"] - theirs["wikitext2"]["ppl"]) / theirs["wikitext2"]["ppl"],
        "time_ratio": stats["median"] / theirs["oneshot_seconds"],
        "time_ratio_min": stats["min"] / their_stats["min"],
    })
    if "oneshot_cpu_seconds_stats" in theirs and cpu_runs:
        their_cpu = theirs["oneshot_cpu_seconds_stats"]
        row.update({"llmcompressor_cpu_seconds_runs": theirs["oneshot_cpu_seconds_runs"],
                    "llmcompressor_cpu_seconds_stats": their_cpu,
                    "llmcompressor_loadavg_1min_runs": theirs.get("loadavg_1min_runs"),
                    "cpu_time_ratio": spread(cpu_runs)["median"] / their_cpu["median"]})
    for key in ("w8a8_check", "smoothing", "gptq_log"):
        if key in theirs:
            row[f"llmcompressor_{key}"] = theirs[key]
    if "quantization" in theirs:
        q = theirs["quantization"]
        row["llmcompressor_quantization"] = {k: q[k] for k in ("max_abs_offgrid", "quantized_layers",
                                                                "decoder_linear_layers")}
    if "wikitext2_weights_only" in theirs:
        row["llmcompressor_ppl_weights_only"] = theirs["wikitext2_weights_only"]["ppl"]


if __name__ == "__main__":
    main()
