"""Reference numbers from llm-compressor's `oneshot` (Wanda / SparseGPT / GPTQ / SmoothQuant W8A8) on CPU.

Runs ONE llm-compressor recipe on a local transformers model with calibration token ids
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

Examples (calibration FILE = .pt or .json of token ids, shape [n_samples, seq_len]; the
WikiText-2 file is --wikitext, default $UNICOMP_DATA_DIR/Salesforce/wikitext/wikitext-2-raw-v1/test.jsonl):

    V=<venv>/bin   M=<local model folder, e.g. unicomp's converted cache folder>
    $V/python bench/llmcompressor_reference.py --model $M --method wanda \\
        --sparsity 0.5 --pattern unstructured --calibration calib.pt --threads 2 --out wanda.json
    $V/python bench/llmcompressor_reference.py --model $M --method sparsegpt --pattern 2:4 \\
        --calibration calib.pt --threads 2 --out sgpt24.json
    $V/python bench/llmcompressor_reference.py --model $M --method gptq --bits 4 --group-size 64 \\
        --calibration calib.pt --threads 2 --out gptq.json
    $V/python bench/llmcompressor_reference.py --model $M --method smoothquant-w8a8 --smoothing-strength 0.8 \\
        --calibration calib.pt --threads 2 --repeats 3 --out sq.json
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
  * SmoothQuant W8A8 (`smoothquant-w8a8`, llm-compressor's W8A8 example recipe):
        [SmoothQuantModifier(smoothing_strength=0.8),
         GPTQModifier(targets=["Linear"], scheme="W8A8", ignore=["lm_head"])]
    (`from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier`; the old
    `llmcompressor.modifiers.smoothquant` path is a deprecated shim.) Without `mappings` the
    modifier looks the architecture up: LlamaForCausalLM -> DEFAULT_SMOOTHQUANT_MAPPINGS =
    [q/k/v <- input_layernorm], [gate/up <- post_attention_layernorm] (o_proj, down_proj are
    quantized unsmoothed); the resolved pairs are recorded in the JSON. Its scales are
    s_j = R_j^a / (2 max_i |W_ij|)^(1-a) with R_j = max_j - min_j the channel's dynamic range
    over the calibration tokens (not 2 max|X_j|: equal only for symmetric channels; a constant
    factor is harmless, quantization being scale-invariant). Preset "W8A8" = weights int8
    symmetric per-CHANNEL static (minmax observer on the smoothed weight, scale = absmax/127.5,
    codes clamped to [-128, 127]), input activations int8 symmetric per-TOKEN dynamic (same
    scale rule, computed at run time); GPTQ's actorder defaults to "static" (= "weight"),
    block_size 128, dampening_frac 0.01 (--actorder / --block-size / --dampening override).
    With oneshot's default pipeline "independent" each modifier gets its OWN sequential pass:
    SmoothQuant calibrates and smooths layer by layer over the whole model first, then GPTQ
    collects Hessians of the (smoothed) inputs with the already-quantized earlier layers in
    front. After oneshot every quantized Linear carries a `quantization_scheme` and its forward
    is compressed-tensors' wrapper, which fake-quantizes the input per token (dynamic) before the
    matmul; the weights themselves were written back on their int8 grid by GPTQ. The script
    checks both (`w8a8_check` in the JSON): one Linear's output against x -> per-token QDQ ->
    matmul re-computed by hand, and the model's logits with the wrapper enabled vs disabled.
    --weight-only-ppl additionally scores the model with activation quantization disabled.

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
calibration and the compression). With --repeats N the model is reloaded and oneshot re-run N
times: `oneshot_seconds` is then the median, `oneshot_seconds_runs` / `oneshot_seconds_stats`
hold every run and min/median/max, `weights_sha256_runs` tells whether the runs gave identical
models, and every other number is that of the last run's model. `oneshot_cpu_seconds_*` is the
process CPU time (user + system, all threads) of the same calls and `loadavg_1min_runs` the
1-minute load average before and after each: wall time is only comparable across tools when
nothing else ran on the cores (load near --threads). Memory is ru_maxrss, the process high-water mark, read
after loading, before oneshot, after oneshot and at the end; with --baseline-ppl the dense
perplexity pass runs before oneshot and may set the high-water mark itself, so compare
`peak_rss_mb_before_oneshot` with `peak_rss_mb_after_oneshot`. `calibration.sha256` is the
same fingerprint as unicomp's calibration record (compact JSON of the id lists).
"""

from __future__ import annotations

from _machine import cpu_model, spread  # shared with the other bench scripts (standalone: no unicomp)
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


