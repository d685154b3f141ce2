"""Exactness and speed of unicomp's evaluation engine against lm-eval 0.4.13's HFLM.

Both sides get the SAME model object, the same mirror rows, the same batch size and threads.
lm-eval reads the mirror through its own task YAMLs, only re-pointed at the mirror files
(`dataset_path: json`), so its prompts and scoring are its own, not ours.

    UNICOMP_DATA_DIR=../shared/data python bench/lm_eval_parity.py --limit 200 --batch-size 16

Prints per task: max |Δ log-likelihood| over all choices of the first N items, whether acc /
acc_norm agree item by item, the aggregate scores, and items/s of each engine (timing covers
building requests from documents through to scores, for both).
`--repeats N` (default 1: each timing is a whole evaluation) runs every timed evaluation N times;
the seconds reported are medians, with `*_seconds_runs` (every run) and `*_seconds_stats`
(min/median/max; n=1 without repeats) beside them.
Needs the dev extra: pip install -e '.[dev]'.
"""

from __future__ import annotations

from _machine import machine, spread  # the CPU / GPU, threads and versions the numbers came from
import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def timed_runs(fn: Callable[[], tuple[Any, float]], repeats: int) -> tuple[Any, list[float]]:
    """The first result of `fn() -> (result, seconds)` (every run computes the same) and the seconds of
    `repeats` runs: one evaluation's time varies with what else the machine does."""
    result, seconds = fn()
    return result, [seconds] + [fn()[1] for _ in range(repeats - 1)]


def stopwatch(fn: Callable[[], Any]) -> Callable[[], tuple[Any, float]]:
    """`fn` returning (its result, its wall seconds), for `timed_runs`."""
    def run() -> tuple[Any, float]:
        start = time.perf_counter()
        result = fn()
        return result, time.perf_counter() - start
    return run


def run_lm_eval(hflm, task_names, folder: Path, limit):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(folder))
    start = time.perf_counter()
    out = simple_evaluate(model=hflm, tasks=[f"mirror_{t}" for t in task_names], limit=limit, task_manager=tm,
                          log_samples=True, bootstrap_iters=0, num_fewshot=0)
    return out, time.perf_counter() - start


TASK_TITLES = {"arc_easy": "ARC-Easy (test)", "hellaswag": "HellaSwag (validation)", "piqa": "PIQA (validation)"}


