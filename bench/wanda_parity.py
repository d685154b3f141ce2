"""Is a Wanda perplexity gap to llm-compressor an algorithmic difference or fp32 noise?

Both tools score |W| x sqrt(mean x^2) per output row and keep the top half. If they compute the
same thing, their masks agree except where fp32 rounding (summation order, kernels) flips a
near-tie, and that disagreement grows layer by layer as the pruned layers' outputs feed the next.
This script measures both effects on identical calibration tokens:

1. llm-compressor 0.14 `WandaPruningModifier` in its own venv (`--llmcompressor`), model saved;
2. our Wanda on the same samples in their order, and in mathematically equivalent orders
   (reversed, shuffled): what fp32 summation order alone does to our own perplexity;
3. per-layer mask disagreement of each of our runs with llm-compressor's;
4. WikiText-2 fixed-window perplexity (GPTQ-paper protocol) of every model with our code,
   llm-compressor's models included (also for each order in --llmcompressor-orders).

    UNICOMP_DATA_DIR=../shared/data python bench/wanda_parity.py \\
        --llmcompressor /root/.venvs/llmcompressor/bin/python --json bench/results/wanda_parity.json

Results go in docs/benchmarks.md ("Where Wanda's perplexity gap comes from"): `--table JSON` prints
the markdown tables of a stored --json file and exits.
"""

from __future__ import annotations

from _machine import machine  # the CPU / GPU, threads and versions the numbers came from
import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--n-samples", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--orders", default="given,shuffled:1",
                    help="calibration orders for our runs: given | reversed | shuffled:SEED, comma-separated")
    ap.add_argument("--ppl-windows", type=int, default=16, help="0: every window of the test set")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--llmcompressor", default=None, help="python of the llm-compressor venv; omit to skip")
    ap.add_argument("--llmcompressor-orders", default="given,shuffled:1",
                    help="calibration orders for llm-compressor's runs; the first one's masks are the reference")
    ap.add_argument("--data-dir", default=None, help="local dataset mirror (default: $UNICOMP_DATA_DIR)")
    ap.add_argument("--json", default=None, help="write the results here (required unless --table)")
    ap.add_argument("--table", default=None, metavar="JSON", help="print the markdown tables of a stored --json file")
    args = ap.parse_args()
    if not args.table and not args.json:
        ap.error("the following arguments are required: --json")
    return args


def reorder(samples: list[list[int]], order: str) -> list[list[int]]:
    if order == "given":
        return samples
    if order == "reversed":
        return samples[::-1]
    if order.startswith("shuffled:"):
        return random.Random(int(order.split(":", 1)[1])).sample(samples, len(samples))
    raise SystemExit(f"unknown order {order!r}: use given, reversed or shuffled:SEED")


def masks_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    from unicomp.models.anatomy import anatomy_of

    layers = anatomy_of(model).layers
    return {n: p.detach() == 0 for n, p in model.named_parameters() if p.dim() == 2 and n.startswith(layers)}