METHODS = ("wanda", "sparsegpt", "gptq", "smoothquant-w8a8")
WIKITEXT_IN_MIRROR = "Salesforce/wikitext/wikitext-2-raw-v1/test.jsonl"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="local transformers model directory (safetensors)")
    ap.add_argument("--method", required=True, choices=list(METHODS))
    ap.add_argument("--sparsity", type=float, default=0.5, help="pruning: target sparsity (unstructured)")
    ap.add_argument("--pattern", default="unstructured", choices=["unstructured", "2:4"],
                    help='pruning: mask_structure "0:0" (unstructured) or "2:4"')
    ap.add_argument("--bits", type=int, default=4, help="gptq: weight bits (activations stay 16/32 bit)")
    ap.add_argument("--group-size", type=int, default=128, help="gptq: quantization group size")
    ap.add_argument("--actorder", default="weight", choices=["weight", "none"],
                    help='gptq, smoothquant-w8a8: llm-compressor activation ordering ("weight" = its default '
                         '"static")')
    ap.add_argument("--smoothing-strength", type=float, default=0.8,
                    help="smoothquant-w8a8: SmoothQuantModifier smoothing_strength (alpha)")
    ap.add_argument("--weight-only-ppl", action="store_true",
                    help="smoothquant-w8a8: also score the model with activation quantization disabled "
                         "(the int8 weights alone; a diagnostic)")
    ap.add_argument("--indivisible", default="error", choices=["error", "ignore"],
                    help="gptq: Linear layers whose in_features is not a multiple of --group-size: "
                         "stop with an error, or add them to the modifier's ignore list (left unquantized)")
    ap.add_argument("--block-size", type=int, default=128, help="sparsegpt/gptq/smoothquant-w8a8: columns per block")
    ap.add_argument("--dampening", type=float, default=0.01, help="sparsegpt/gptq/smoothquant-w8a8: dampening_frac")
    ap.add_argument("--calibration", required=True,
                    help=".pt (LongTensor [n, L], list of lists, or a dict with 'input_ids' or 'samples') "
                         "or .json (list of lists, or a dict with 'input_ids' or 'samples') of token ids")
    ap.add_argument("--num-samples", type=int, default=None, help="use only the first N calibration rows")
    ap.add_argument("--batch-size", type=int, default=1, help="oneshot calibration batch_size (default 1)")
    ap.add_argument("--pipeline", default="independent",
                    help='oneshot pipeline argument (default "independent", oneshot\'s default, '
                         "which infers sequential for these modifiers)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (and OMP/MKL env)")
    ap.add_argument("--wikitext", default=None,
                    help="wikitext-2-raw-v1 test split as JSON lines with a 'text' field (default: "
                         f"$UNICOMP_DATA_DIR/{WIKITEXT_IN_MIRROR})")
    ap.add_argument("--repeats", type=int, default=1,
                    help="run oneshot this many times on freshly loaded models and report min/median/max "
                         "of its time (perplexity: the last run's model)")
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
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    if args.wikitext is None and not args.skip_ppl:
        mirror = os.environ.get("UNICOMP_DATA_DIR")
        if not mirror:
            ap.error("give --wikitext FILE or set UNICOMP_DATA_DIR to the data mirror")
        args.wikitext = str(Path(mirror).expanduser() / WIKITEXT_IN_MIRROR)
    return args


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






def weights_sha256(model: torch.nn.Module) -> str:
    """Fingerprint of every parameter and buffer (names, shapes, bytes): do repeated runs give one model?"""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return "sha256:" + h.hexdigest()


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


def quant_report(model: torch.nn.Module, bits: int, group_size: int | None) -> dict:
    """Check that GPTQ left every quantized Linear on its symmetric integer grid
    (group_size None: one scale per output channel)."""
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
        if s.dim() == 2 and s.shape[1] == 1:  # per channel
            s_full = s.expand_as(w)
        elif s.dim() == 2 and group_size and s.shape[1] * group_size == w.shape[1]:
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


def _enum(value) -> str:
    """An enum member or (pydantic use_enum_values) its plain value, as a string."""
    return str(getattr(value, "value", value))


