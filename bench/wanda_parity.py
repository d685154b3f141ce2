"""Is a Wanda perplexity gap to llm-compressor an algorithmic difference or fp32 noise?

Both tools score |W| x sqrt(mean x^2) per output row and keep the top half. If they compute the
same thing, their masks agree except where fp32 rounding (summation order, kernels) flips a
near-tie, and that disagreement grows layer by layer as the pruned layers' outputs feed the next.
This script measures both effects on identical calibration tokens:

1. llm-compressor 0.14 `WandaPruningModifier` in its own venv (`--llmcompressor`), model saved;
2. our Wanda on the same samples in their order, and in mathematically equivalent orders
   (reversed, shuffled): what fp32 summation order alone does to our own perplexity;
3. per-layer mask disagreement of each of our runs with llm-compressor's;
4. WikiText-2 fixed-window perplexity (GPTQ-paper protocol) of every model with our code.

    UNICOMP_DATA_DIR=../shared/data python bench/wanda_parity.py \\
        --llmcompressor /root/.venvs/llmcompressor/bin/python --json wanda_parity.json

Results go in docs/benchmarks.md ("Pruning quality and speed").
"""

from __future__ import annotations

from _machine import machine  # the CPU / GPU, threads and versions the numbers came from
import argparse
import json
import math
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
    ap.add_argument("--orders", default="given,reversed,shuffled:1",
                    help="calibration orders for our runs: given | reversed | shuffled:SEED, comma-separated")
    ap.add_argument("--ppl-windows", type=int, default=16, help="0: every window of the test set")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--llmcompressor", default=None, help="python of the llm-compressor venv; omit to skip")
    ap.add_argument("--json", required=True)
    return ap.parse_args()


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
    torch.set_num_threads(args.threads)
    from safetensors.torch import load_file

    from unicomp.compress.apply import compress_model
    from unicomp.compress.registry import make_method
    from unicomp.data.calibration import CalibrationConfig, build_calibration
    from unicomp.data.resolver import load_rows
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.models.loading import load_model

    text = "\n\n".join(r["text"] for r in load_rows("Salesforce/wikitext", "wikitext-2-raw-v1", "test").rows)

    def perplexity(loaded) -> float:
        nlls = LanguageModel(loaded.model, loaded.tokenizer).fixed_window_nll(
            text, 2048, max_windows=args.ppl_windows or None)
        return math.exp(sum(nlls) / len(nlls))

    base = load_model(args.model)
    cal = build_calibration(CalibrationConfig(source="c4", n_samples=args.n_samples, seq_len=args.seq_len, seed=0),
                            base.tokenizer)
    report: dict[str, Any] = {"machine": machine(), "model": base.record(), "calibration_sha256": cal.record["sha256"],
                              "sparsity": args.sparsity, "ppl_windows": args.ppl_windows or "all", "runs": {}}
    theirs = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.llmcompressor:
            cal_file, saved = Path(tmp) / "calibration.json", Path(tmp) / "llmcompressor-wanda"
            cal_file.write_text(json.dumps(cal.samples))
            subprocess.run([args.llmcompressor, str(Path(__file__).with_name("llmcompressor_reference.py")),
                            "--model", base.location, "--method", "wanda", "--sparsity", str(args.sparsity),
                            "--calibration", str(cal_file), "--threads", str(args.threads), "--skip-ppl",
                            "--out", str(Path(tmp) / "lc.json"), "--save", str(saved)],
                           check=True, stdout=subprocess.DEVNULL)
            state: dict[str, torch.Tensor] = {}
            for file in sorted(saved.glob("*.safetensors")):
                state.update(load_file(file))
            reference = load_model(args.model)
            reference.model.load_state_dict(state, strict=False)  # tied lm_head is not saved separately
            theirs = masks_of(reference.model)
            report["runs"]["llmcompressor"] = {"ppl": perplexity(reference)}
            print("llmcompressor", report["runs"]["llmcompressor"], flush=True)
        for order in args.orders.split(","):
            fresh = load_model(args.model)
            samples = reorder(cal.samples, order.strip())
            run_cal = type("Calibration", (), {"samples": samples, "record": cal.record})()
            compress_model(fresh.model, make_method("wanda", {"sparsity": args.sparsity}), run_cal)
            row: dict[str, Any] = {"ppl": perplexity(fresh)}
            if theirs is not None:
                row["mask_disagreement_with_llmcompressor"] = disagreement(masks_of(fresh.model), theirs)
            report["runs"][f"unicomp ({order})"] = row
            print(f"unicomp ({order})", {"ppl": row["ppl"],
                  "disagreement": row.get("mask_disagreement_with_llmcompressor", {}).get("overall")}, flush=True)
            Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
