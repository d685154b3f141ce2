"""Training throughput of a distillation student on this machine: tokens/s of the trainer with and
without bf16 autocast, for SmolLM2-135M's Minitron depth student (half the layers) and its teacher.

    UNICOMP_DATA_DIR=../shared/data python bench/distill_throughput.py --out bench/results/distill_throughput.json

Each setting trains a fresh copy of the same student for --steps steps (after one warm-up step, not
counted) on C4 windows; the teacher runs forward on every micro-batch (no cached logits).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
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
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from unicomp.compress.distill.depth import DepthConfig, depth_prune
    from unicomp.compress.distill.trainer import TrainConfig, train
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
    for autocast in ("off", "bf16"):
        student = copy.deepcopy(base_student)
        cfg = TrainConfig(steps=args.steps + 1, micro_batch_size=args.micro_batch_size, lr=1e-4, autocast=autocast)
        times: list[float] = []
        last = [time.perf_counter()]

        def on_step(record, times=times, last=last) -> None:
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now

        train(student, teacher, text.samples, cfg, on_step=on_step)
        seconds = sum(times[1:])  # the first step warms up
        tokens = args.steps * args.micro_batch_size * args.seq_len
        rows.append({"autocast": autocast, "steps": args.steps, "tokens": tokens, "seconds": seconds,
                     "tokens_per_s": tokens / seconds})
        print(f"autocast {autocast}: {tokens / seconds:.0f} tokens/s ({seconds:.1f} s for {tokens} tokens)", flush=True)
    result = {"setup": {"model": args.model, "student": f"depth, {args.drop_layers} layers dropped",
                        "micro_batch_size": args.micro_batch_size, "seq_len": args.seq_len, "threads": args.threads,
                        "teacher_logits": "teacher forward every micro-batch", "torch": torch.__version__,
                        "cpu": platform.processor() or platform.machine()}, "results": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
