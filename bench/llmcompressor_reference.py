"""Reference numbers from llm-compressor's `oneshot` (Wanda / SparseGPT / GPTQ) on CPU.

Runs ONE llm-compressor modifier on a local transformers model with calibration token ids
that we hand it (so unicomp and llm-compressor see identical tokens), times the `oneshot`
call alone, records peak RSS, the achieved sparsity (per layer and overall) and the
WikiText-2 perplexity of the compressed model computed the GPTQ-paper way, and writes
everything (numbers, versions, threads, args) to a JSON file.

This script is standalone: it must NOT import `unicomp` (llm-compressor 0.14 pins
transformers <= 5.17, unicomp needs a newer one). Run it in its own virtualenv:

    python3 -m venv /root/.venvs/llmcompressor
    V=/root/.venvs/llmcompressor/bin
    # torch FIRST, the CPU wheel (here a local wheel; elsewhere use the CPU index:
    #   $V/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)
    $V/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
    # then llm-compressor, with torch pinned so pip can never swap in a CUDA build
    echo 'torch==2.13.0+cpu' > /tmp/llmc-constraints.txt
    $V/pip install -c /tmp/llmc-constraints.txt 'llmcompressor==0.14.*'

Versions this was written and smoke-tested against (pip freeze of the key packages):
    llmcompressor==0.14.0.1  compressed-tensors==0.19.0  transformers==5.17.0
    torch==2.13.0+cpu  accelerate==1.15.0  datasets==5.2.0  tokenizers==0.23.3
    safetensors==0.8.0  numpy==2.4.6  auto-round==0.15.1  (Python 3.11.7)
llmcompressor 0.14.0.1 requires torch>=2.10,<=2.14.0 and transformers>=5.15,<=5.17.

Examples (calibration FILE = .pt or .json of token ids, shape [n_samples, seq_len]):

    V=/root/.venvs/llmcompressor/bin
    M=/root/.cache/unicomp/models/smollm2-135m-instruct-bcc81830d10c
    $V/python bench/llmcompressor_reference.py --model $M --method wanda \\
        --sparsity 0.5 --pattern unstructured --calibration calib.pt --threads 2 --out wanda.json
    $V/python bench/llmcompressor_reference.py --model $M --method sparsegpt --pattern 2:4 \\
        --calibration calib.pt --threads 2 --out sgpt24.json
    $V/python bench/llmcompressor_reference.py --model $M --method gptq --bits 4 --group-size 64 \\
        --calibration calib.pt --threads 2 --out gptq.json
    # quick run: --ppl-windows 2 --ppl-seq-len 256

Modifier configuration (argument names read from the installed llmcompressor 0.14.0.1 source):
  * Wanda:     WandaPruningModifier(sparsity, mask_structure="0:0"|"2:4",
                                    targets=[<decoder layer class>], ignore=["re:.*lm_head"])
  * SparseGPT: SparseGPTModifier(sparsity, mask_structure, block_size=128, dampening_frac=0.01,
                                 targets=[<decoder layer class>], ignore=["re:.*lm_head"])
    (for the sparsity modifiers `targets` names the layers that CONTAIN the prunable
    Linear modules; every Linear inside them is pruned.)
  * GPTQ:      GPTQModifier(targets=["Linear"], ignore=["lm_head"], block_size=128,
                            dampening_frac=0.01, actorder="weight"|None,
                            config_groups={"group_0": {"targets": ["Linear"], "weights":
                               {num_bits: 4, type: int, symmetric: true, strategy: group,
                                group_size: 128, dynamic: false}}})  == preset "W4A16".
    llm-compressor 0.14 REMOVED actorder "group"/"dynamic" (GPTQ-paper desc_act with
    groups following the activation order); only "weight" (= "static", its default)
    and None remain. With "weight" the per-group scales are computed by the
    memoryless_minmax observer on the layer's original weights before GPTQ runs
    (AutoGPTQ's static_groups=True), columns are processed in descending diag(H) order.
    Group quantization requires in_features % group_size == 0 (SmolLM2-135M has
    hidden 576 = 4.5 x 128, so group 128 is impossible there; use --group-size 64 or
    --indivisible ignore to leave those layers unquantized).

Pipeline: oneshot's default `pipeline="independent"` infers the "sequential" pipeline for
all three modifiers (each needs calibration data): decoder layers are calibrated one after
another; each layer sees the outputs of the already-compressed previous layers (two
passes per layer: calibrate, then propagate). The pipeline that ran is read from
llm-compressor's own log line and recorded in the JSON.

Perplexity: text = "\\n\\n".join(rows["text"]) of wikitext-2-raw-v1 test, tokenized without
special tokens, cut into non-overlapping windows of --ppl-seq-len tokens (tail dropped);
ppl = exp(mean over windows of the mean NLL of tokens 2..L of each window), fp32.
With the SmolLM2 tokenizer the test text is 304,986 tokens = 148 windows of 2048.

Timing and memory: `oneshot_seconds` covers the `oneshot(...)` call only (model and tokenizer
are loaded before it and passed in; it includes llm-compressor's fx tracing, the sequential
calibration and the compression). Memory is ru_maxrss, the process high-water mark, read
after loading, before oneshot, after oneshot and at the end; with --baseline-ppl the dense
perplexity pass runs before oneshot and may set the high-water mark itself, so compare
`peak_rss_mb_before_oneshot` with `peak_rss_mb_after_oneshot`. `calibration.sha256` is the
same fingerprint as unicomp's calibration record (compact JSON of the id lists).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="local transformers model directory (safetensors)")
    ap.add_argument("--method", required=True, choices=["wanda", "sparsegpt", "gptq"])
    ap.add_argument("--sparsity", type=float, default=0.5, help="pruning: target sparsity (unstructured)")
    ap.add_argument("--pattern", default="unstructured", choices=["unstructured", "2:4"],
                    help='pruning: mask_structure "0:0" (unstructured) or "2:4"')
    ap.add_argument("--bits", type=int, default=4, help="gptq: weight bits (activations stay 16/32 bit)")
    ap.add_argument("--group-size", type=int, default=128, help="gptq: quantization group size")
    ap.add_argument("--actorder", default="weight", choices=["weight", "none"],
                    help='gptq: llm-compressor activation ordering ("weight" = its default "static")')
    ap.add_argument("--indivisible", default="error", choices=["error", "ignore"],
                    help="gptq: Linear layers whose in_features is not a multiple of --group-size: "
                         "stop with an error, or add them to the modifier's ignore list (left unquantized)")
    ap.add_argument("--block-size", type=int, default=128, help="sparsegpt/gptq: columns per block")
    ap.add_argument("--dampening", type=float, default=0.01, help="sparsegpt/gptq: dampening_frac")
    ap.add_argument("--calibration", required=True,
                    help=".pt (LongTensor [n, L], list of lists, or a dict with 'input_ids' or 'samples') "
                         "or .json (list of lists, or a dict with 'input_ids' or 'samples') of token ids")
    ap.add_argument("--num-samples", type=int, default=None, help="use only the first N calibration rows")
    ap.add_argument("--batch-size", type=int, default=1, help="oneshot calibration batch_size (default 1)")
    ap.add_argument("--pipeline", default="independent",
                    help='oneshot pipeline argument (default "independent", oneshot\'s default, '
                         "which infers sequential for these modifiers)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (and OMP/MKL env)")
    ap.add_argument("--wikitext", default="/work/shared/data/Salesforce/wikitext/wikitext-2-raw-v1/test.jsonl",
                    help="wikitext-2-raw-v1 test split as JSON lines with a 'text' field")
    ap.add_argument("--ppl-seq-len", type=int, default=2048)
    ap.add_argument("--ppl-windows", type=int, default=None, help="cap the number of perplexity windows")
    ap.add_argument("--skip-ppl", action="store_true", help="do not compute perplexity")
    ap.add_argument("--baseline-ppl", action="store_true",
                    help="also compute the perplexity of the uncompressed model (before oneshot)")
    ap.add_argument("--attn-implementation", default=None,
                    help="passed to from_pretrained (default: transformers' choice, recorded in the JSON)")
    ap.add_argument("--out", required=True, help="JSON file for the results")
    ap.add_argument("--save", default=None, help="optional: save the compressed model here")
    ap.add_argument("--save-compressed", action="store_true",
                    help="with --save: llm-compressor's compressed-tensors format (default: dense weights)")
    return ap.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None

# Threads and offline mode must be set before torch / transformers are imported.
if ARGS is not None and ARGS.threads:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the process-wide high-water mark so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("llmcompressor", "compressed-tensors", "transformers", "torch", "accelerate", "datasets",
                "tokenizers", "safetensors", "numpy", "auto-round", "huggingface_hub", "pydantic"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def load_calibration(path: str, num_samples: int | None) -> torch.Tensor:
    p = Path(path)
    if p.suffix == ".json":
        data = json.loads(p.read_text())
    else:
        data = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(data, dict):
        key = next((k for k in ("input_ids", "samples") if k in data), None)
        if key is None:
            raise SystemExit(f"calibration dict needs an 'input_ids' or 'samples' key, has {sorted(data)}")
        data = data[key]
    if not isinstance(data, torch.Tensor):
        lengths = {len(row) for row in data}
        if len(lengths) != 1:
            raise SystemExit(f"calibration rows must all have the same length, got lengths {sorted(lengths)}")
        data = torch.tensor(data, dtype=torch.long)
    data = data.to(torch.long)
    if data.dim() != 2:
        raise SystemExit(f"calibration ids must have shape [n_samples, seq_len], got {tuple(data.shape)}")
    if num_samples is not None:
        data = data[:num_samples]
    return data.contiguous()


def samples_sha256(samples: torch.Tensor) -> str:
    """`sha256:<hex>` of the ids as compact JSON (`[[1,2],[3,4]]`): the same fingerprint unicomp's
    calibration record carries (unicomp.data.calibration.samples_sha256), so the two runs can be
    checked to have used identical tokens. Re-implemented here: this script must not import unicomp."""
    payload = json.dumps(samples.tolist(), separators=(",", ":"))
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def decoder_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    layer_types = set(getattr(model, "_no_split_modules", None) or [])
    out = {}
    for name, module in model.named_modules():
        if type(module).__name__ in layer_types:
            for sub, lin in module.named_modules():
                if isinstance(lin, torch.nn.Linear):
                    out[f"{name}.{sub}"] = lin
    return out


def sparsity_report(model: torch.nn.Module, pattern: str) -> dict:
    per_layer = {}
    zeros_total = numel_total = 0
    groups_ok = groups_total = 0
    for name, lin in decoder_linears(model).items():
        w = lin.weight.detach()
        z = int((w == 0).sum())
        n = w.numel()
        zeros_total += z
        numel_total += n
        entry = {"shape": list(w.shape), "zeros": z, "numel": n, "sparsity": z / n}
        if pattern == "2:4" and w.shape[1] % 4 == 0:
            g = (w.reshape(w.shape[0], -1, 4) == 0).sum(-1)
            ok = int((g >= 2).sum())
            entry["frac_groups_of_4_with_ge2_zeros"] = ok / g.numel()
            groups_ok += ok
            groups_total += g.numel()
        per_layer[name] = entry
    out = {"overall": zeros_total / max(numel_total, 1), "zeros": zeros_total, "numel": numel_total,
           "per_layer": per_layer}
    if groups_total:
        out["frac_groups_of_4_with_ge2_zeros"] = groups_ok / groups_total
    # whole model, embeddings / lm_head included, for context
    allz = alln = 0
    for p in model.parameters():
        allz += int((p.detach() == 0).sum())
        alln += p.numel()
    out["all_parameters_sparsity"] = allz / alln
    return out


def quant_report(model: torch.nn.Module, bits: int, group_size: int) -> dict:
    """Check that GPTQ left every quantized Linear on its symmetric integer grid."""
    per_layer = {}
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    worst = 0.0
    for name, lin in decoder_linears(model).items():
        scale = getattr(lin, "weight_scale", None)
        if scale is None:
            per_layer[name] = {"quantized": False}
            continue
        w = lin.weight.detach().float()
        s = scale.detach().float()
        if s.dim() == 2 and s.shape[1] * group_size == w.shape[1]:
            s_full = s.repeat_interleave(group_size, dim=1)
        else:
            s_full = s.expand_as(w) if s.numel() == 1 else s.repeat_interleave(
                math.ceil(w.shape[1] / s.shape[1]), dim=1)[:, : w.shape[1]]
        q = w / s_full
        err = float((q - q.round()).abs().max())
        worst = max(worst, err)
        per_layer[name] = {"quantized": True, "scale_shape": list(s.shape),
                           "max_abs_offgrid": err, "q_min": float(q.round().min()), "q_max": float(q.round().max()),
                           "in_range": bool(q.round().min() >= qmin and q.round().max() <= qmax)}
    return {"max_abs_offgrid": worst, "per_layer": per_layer,
            "quantized_layers": sum(1 for v in per_layer.values() if v["quantized"]),
            "decoder_linear_layers": len(per_layer)}


@torch.no_grad()
def wikitext_ppl(model, tokenizer, path: str, seq_len: int, max_windows: int | None) -> dict:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    text = "\n\n".join(r["text"] for r in rows)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids[0]
    n_windows = ids.numel() // seq_len
    if max_windows is not None:
        n_windows = min(n_windows, max_windows)
    model.eval()
    nlls = []
    start = time.perf_counter()
    for i in range(n_windows):
        x = ids[i * seq_len:(i + 1) * seq_len].unsqueeze(0)
        logits = model(input_ids=x, use_cache=False).logits[0].float()
        nll = torch.nn.functional.cross_entropy(logits[:-1], x[0, 1:], reduction="mean")
        nlls.append(float(nll))
    secs = time.perf_counter() - start
    mean_nll = math.fsum(nlls) / len(nlls) if nlls else float("nan")
    return {"ppl": math.exp(mean_nll), "mean_nll": mean_nll, "windows": n_windows, "seq_len": seq_len,
            "total_tokens": int(ids.numel()), "rows": len(rows), "window_nlls": nlls, "seconds": secs,
            "file": str(path)}


def build_modifier(args, model):
    decoder_layer_types = list(getattr(model, "_no_split_modules", None) or [])
    if args.method in ("wanda", "sparsegpt"):
        mask_structure = "0:0" if args.pattern == "unstructured" else "2:4"
        common = dict(sparsity=args.sparsity, mask_structure=mask_structure,
                      targets=decoder_layer_types, ignore=["re:.*lm_head"])
        if args.method == "wanda":
            from llmcompressor.modifiers.pruning import WandaPruningModifier

            kw = common
            return WandaPruningModifier(**kw), kw
        from llmcompressor.modifiers.pruning import SparseGPTModifier

        kw = dict(common, block_size=args.block_size, dampening_frac=args.dampening)
        return SparseGPTModifier(**kw), kw

    from llmcompressor.modifiers.gptq import GPTQModifier

    ignore = ["lm_head"]
    indivisible = [n for n, lin in decoder_linears(model).items()
                   if lin.in_features >= args.group_size and lin.in_features % args.group_size]
    if indivisible:
        if args.indivisible == "error":
            raise SystemExit(
                f"{len(indivisible)} Linear layers have in_features not divisible by group_size "
                f"{args.group_size} (e.g. {indivisible[0]}: in_features="
                f"{decoder_linears(model)[indivisible[0]].in_features}); llm-compressor cannot group-quantize "
                "them. Use a --group-size that divides them, or --indivisible ignore.")
        ignore += indivisible
    weights = dict(num_bits=args.bits, type="int", symmetric=True, strategy="group",
                   group_size=args.group_size, dynamic=False)
    kw = dict(targets=["Linear"], ignore=ignore, block_size=args.block_size, dampening_frac=args.dampening,
              actorder=None if args.actorder == "none" else args.actorder,
              config_groups={"group_0": {"targets": ["Linear"], "weights": weights,
                                         "input_activations": None, "output_activations": None}})
    return GPTQModifier(**kw), kw


def main(args: argparse.Namespace) -> dict:
    import datasets
    from loguru import logger
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import llmcompressor
    from llmcompressor import oneshot

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    pipeline_log: list[str] = []

    def _sink(message):
        text = message.record["message"]
        if "Inferred `" in text or "Calibration pipeline is set" in text:
            pipeline_log.append(text)

    logger.add(_sink, level="DEBUG")

    t0 = time.perf_counter()
    load_kw = dict(dtype=torch.float32)
    if args.attn_implementation:
        load_kw["attn_implementation"] = args.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(args.model, **load_kw)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    load_seconds = time.perf_counter() - t0
    rss_after_load = peak_rss_mb()

    calib = load_calibration(args.calibration, args.num_samples)
    n_samples, seq_len = calib.shape
    vocab = model.get_input_embeddings().weight.shape[0]
    if int(calib.max()) >= vocab or int(calib.min()) < 0:
        raise SystemExit(f"calibration ids out of range for vocab size {vocab}")
    dataset = datasets.Dataset.from_dict({
        "input_ids": calib.tolist(),
        "attention_mask": torch.ones_like(calib).tolist(),
    })

    result: dict = {
        "tool": "llmcompressor.oneshot",
        "args": vars(args),
        "versions": versions(),
        "threads": {"torch_num_threads": torch.get_num_threads(),
                    "torch_num_interop_threads": torch.get_num_interop_threads(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "cpu_count": os.cpu_count()},
        "model": {"dir": str(args.model), "class": type(model).__name__,
                  "dtype": str(next(model.parameters()).dtype),
                  "attn_implementation": getattr(model.config, "_attn_implementation", None),
                  "decoder_layer_types": list(getattr(model, "_no_split_modules", None) or []),
                  "num_parameters": sum(p.numel() for p in model.parameters()),
                  "tie_word_embeddings": bool(getattr(model.config, "tie_word_embeddings", False))},
        "calibration": {"file": str(args.calibration), "n_samples": int(n_samples), "seq_len": int(seq_len),
                        "total_tokens": int(calib.numel()), "sha256": samples_sha256(calib)},
        "load_seconds": load_seconds,
    }

    if args.baseline_ppl and not args.skip_ppl:
        result["baseline_wikitext2"] = wikitext_ppl(model, tokenizer, args.wikitext, args.ppl_seq_len,
                                                    args.ppl_windows)

    modifier, modifier_kwargs = build_modifier(args, model)
    result["modifier"] = {"class": type(modifier).__name__, "kwargs": modifier_kwargs}

    rss_before = current_rss_mb()
    peak_before = peak_rss_mb()
    start = time.perf_counter()
    model = oneshot(
        model=model,
        processor=tokenizer,
        dataset=dataset,
        recipe=[modifier],
        num_calibration_samples=int(n_samples),
        max_seq_length=int(seq_len),
        batch_size=args.batch_size,
        shuffle_calibration_samples=False,
        pipeline=args.pipeline,
    )
    oneshot_seconds = time.perf_counter() - start
    result["oneshot_seconds"] = oneshot_seconds
    result["memory"] = {"peak_rss_mb_after_load": rss_after_load, "rss_mb_before_oneshot": rss_before,
                        "peak_rss_mb_before_oneshot": peak_before,
                        "peak_rss_mb_after_oneshot": peak_rss_mb()}
    result["pipeline"] = {"requested": args.pipeline, "log": pipeline_log,
                          "ran": [line.split("`")[1] for line in pipeline_log if "Inferred `" in line]}

    if args.method in ("wanda", "sparsegpt"):
        result["sparsity"] = sparsity_report(model, args.pattern)
    else:
        result["quantization"] = quant_report(model, args.bits, args.group_size)
        result["sparsity"] = {"overall": sparsity_report(model, "unstructured")["overall"]}

    if not args.skip_ppl:
        result["wikitext2"] = wikitext_ppl(model, tokenizer, args.wikitext, args.ppl_seq_len, args.ppl_windows)
    result["memory"]["peak_rss_mb_end"] = peak_rss_mb()

    if args.save:
        model.save_pretrained(args.save, save_compressed=args.save_compressed)
        tokenizer.save_pretrained(args.save)
        result["saved_to"] = str(args.save)

    result["llmcompressor_file"] = llmcompressor.__file__
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    res = main(ARGS)
    summary = {k: res.get(k) for k in ("oneshot_seconds",)}
    summary["pipeline"] = res["pipeline"]["ran"]
    summary["peak_rss_mb_after_oneshot"] = res["memory"]["peak_rss_mb_after_oneshot"]
    if "wikitext2" in res:
        summary["ppl"] = res["wikitext2"]["ppl"]
    if "baseline_wikitext2" in res:
        summary["baseline_ppl"] = res["baseline_wikitext2"]["ppl"]
    summary["sparsity"] = res["sparsity"]["overall"]
    if "quantization" in res:
        summary["max_abs_offgrid"] = res["quantization"]["max_abs_offgrid"]
        summary["quantized_layers"] = res["quantization"]["quantized_layers"]
    print(json.dumps(summary, indent=2), file=sys.stderr)