@torch.no_grad()
def w8a8_check(model, sample: torch.Tensor) -> dict:
    """Does the model after oneshot really compute W8A8? Three checks on the decoder Linears:

    1. schemes: every one carries a quantization_scheme with int8 per-channel static weights and
       int8 per-token dynamic input activations (and is not disabled);
    2. one Linear (the first): its output in a real forward equals F.linear(QDQ(x), W, b), with
       QDQ the symmetric per-token int8 round trip written out here (scale = absmax / 127.5, codes
       clamped to [-128, 127], compressed-tensors' rule), and differs from F.linear(x, W, b);
    3. the model's logits with the forward wrappers enabled vs disabled (llm-compressor's
       DisableQuantization; the weights stay on their grid, so only activation rounding differs).
    """
    import torch.nn.functional as F
    from llmcompressor.utils.helpers import DisableQuantization

    linears = decoder_linears(model)
    summary = {"decoder_linears": len(linears), "w8_channel": 0, "a8_token_dynamic": 0, "disabled": 0}
    for lin in linears.values():
        sch = getattr(lin, "quantization_scheme", None)
        w, a = getattr(sch, "weights", None), getattr(sch, "input_activations", None)
        if w is not None and w.num_bits == 8 and _enum(w.strategy) == "channel" and w.symmetric and not w.dynamic:
            summary["w8_channel"] += 1
        if a is not None and a.num_bits == 8 and _enum(a.strategy) == "token" and a.symmetric and a.dynamic:
            summary["a8_token_dynamic"] += 1
        if getattr(lin, "quantization_enabled", True) is False:
            summary["disabled"] += 1
    first_name, first = next(iter(linears.items()))
    captured: dict = {}
    hook = first.register_forward_hook(lambda mod, args, out: captured.update(x=args[0].detach().clone(),
                                                                              y=out.detach().clone()))
    model.eval()
    try:
        logits_q = model(input_ids=sample, use_cache=False).logits.float()
    finally:
        hook.remove()
    with DisableQuantization(model):
        logits_off = model(input_ids=sample, use_cache=False).logits.float()
    x, y = captured["x"].float(), captured["y"].float()
    weight = first.weight.detach().float()
    bias = None if first.bias is None else first.bias.detach().float()
    scale = (x.abs().amax(dim=-1, keepdim=True) / 127.5).clamp(min=torch.finfo(torch.float32).eps)
    x_qdq = (x / scale).round().clamp(-128, 127) * scale
    y_qdq, y_float = F.linear(x_qdq, weight, bias), F.linear(x, weight, bias)
    err_qdq = float((y - y_qdq).abs().max())
    err_float = float((y - y_float).abs().max())
    logit_diff = float((logits_q - logits_off).abs().max())
    summary.update({
        "probe_linear": first_name, "probe_tokens": int(sample.numel()),
        "probe_max_abs_err_vs_per_token_qdq": err_qdq, "probe_max_abs_err_vs_float_input": err_float,
        "probe_output_scale": float(y.abs().max()),
        "logits_max_abs_diff_quant_on_vs_off": logit_diff,
        "activation_quantization_applied": bool(err_float > 0 and err_qdq < 0.01 * err_float and logit_diff > 0),
    })
    return summary