def disagreement(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Fraction of weights pruned by exactly one of the two, per decoder layer and overall."""
    per_layer: dict[int, list[int]] = {}
    for name, mask in ours.items():
        index = int(name.split(".")[2])
        counts = per_layer.setdefault(index, [0, 0])
        counts[0] += int((mask != theirs[name]).sum())
        counts[1] += mask.numel()
    total = sum(c[0] for c in per_layer.values()) / sum(c[1] for c in per_layer.values())
    return {"overall": total, "per_layer": {i: c[0] / c[1] for i, c in sorted(per_layer.items())}}


def main() -> None:
    args = parse_args()
    if args.table:
        print(markdown(json.loads(Path(args.table).read_text())))
        return
    torch.set_num_threads(args.threads)
    from safetensors.torch import load_file

    from unicomp.compress.apply import compress_model
    from unicomp.compress.registry import make_method
    from unicomp.data.calibration import CalibrationConfig, build_calibration
    from unicomp.data.resolver import load_rows
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.models.loading import load_model

    data_dir = args.data_dir or os.environ.get("UNICOMP_DATA_DIR") or None
    text = "\n\n".join(r["text"] for r in load_rows("Salesforce/wikitext", "wikitext-2-raw-v1", "test",
                                                     data_dir=data_dir).rows)

    def perplexity(loaded) -> float:
        nlls = LanguageModel(loaded.model, loaded.tokenizer).fixed_window_nll(
            text, 2048, max_windows=args.ppl_windows or None)
        return math.exp(sum(nlls) / len(nlls))

    def save() -> None:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))

    base = load_model(args.model)
    cal = build_calibration(CalibrationConfig(source="c4", n_samples=args.n_samples, seq_len=args.seq_len, seed=0),
                            base.tokenizer, data_dir=data_dir)
    report: dict[str, Any] = {"machine": machine(), "model": base.record(), "calibration_sha256": cal.record["sha256"],
                              "n_samples": args.n_samples, "seq_len": args.seq_len, "sparsity": args.sparsity,
                              "ppl_windows": args.ppl_windows or "all", "runs": {}}
    theirs = None
    with tempfile.TemporaryDirectory() as tmp:
        for order in (args.llmcompressor_orders.split(",") if args.llmcompressor else []):
            order = order.strip()
            cal_file, saved = Path(tmp) / f"calibration-{order}.json", Path(tmp) / f"llmcompressor-wanda-{order}"
            cal_file.write_text(json.dumps(reorder(cal.samples, order)))
            out = Path(tmp) / f"lc-{order}.json"
            subprocess.run([args.llmcompressor, str(Path(__file__).with_name("llmcompressor_reference.py")),
                            "--model", base.location, "--method", "wanda", "--sparsity", str(args.sparsity),
                            "--calibration", str(cal_file), "--threads", str(args.threads), "--skip-ppl",
                            "--out", str(out), "--save", str(saved)],
                           check=True, stdout=subprocess.DEVNULL)
            state: dict[str, torch.Tensor] = {}
            for file in sorted(saved.glob("*.safetensors")):
                state.update(load_file(file))
            reference = load_model(args.model)
            reference.model.load_state_dict(state, strict=False)  # tied lm_head is not saved separately
            row: dict[str, Any] = {"tool": "llm-compressor", "order": order, "ppl": perplexity(reference),
                                   "seconds": json.loads(out.read_text()).get("oneshot_seconds")}
            if theirs is None:
                theirs = masks_of(reference.model)
            else:
                row["mask_disagreement_with_llmcompressor"] = disagreement(masks_of(reference.model), theirs)
            report["runs"][f"llm-compressor ({order})"] = row
            print(f"llm-compressor ({order})", {"ppl": row["ppl"]}, flush=True)
            save()
        for order in args.orders.split(","):
            order = order.strip()
            fresh = load_model(args.model)
            run_cal = type("Calibration", (), {"samples": reorder(cal.samples, order), "record": cal.record})()
            compress_model(fresh.model, make_method("wanda", {"sparsity": args.sparsity}), run_cal)
            row = {"tool": "unicomp", "order": order, "ppl": perplexity(fresh)}
            if theirs is not None:
                row["mask_disagreement_with_llmcompressor"] = disagreement(masks_of(fresh.model), theirs)
            report["runs"][f"unicomp ({order})"] = row
            print(f"unicomp ({order})", {"ppl": row["ppl"],
                  "disagreement": row.get("mask_disagreement_with_llmcompressor", {}).get("overall")}, flush=True)
            save()


def markdown(report: dict) -> str:
    """Two tables: each run's perplexity, and per decoder layer the fraction of weights that exactly one of
    (this run, llm-compressor's first order) prunes, for the first three layers, the middle and the last."""
    runs = report.get("runs") or {}
    windows = report.get("ppl_windows")
    lines = [f"Wanda {report.get('sparsity', 0.5):.0%} unstructured, {report.get('n_samples', '?')} x "
             f"{report.get('seq_len', '?')} C4 calibration tokens"
             f"{' (identical ids for both tools)' if any(r.get('tool') == 'llm-compressor' for r in runs.values()) else ''}"
             ", WikiText-2 token "
             f"perplexity on {'every window' if windows == 'all' else f'the first {windows} window' + 's' * (windows != 1)} of 2048, "
             "scored by the same code for every model.", "",
             "| run | calibration order | perplexity |", "|---|---|---:|"]
    for name, row in runs.items():
        lines.append(f"| {row.get('tool', name)} | {row.get('order', '-')} | {row['ppl']:.3f} |")
    compared = {n: r["mask_disagreement_with_llmcompressor"] for n, r in runs.items()
                if "mask_disagreement_with_llmcompressor" in r}
    if compared:
        reference = next(iter(runs))
        layers = sorted({int(i) for d in compared.values() for i in d["per_layer"]})
        shown = sorted({layers[0], layers[1], layers[2], layers[len(layers) // 2], layers[-1]}) if len(layers) > 3 \
            else layers
        lines += ["", f"Weights pruned by exactly one of the two (this run vs {reference}), per decoder layer:", "",
                  "| run | " + " | ".join(f"layer {i}" for i in shown) + " | all |",
                  "|---|" + "---:|" * (len(shown) + 1)]
        for name, d in compared.items():
            per = {int(k): v for k, v in d["per_layer"].items()}
            lines.append(f"| {name} | " + " | ".join(f"{per[i]:.4%}" for i in shown) + f" | {d['overall']:.4%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
