"""Modeled GPU hours of a plan on a device profile, before anything runs (`unicomp plan`).

Each unit's work is counted from the model's config and the plan's data, then divided by what
the device can do at an assumed fraction of its datasheet peak:

- evaluate: every prompt is a prefill (multiple choice: one per choice, as lm-eval scores them;
  few-shot prompts count their shots); a generation task also decodes its whole answer budget
  per item (an upper bound: answers that stop early cost less), at the roofline decode speed of
  a batch of `generation_batch` concurrent sequences (vLLM-style continuous batching);
- compress: calibration forwards through every layer twice (statistics, then the outputs the
  next layer sees), in the statistics dtype (fp32); Hessian methods add the X^T X accumulation
  and one d^3 solve per input; AWQ adds its grid search over `search_tokens`; distillation counts
  6 FLOPs per parameter per trained token for the student and 2 for the teacher's forward (the
  student at the teacher's size: an upper bound), at the bf16 peak unless autocast is off;
- distance: both models over the WikiText windows; profile units take seconds and are not counted;
  judges run on their own endpoint and are listed apart.

Tokens are characters / `chars_per_token` (no tokenizer is loaded). A task whose data is not on
this machine is sized from its documented row count at `unknown_prompt_tokens` per item. Like
every roofline number here the result is "modeled": a planning figure, not a measurement.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from unicomp.efficiency.flops import Shape, forward_macs
from unicomp.efficiency.profiles import DeviceProfile
from unicomp.efficiency.roofline import Format, project


DEFAULT_DEVICES = ("a100-sxm", "h100-sxm", "l4")


@dataclass(frozen=True)
class Assumptions:
    compute_utilisation: float = 0.4      # of the datasheet peak, for prefill and calibration matmuls
    bandwidth_utilisation: float = 0.7   # of the datasheet bandwidth, for decode steps
    generation_batch: int = 64           # concurrent sequences while decoding
    chars_per_token: float = 4.0
    unknown_prompt_tokens: int = 256     # per item of a dataset that is not on this machine
    eval_dtype: str = "bf16"
    statistics_dtype: str = "fp32"
    sample_docs: int = 200               # documents read to measure a task's prompt lengths


@dataclass
class Work:
    """What one unit costs: FLOPs at the compute peak, decode tokens at the roofline decode speed."""

    prefill_flops: float = 0.0
    statistics_flops: float = 0.0
    decode_tokens: float = 0.0
    decode_context: int = 0
    note: str = ""


def _tokens(text: Any, a: Assumptions) -> float:
    return len(text) / a.chars_per_token if isinstance(text, str) else 0.0


def evaluate_work(unit: Any, config: Any, a: Assumptions) -> Work:
    spec = unit.spec
    docs = unit.docs
    from unicomp.evaluate.runner import effective_fewshot

    shots = effective_fewshot(spec, unit.num_fewshot)
    note = ""
    if docs is None:
        ds = spec.dataset
        where = f"{ds.id} {ds.config or ''} {ds.split}".replace("  ", " ")
        rows = ds.documented_rows
        if rows is None:
            return Work(note=f"{where}: not on this machine and of no documented size; {spec.name} not counted")
        n = min(rows, unit.limit) if unit.limit else rows
        prompt, choices = float(a.unknown_prompt_tokens), 4.0
        note = (f"{where}: not on this machine; sized from its documented rows at "
                f"{a.unknown_prompt_tokens} prompt tokens per item")
    else:
        n = len(docs)
        sample = docs[: a.sample_docs] or [{}]
        prompt = sum(_tokens(spec.doc_to_text(d), a) for d in sample) / len(sample)
        choices = 1.0
        if spec.output_type == "multiple_choice" and spec.doc_to_choice is not None:
            options = [spec.doc_to_choice(d) for d in sample]
            choices = sum(len(o) for o in options) / len(sample)
            prompt += sum(_tokens(c, a) for o in options for c in o) / max(1.0, sum(len(o) for o in options))
    prompt = max(prompt, 1.0) * (1 + shots)
    per_token = 2 * Shape.of(config).linear_macs_per_token
    if spec.output_type == "generate_until":
        return Work(prefill_flops=n * prompt * per_token, decode_tokens=n * spec.max_gen_toks,
                    decode_context=int(prompt + spec.max_gen_toks / 2), note=note)
    return Work(prefill_flops=n * choices * prompt * per_token, note=note)


def compress_work(unit: Any, config: Any, a: Assumptions) -> Work:
    from unicomp.compress.registry import make_method

    method = make_method(unit.method, unit.options)
    shape = Shape.of(config)
    options = method.config
    train = [getattr(options, stage, None) for stage in ("teacher_correction", "train")]
    sft = getattr(options, "sft", None)
    if getattr(method, "builds_student", False):
        seq_len = options.data.seq_len
        tokens = sum(t.steps * t.micro_batch_size * t.grad_accum * seq_len for t in train if t is not None)
        if sft is not None:
            tokens += sft.train.steps * sft.train.micro_batch_size * sft.train.grad_accum * seq_len
        flops = tokens * 2 * shape.linear_macs_per_token * 4  # student fwd+bwd (3x) + teacher fwd (1x)
        mixed = all(t is None or t.autocast != "off" for t in [*train, sft.train if sft else None])
        return Work(**{"prefill_flops" if mixed else "statistics_flops": flops}, note=f"{unit.variant}: {tokens:,.0f} training tokens, student counted "
                                                 "at the teacher's size")
    if not method.needs_calibration:
        return Work()
    cal = unit.calibration
    tokens = cal.n_samples * cal.seq_len
    flops = 2 * 2 * shape.linear_macs_per_token * tokens  # two passes through every layer
    if unit.method in ("gptq", "sparsegpt") or (unit.method == "smoothquant" and options.weights == "gptq"):
        inputs = (shape.hidden, shape.hidden, shape.heads * shape.head_dim, shape.intermediate)  # qkv, gate/up, o, down
        flops += shape.layers * sum(2 * tokens * d * d + 2 * d ** 3 for d in inputs)
    if unit.method == "awq":
        search = min(tokens, options.search_tokens or tokens)
        flops += 2 * shape.linear_macs_per_token * search * options.grid * 2  # scale and clip grids
    return Work(statistics_flops=flops)


def distance_work(unit: Any, config: Any, a: Assumptions) -> Work:
    tokens = unit.windows * unit.seq_len
    return Work(prefill_flops=2 * forward_macs(config, unit.seq_len)["total"] * 2 * tokens / unit.seq_len)


def unit_hours(work: Work, config: Any, profile: DeviceProfile, a: Assumptions) -> float:
    seconds = 0.0
    peak = profile.peak_tflops.get(a.eval_dtype) or profile.peak_tflops["fp32"]
    seconds += work.prefill_flops / (peak * 1e12 * a.compute_utilisation)
    stats_peak = profile.peak_tflops.get(a.statistics_dtype) or profile.peak_tflops["fp32"]
    seconds += work.statistics_flops / (stats_peak * 1e12 * a.compute_utilisation)
    if work.decode_tokens:
        speed = project(config, Format("dense", a.eval_dtype), profile, batch=a.generation_batch,
                        prompt=max(work.decode_context, 1), new_tokens=2)["decode_tokens_per_s"]
        seconds += work.decode_tokens / (speed * a.bandwidth_utilisation)
    return seconds / 3600


def estimate_plan(plan: Any, config: Any, profiles: list[DeviceProfile],
                  assumptions: Assumptions | None = None) -> dict[str, Any]:
    """Hours per device and unit kind, with the notes that qualify them."""
    a = assumptions or Assumptions()
    works: list[tuple[str, Work]] = []
    notes: list[str] = []
    skipped: dict[str, int] = defaultdict(int)
    for unit in plan.units:
        if unit.kind == "evaluate":
            work = evaluate_work(unit, config, a)
        elif unit.kind == "compress":
            work = compress_work(unit, config, a)
        elif unit.kind == "distance":
            work = distance_work(unit, config, a)
        else:
            skipped[unit.kind] += 1
            continue
        if work.note and work.note not in notes:
            notes.append(work.note)
        works.append((unit.kind, work))
    devices = {}
    for profile in profiles:
        by_kind: dict[str, float] = defaultdict(float)
        for kind, work in works:
            by_kind[kind] += unit_hours(work, config, profile, a)
        devices[profile.name] = {"title": profile.title, "hours": dict(by_kind), "total": sum(by_kind.values())}
    return {"label": "modeled", "devices": devices, "units_counted": len(works), "not_counted": dict(skipped),
            "notes": notes, "assumptions": asdict(a)}