def build_recipe(args, model) -> tuple[list, list[dict]]:
    """The modifiers of `args.method`, and their class names and arguments for the record."""
    if args.method == "smoothquant-w8a8":
        from llmcompressor.modifiers.gptq import GPTQModifier
        from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier

        sq_kw = dict(smoothing_strength=args.smoothing_strength)
        gptq_kw = dict(targets=["Linear"], scheme="W8A8", ignore=["lm_head"], block_size=args.block_size,
                       dampening_frac=args.dampening)
        if args.actorder == "none":  # otherwise llm-compressor's own default, "static" (= "weight")
            gptq_kw["actorder"] = None
        modifiers = [SmoothQuantModifier(**sq_kw), GPTQModifier(**gptq_kw)]
        return modifiers, [{"class": type(m).__name__, "kwargs": kw} for m, kw in zip(modifiers, (sq_kw, gptq_kw))]
    modifier, kw = build_modifier(args, model)
    return [modifier], [{"class": type(modifier).__name__, "kwargs": kw}]


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
    smoothing_log: list[str] = []
    quantizing_log: list[str] = []

    def _sink(message):
        text = message.record["message"]
        if "Inferred `" in text or "Calibration pipeline is set" in text:
            pipeline_log.append(text)
        elif text.startswith("Smoothing with "):
            smoothing_log.append(text.removeprefix("Smoothing with ").strip())
        elif text.startswith("Quantizing ") and "module(s)" in text:
            quantizing_log.append(text)

    logger.add(_sink, level="DEBUG")

    load_kw = dict(dtype=torch.float32)
    if args.attn_implementation:
        load_kw["attn_implementation"] = args.attn_implementation

    def load():
        m = AutoModelForCausalLM.from_pretrained(args.model, **load_kw)
        m.eval()
        return m

    t0 = time.perf_counter()
    model = load()
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
        "cpu": {"model_name": cpu_model(), "machine": platform.machine(), "cpu_count": os.cpu_count()},
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

    seconds_runs: list[float] = []
    cpu_seconds_runs: list[float] = []
    loadavg_runs: list[dict] = []
    sha_runs: list[str] = []
    for run in range(args.repeats):
        if run:  # oneshot changes the model in place: every repeat starts from a freshly loaded one
            del model
            model = load()
        pipeline_log.clear()
        smoothing_log.clear()
        quantizing_log.clear()
        modifiers, recipe_record = build_recipe(args, model)
        if run == 0:
            result["recipe"] = recipe_record
            if len(recipe_record) == 1:
                result["modifier"] = recipe_record[0]
            rss_before = current_rss_mb()
            peak_before = peak_rss_mb()
        load_before = os.getloadavg()[0]
        cpu_start = time.process_time()
        start = time.perf_counter()
        model = oneshot(
            model=model,
            processor=tokenizer,
            dataset=dataset,
            recipe=modifiers,
            num_calibration_samples=int(n_samples),
            max_seq_length=int(seq_len),
            batch_size=args.batch_size,
            shuffle_calibration_samples=False,
            pipeline=args.pipeline,
        )
        seconds_runs.append(time.perf_counter() - start)
        cpu_seconds_runs.append(time.process_time() - cpu_start)
        loadavg_runs.append({"before": load_before, "after": os.getloadavg()[0]})
        if run == 0:
            peak_after_first = peak_rss_mb()
        if args.repeats > 1:
            sha_runs.append(weights_sha256(model))
        print(f"oneshot run {run + 1}/{args.repeats}: {seconds_runs[-1]:.2f} s", file=sys.stderr, flush=True)
    stats = spread(seconds_runs)
    result["oneshot_seconds"] = stats["median"]
    result["oneshot_seconds_runs"] = seconds_runs
    result["oneshot_seconds_stats"] = stats
    # CPU time of this process (all threads): far less sensitive than wall time to other processes
    # sharing the cores; the 1-minute load average around each run shows whether any did
    result["oneshot_cpu_seconds_runs"] = cpu_seconds_runs
    result["oneshot_cpu_seconds_stats"] = spread(cpu_seconds_runs)
    result["loadavg_1min_runs"] = loadavg_runs
    if sha_runs:
        result["weights_sha256_runs"] = sha_runs
        result["runs_identical"] = len(set(sha_runs)) == 1
    result["memory"] = {"peak_rss_mb_after_load": rss_after_load, "rss_mb_before_oneshot": rss_before,
                        "peak_rss_mb_before_oneshot": peak_before,
                        "peak_rss_mb_after_oneshot": peak_after_first,
                        "peak_rss_mb_after_all_runs": peak_rss_mb()}
    result["pipeline"] = {"requested": args.pipeline, "log": list(pipeline_log),
                          "ran": [line.split("`")[1] for line in pipeline_log if "Inferred `" in line]}

    if args.method in ("wanda", "sparsegpt"):
        result["sparsity"] = sparsity_report(model, args.pattern)
    elif args.method == "gptq":
        result["quantization"] = quant_report(model, args.bits, args.group_size)
        result["sparsity"] = {"overall": sparsity_report(model, "unstructured")["overall"]}
    else:  # smoothquant-w8a8
        from llmcompressor.modifiers.transform.smoothquant.dynamic_mappings import get_layer_mappings_from_model

        result["smoothing"] = {
            "mappings": [{"balance_layers": list(m[0]), "smooth_layers": m[1]}
                         for m in get_layer_mappings_from_model(model)],
            "smoothed_layers": list(smoothing_log),
            "n_smoothed": len(smoothing_log),
        }
        result["gptq_log"] = {"batches": len(quantizing_log),
                              "modules": sum(int(line.split()[1]) for line in quantizing_log
                                             if line.split()[1].isdigit())}
        result["quantization"] = quant_report(model, 8, None)
        result["sparsity"] = {"overall": sparsity_report(model, "unstructured")["overall"]}
        probe = torch.tensor(calib[0, : min(256, seq_len)].tolist()).unsqueeze(0)
        result["w8a8_check"] = w8a8_check(model, probe)

    if not args.skip_ppl:
        result["wikitext2"] = wikitext_ppl(model, tokenizer, args.wikitext, args.ppl_seq_len, args.ppl_windows)
        if args.method == "smoothquant-w8a8" and args.weight_only_ppl:
            from llmcompressor.utils.helpers import DisableQuantization

            with DisableQuantization(model):
                result["wikitext2_weights_only"] = wikitext_ppl(model, tokenizer, args.wikitext, args.ppl_seq_len,
                                                                args.ppl_windows)
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
    summary = {k: res.get(k) for k in ("oneshot_seconds", "oneshot_seconds_stats")}
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
    if "w8a8_check" in res:
        summary["activation_quantization_applied"] = res["w8a8_check"]["activation_quantization_applied"]
        summary["n_smoothed"] = res["smoothing"]["n_smoothed"]
    if "wikitext2_weights_only" in res:
        summary["ppl_weights_only"] = res["wikitext2_weights_only"]["ppl"]
    print(json.dumps(summary, indent=2), file=sys.stderr)
