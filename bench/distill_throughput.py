"""Training throughput of distillation students on this machine: tokens/s of the trainer for
SmolLM2-135M's Minitron depth student (half the layers) with and without bf16 autocast, with the
teacher running every micro-batch and with its cached top-k logits, and for a Low-Rank Clone
student (half the width) with and without its activation alignment.

    UNICOMP_DATA_DIR=../shared/data python bench/distill_throughput.py --out bench/results/distill_throughput.json

Each setting trains a fresh copy of the same student for --steps steps (after one warm-up step, not
counted) on C4 windows. With cached logits the teacher's one pass over the windows is timed on its
own (`cache_seconds`, `cache_tokens_per_s`): a run pays it once, however many passes it makes.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--drop-layers", type=int, default=15)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--micro-batch-size", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--topk", type=int, default=64, help="cached teacher logits per token")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
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
    for kind, autocast, topk, losses in settings:
        student = copy.deepcopy(base_student) if kind == "depth" else LowRankClone(
            teacher, teacher.config.hidden_size // 2, batches=batches)
        cfg = TrainConfig(steps=args.steps + 1, micro_batch_size=args.micro_batch_size, lr=1e-4, autocast=autocast,
                          teacher_topk=topk, losses=losses)
        extra = {}
        folder = None
        if topk is not None:  # the teacher's one pass, timed on its own; train() then reads the file
            folder = cache_dir / f"topk{topk}"
            data = torch.tensor(text.samples)
            _, _, cache_seconds = teacher_topk_cache(teacher, data, topk, args.micro_batch_size,
                                                     torch.autocast("cpu", dtype=torch.bfloat16), folder / CACHE)
            extra = {"cache_seconds": cache_seconds, "cache_tokens_per_s": data.numel() / cache_seconds}
        times: list[float] = []
        last = [time.perf_counter()]

        def on_step(record, times=times, last=last) -> None:
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now

        train(student, teacher, text.samples, cfg, checkpoint_dir=folder, on_step=on_step)
        seconds = sum(times[1:])  # the first step warms up
        tokens = args.steps * args.micro_batch_size * args.seq_len
        row = {"student": kind, "autocast": autocast, "teacher": f"cached top-{topk}" if topk else "live",
               "losses": [t.kind for t in losses], "steps": args.steps, "tokens": tokens, "seconds": seconds,
               "tokens_per_s": tokens / seconds, **extra}
        rows.append(row)
        print(f"{kind} autocast {autocast}, teacher {row['teacher']}, {'+'.join(row['losses'])}: "
              f"{tokens / seconds:.0f} tokens/s ({seconds:.1f} s for {tokens} tokens)"
              + (f"; cache {extra['cache_tokens_per_s']:.0f} tokens/s" if extra else ""), flush=True)
    shutil.rmtree(cache_dir, ignore_errors=True)
    result = {"setup": {"model": args.model, "students": {"depth": f"{args.drop_layers} layers dropped",
                                                          "lrc": "half the hidden size, PCA start"},
                        "micro_batch_size": args.micro_batch_size, "seq_len": args.seq_len, "threads": args.threads,
                        "topk": args.topk, "torch": torch.__version__,
                        "cpu": platform.processor() or platform.machine()}, "results": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
