"""Training throughput of distillation students on this machine: tokens/s of the trainer for
SmolLM2-135M's Minitron depth student (half the layers) with and without bf16 autocast, with the
teacher running every micro-batch and with its cached top-k logits, and for a Low-Rank Clone
student (half the width) with and without its activation alignment.

    UNICOMP_DATA_DIR=../shared/data python bench/distill_throughput.py --out bench/results/distill_throughput.json

Each setting trains a fresh copy of the same student for --steps steps (after one warm-up step, not
counted) on C4 windows. With cached logits the teacher's one pass over the windows is timed on its
own (`cache_seconds`, `cache_tokens_per_s`): a run pays it once, however many passes it makes.
`--repeats N` (default 3) trains every setting N times, in interleaved rounds (each on a fresh
student, with its own warm-up step and, for cached logits, its own teacher pass), so the machine's
drift hits all settings alike; seconds and tokens/s are medians, `*_stats` hold min/median/max.
`--table JSON` prints the markdown table of a stored --out file (docs/benchmarks.md quotes it) and exits.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch
from _machine import machine, spread  # where it ran; min/median/max of repeats


def markdown(result: dict) -> str:
    """One row per setting: tokens/s, and for a setting with bf16 autocast or cached logits its speed-up over
    the same student and losses at fp32 with a live teacher; with --repeats, the tokens/s of the slowest and
    fastest run too. Reads files of older versions of this script (no `seconds_stats`) as well."""
    students = (result.get("setup") or {}).get("students") or {}
    rows = result.get("results") or []
    spread_col = any((r.get("seconds_stats") or {}).get("n", 1) > 1 for r in rows)
    head = ["student", "autocast", "teacher", "losses", "tokens/s (vs autocast off, live teacher)",
            *(["tokens/s min-max"] if spread_col else [])]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---|" + "---:|" * (len(head) - 4)]
    for r in rows:
        kind = r.get("student")
        base = next((b for b in rows if b.get("student") == kind and b.get("autocast") == "off"
                     and b.get("teacher") == "live" and b.get("losses") == r.get("losses")), None)
        tps, stats = r.get("tokens_per_s"), r.get("seconds_stats") or {}
        speed = "-" if tps is None else f"{tps:.0f}"
        if tps is not None and base is not None and base is not r and base.get("tokens_per_s"):
            speed += f" ({tps / base['tokens_per_s']:.1f}x)"
        cells = [f"{kind} ({students[kind]})" if kind in students else str(kind), str(r.get("autocast", "-")),
                 str(r.get("teacher", "-")), " + ".join(r.get("losses") or []) or "-", speed]
        if spread_col:
            tokens = r.get("tokens")
            cells.append(f"{tokens / stats['max']:.0f}-{tokens / stats['min']:.0f}"
                         if tokens and stats.get("min") else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_from_json(path: str) -> str:
    """The markdown table of a results file written by --out."""
    return markdown(json.loads(Path(path).read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--drop-layers", type=int, default=15)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--micro-batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--topk", type=int, default=64, help="cached teacher logits per token")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of every setting (min/median/max)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--table", default=None, metavar="JSON", help="print the markdown table of a stored --out file")
    args = ap.parse_args()
    if args.table:
        print(table_from_json(args.table))
        return
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    torch.set_num_threads(args.threads)

    from unicomp.compress.distill.depth import DepthConfig, depth_prune
    from unicomp.compress.distill.losses import LossTerm
    from unicomp.compress.distill.low_rank_clone import LowRankClone
    from unicomp.compress.distill.trainer import CACHE, TrainConfig, teacher_topk_cache, train
    from unicomp.data.calibration import build_calibration
    from unicomp.models.loading import load_model

    loaded = load_model(args.model, dtype="float32")
    teacher, tok = loaded.model, loaded.tokenizer
    text = build_calibration({"source": "c4", "n_samples": args.micro_batch_size * (args.steps + 1),
                              "seq_len": args.seq_len, "seed": 1}, tok)
    base_student = copy.deepcopy(teacher)
    batches = [{"input_ids": torch.tensor(text.samples[i:i + 4])} for i in range(0, 8, 4)]
    with torch.no_grad():
        depth_prune(base_student, batches, DepthConfig(drop_layers=args.drop_layers))
    rows = []
    cache_dir = Path(tempfile.mkdtemp(prefix="distill-bench-"))
    kl, aligned = [LossTerm(kind="forward_kl")], [LossTerm(kind="forward_kl"), LossTerm(kind="activation_mse")]
    settings = [("depth", "off", None, kl), ("depth", "bf16", None, kl), ("depth", "bf16", args.topk, kl),
                ("lrc", "bf16", None, aligned), ("lrc", "bf16", None, kl)]

    def run(kind: str, autocast: str, topk: int | None, losses: list, folder: Path | None) -> tuple[float, float | None]:
        """Seconds of the timed steps of one fresh student, and of the teacher's top-k pass (None: live teacher)."""
        student = copy.deepcopy(base_student) if kind == "depth" else LowRankClone(
            teacher, teacher.config.hidden_size // 2, batches=batches)
        cfg = TrainConfig(steps=args.steps + 1, micro_batch_size=args.micro_batch_size, lr=1e-4, autocast=autocast,
                          teacher_topk=topk, losses=losses)
        cache_seconds = None
        if topk is not None:  # the teacher's one pass, timed on its own; train() then reads the file
            _, _, cache_seconds = teacher_topk_cache(teacher, data, topk, args.micro_batch_size,
                                                     torch.autocast("cpu", dtype=torch.bfloat16), folder / CACHE)
        times: list[float] = []
        last = [time.perf_counter()]

        def on_step(record, times=times, last=last) -> None:
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now

        train(student, teacher, text.samples, cfg, checkpoint_dir=folder, on_step=on_step)
        return sum(times[1:]), cache_seconds  # the first step warms up

    data = torch.tensor(text.samples)
    tokens = args.steps * args.micro_batch_size * args.seq_len
    seconds_runs: list[list[float]] = [[] for _ in settings]
    cache_runs: list[list[float]] = [[] for _ in settings]
    for round_ in range(args.repeats):  # interleaved rounds: the machine's drift hits every setting alike
        for i, (kind, autocast, topk, losses) in enumerate(settings):
            folder = None if topk is None else cache_dir / f"topk{topk}"
            seconds, cache_seconds = run(kind, autocast, topk, losses, folder)
            if folder is not None:  # else the next round would resume the finished checkpoint and read the cache back
                shutil.rmtree(folder)
            seconds_runs[i].append(seconds)
            if cache_seconds is not None:
                cache_runs[i].append(cache_seconds)
            print(f"round {round_ + 1}/{args.repeats}: {kind} autocast {autocast}, topk {topk}: {seconds:.1f} s",
                  flush=True)
    for (kind, autocast, topk, losses), runs, caches in zip(settings, seconds_runs, cache_runs):
        stats = spread(runs)
        seconds = stats["median"]
        extra = {}
        if caches:
            cache_stats = spread(caches)
            extra = {"cache_seconds": cache_stats["median"], "cache_tokens_per_s": data.numel() / cache_stats["median"],
                     "cache_seconds_runs": caches, "cache_seconds_stats": cache_stats}
        row = {"student": kind, "autocast": autocast, "teacher": f"cached top-{topk}" if topk else "live",
               "losses": [t.kind for t in losses], "steps": args.steps, "tokens": tokens, "seconds": seconds,
               "tokens_per_s": tokens / seconds, "seconds_runs": runs, "seconds_stats": stats, **extra}
        rows.append(row)
        print(f"{kind} autocast {autocast}, teacher {row['teacher']}, {'+'.join(row['losses'])}: "
              f"{tokens / seconds:.0f} tokens/s ({seconds:.1f} s for {tokens} tokens, "
              f"min {stats['min']:.1f} s, max {stats['max']:.1f} s)"
              + (f"; cache {extra['cache_tokens_per_s']:.0f} tokens/s" if extra else ""), flush=True)
    shutil.rmtree(cache_dir, ignore_errors=True)
    result = {"setup": {"model": args.model, "students": {"depth": f"{args.drop_layers} layers dropped",
                                                          "lrc": "half the hidden size, PCA start"},
                        "micro_batch_size": args.micro_batch_size, "seq_len": args.seq_len, "threads": args.threads,
                        "topk": args.topk, "repeats": args.repeats, "torch": torch.__version__,
                        "cpu": platform.processor() or platform.machine()}, "machine": machine(), "results": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