def table_from_json(path: str) -> str:
    """docs/benchmarks.md's tables for a --json file: per task, exactness and speed; WikiText if compared."""
    data = json.loads(Path(path).read_text())
    lines = []
    if data["tasks"]:
        lines += [(f"| task (first {data['limit']} items) | max \\|Δ log-lik\\| over all choices | acc items equal "
                  "| acc_norm items equal | acc (ours / lm-eval) | acc_norm (ours / lm-eval) | unicomp items/s "
                  "| lm-eval items/s | speed-up |"), "|---|---|---|---|---|---|---|---|---|"]
        for name, row in data["tasks"].items():
            n = row["items"]
            norm_equal = "-" if row["acc_norm_items_equal"] is None else f"{row['acc_norm_items_equal']}/{n}"

            def pair(metric: str, row: dict = row) -> str:
                ours, theirs = row["ours"].get(metric), row["lm_eval"].get(metric)
                return "-" if ours is None else f"{ours:.3f} / {theirs:.3f}"

            lines.append(f"| {TASK_TITLES.get(name, name)} | {row['max_abs_loglikelihood_diff']:.1e} | {row['acc_items_equal']}/{n} "
                         f"| {norm_equal} | {pair('acc')} | {pair('acc_norm')} | {row['ours_items_per_s']:.2f} "
                         f"| {row['lm_eval_items_per_s']:.2f} | **{row['speedup']:.2f}x** |")
        lines += ["", (f"Batch size {data['batch_size']}, {data['threads']} threads; seconds are the median of "
                       f"{data['repeats']} timed run(s) of each engine, one task at a time.")]
    wiki = data.get("wikitext")
    if wiki:
        lines += ([""] if lines else []) + ["| metric | unicomp | lm-eval |", "|---|---|---|"]
        for metric in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
            lines.append(f"| {metric} | {wiki['ours'][metric]!r} | {wiki['lm_eval'][metric]!r} |")
        lines.append(f"| wall time | {wiki['our_seconds']:.0f} s | {wiki['lm_eval_seconds']:.0f} s |")
        lines += ["", f"{wiki['pages']} pages, context window {wiki['max_length']}."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--tasks", default="arc_easy,hellaswag,piqa")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--wikitext", action="store_true", help="also compare WikiText-2 word perplexity (all 62 pages)")
    ap.add_argument("--wikitext-max-length", type=int, default=None, help="context window for both engines")
    ap.add_argument("--wikitext-batch-size", type=int, default=1,
                    help="lm-eval materialises full-vocabulary logits per window: keep this small")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs of every evaluation (min/median/max)")
    ap.add_argument("--json", default=None, help="write the numbers here")
    ap.add_argument("--table", default=None, metavar="JSON", help="print the markdown tables of a stored --json file")
    args = ap.parse_args()
    if args.table:
        print(table_from_json(args.table))
        return
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    from lm_eval.models.huggingface import HFLM

    from unicomp.evaluate.lm import LanguageModel
    from unicomp.evaluate.runner import evaluate_task, load_task_docs
    from unicomp.evaluate.tasks import get_task
    from unicomp.evaluate.tasks.language_modelling import wikitext_pages
    from unicomp.data.resolver import load_rows
    from unicomp.evaluate.lm_eval_adapter import write_lm_eval_mirror_tasks, write_lm_eval_wikitext_task
    from unicomp.models.loading import load_model

    mirror = Path(os.environ["UNICOMP_DATA_DIR"]).resolve()
    loaded = load_model(args.model, dtype="float32")
    model, tok = loaded.model, loaded.tokenizer
    names = [t for t in args.tasks.split(",") if t]
    report = {"machine": machine(), "model": loaded.record(), "threads": torch.get_num_threads(), "batch_size": args.batch_size,
              "limit": args.limit, "repeats": args.repeats, "tasks": {}}

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_lm_eval_mirror_tasks(folder, names, mirror)
        hflm = HFLM(pretrained=model, tokenizer=tok, batch_size=args.batch_size)
        lm_out, lm_runs = (timed_runs(lambda: run_lm_eval(hflm, names, folder, args.limit), args.repeats)
                           if names else ({}, [0.0]))

        ours = LanguageModel(model, tok, batch_size=args.batch_size)
        for name in names:
            spec = get_task(name)

            def ours_task(spec=spec):
                docs, resolved = load_task_docs(spec, args.limit)
                return evaluate_task(ours, spec, docs, resolved, limit=args.limit)

            result, our_runs = timed_runs(stopwatch(ours_task), args.repeats)
            samples = sorted(lm_out["samples"][f"mirror_{name}"], key=lambda s: s["doc_id"])
            max_diff, acc_same, norm_same = 0.0, 0, 0
            for rec, sample in zip(result.records, samples):
                theirs = [float(r[0]) for r in sample["filtered_resps"]]
                max_diff = max(max_diff, max(abs(a - b) for a, b in zip(rec.loglikelihoods, theirs)))
                acc_same += rec.metrics["acc"] == sample["acc"]
                if "acc_norm" in rec.metrics:
                    norm_same += rec.metrics["acc_norm"] == sample["acc_norm"]
            theirs_res = lm_out["results"][f"mirror_{name}"]
            row = {
                "items": len(result.records),
                "max_abs_loglikelihood_diff": max_diff,
                "acc_items_equal": acc_same, "acc_norm_items_equal": norm_same if "acc_norm" in result.scores else None,
                "ours": result.scores, "lm_eval": {k.split(",")[0]: v for k, v in theirs_res.items() if k.endswith(",none") and "stderr" not in k},
                "our_seconds": spread(our_runs)["median"], "our_seconds_runs": our_runs, "our_seconds_stats": spread(our_runs),
            }
            report["tasks"][name] = row
            print(json.dumps({name: row}, indent=1))
        report.update(lm_eval_seconds_all_tasks=spread(lm_runs)["median"], lm_eval_seconds_all_tasks_runs=lm_runs,
                      lm_eval_seconds_all_tasks_stats=spread(lm_runs))
        # Per-task lm-eval timing: run each task alone so items/s are comparable task by task.
        for name in names:
            _, runs = timed_runs(lambda name=name: run_lm_eval(hflm, [name], folder, args.limit), args.repeats)
            seconds = spread(runs)["median"]
            row = report["tasks"][name]
            row.update(lm_eval_seconds=seconds, lm_eval_seconds_runs=runs, lm_eval_seconds_stats=spread(runs))
            row["ours_items_per_s"] = row["items"] / row["our_seconds"]
            row["lm_eval_items_per_s"] = row["items"] / seconds
            row["speedup"] = seconds / row["our_seconds"]
            print(f"{name}: ours {row['ours_items_per_s']:.2f} items/s, lm-eval {row['lm_eval_items_per_s']:.2f} items/s, "
                  f"speed-up {row['speedup']:.2f}x, max |dLL| {row['max_abs_loglikelihood_diff']:.2e}, "
                  f"acc equal {row['acc_items_equal']}/{row['items']}, acc_norm equal {row['acc_norm_items_equal']}")

        if args.wikitext:
            resolved = load_rows("Salesforce/wikitext", "wikitext-2-raw-v1", "test")
            pages = wikitext_pages(resolved.rows)
            pages_file = folder / "wikitext_pages.jsonl"
            pages_file.write_text("".join(json.dumps(p) + "\n" for p in pages))
            write_lm_eval_wikitext_task(folder, pages_file)
            kw = {"max_length": args.wikitext_max_length} if args.wikitext_max_length else {}
            hflm_w = HFLM(pretrained=model, tokenizer=tok, batch_size=args.wikitext_batch_size, **kw)
            (out, _), lm_runs = timed_runs(stopwatch(lambda: run_lm_eval(hflm_w, ["wikitext"], folder, None)),
                                           args.repeats)
            ours_w = LanguageModel(model, tok, batch_size=args.wikitext_batch_size, max_length=args.wikitext_max_length)
            spec = get_task("wikitext")

            def ours_wikitext():
                docs, resolved = load_task_docs(spec, None)
                return docs, evaluate_task(ours_w, spec, docs, resolved)

            (docs, res), our_runs = timed_runs(stopwatch(ours_wikitext), args.repeats)
            theirs = out["results"]["mirror_wikitext"]
            row = {"pages": len(docs), "ours": res.scores,
                   "lm_eval": {k.split(",")[0]: v for k, v in theirs.items() if k.endswith(",none") and "stderr" not in k},
                   "our_seconds": spread(our_runs)["median"], "lm_eval_seconds": spread(lm_runs)["median"],
                   "our_seconds_runs": our_runs, "our_seconds_stats": spread(our_runs),
                   "lm_eval_seconds_runs": lm_runs, "lm_eval_seconds_stats": spread(lm_runs),
                   "max_length": ours_w.max_length}
            report["wikitext"] = row
            print(json.dumps({"wikitext": row}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
