"""Run one task on one model: documents -> requests -> model answers -> per-item records -> scores.

The per-item records are the point: paired statistics between a base model and its compressed
variants (flips, agreement, retention) need the same items scored the same way, so every
record carries a stable item id and a hash of the exact prompt it was asked.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from unicomp.data.resolver import ResolvedDataset, load_rows
from unicomp.errors import UnicompError
from unicomp.evaluate.calibration import calibration_scores, item_values
from unicomp.evaluate.lm import LanguageModel
from unicomp.evaluate.prompts import (
    build_context,
    prompt_text,
    select_fewshot,
    text_prefix,
)
from unicomp.evaluate.scoring import (
    argmax,
    bits_per_unit,
    mean_and_stderr,
    multiple_choice_metrics,
    perplexity,
)
from unicomp.evaluate.tasks import validation
from unicomp.evaluate.tasks.spec import TaskSpec
from unicomp.failpoints import failpoint
from unicomp.finite import check_finite_scores

Progress = Callable[[float], None]


@dataclass
class ItemRecord:
    item_id: str
    prompt_hash: str
    target: Any
    prediction: Any = None
    loglikelihoods: list[float] | None = None
    is_greedy: list[bool] | None = None
    generation: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TaskResult:
    task: str
    category: str
    scores: dict[str, float]
    stderr: dict[str, float | None]
    n_items: int
    records: list[ItemRecord]
    data: dict[str, Any]
    settings: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return {"task": self.task, "category": self.category, "scores": self.scores, "stderr": self.stderr,
                "n_items": self.n_items, "data": self.data, "settings": self.settings}


def effective_fewshot(spec: TaskSpec, num_fewshot: int | None) -> int:
    """A few-shot override applies to tasks that have exemplars; 0-shot tasks stay 0-shot."""
    return spec.num_fewshot if num_fewshot is None or not spec.has_fewshot else num_fewshot


def task_settings(spec: TaskSpec, limit: int | None, num_fewshot: int | None, max_length: int,
                  add_bos_token: bool | None = None) -> dict[str, Any]:
    """Everything that changes what is computed; the cache key of an evaluation unit."""
    return {
        "task_version": spec.version,
        "limit": limit,
        "num_fewshot": effective_fewshot(spec, num_fewshot),
        "max_length": max_length,
        "add_bos_token": add_bos_token,
        "seq_len": spec.seq_len if spec.output_type == "fixed_window_perplexity" else None,
        "max_gen_toks": spec.max_gen_toks if spec.output_type == "generate_until" else None,
        **_generative_settings(spec),
    }


def _generative_settings(spec: TaskSpec) -> dict[str, Any]:
    """Keys only tasks with these features have, so the keys of older tasks' units stay as they were."""
    out: dict[str, Any] = {}
    if spec.fewshot_split:
        out["fewshot"] = {"split": spec.fewshot_split, "sampler": spec.fewshot_sampler, "seed": spec.fewshot_seed}
    if spec.chat_template:
        out["chat"] = {"system_prompt": spec.system_prompt, "fewshot_as_multiturn": spec.fewshot_as_multiturn}
    if spec.output_type == "generate_until":
        out["generation"] = spec.generation_kwargs()
    return out


def load_task_docs(spec: TaskSpec, limit: int | None, *, data_dir=None, sources=None,
                   strict_sources: bool = False) -> tuple[list[dict], ResolvedDataset]:
    """The documents a task scores: resolved rows, checked against the task's fields, task
    preprocessing, then the first `limit`, each dry-run through the prompt functions."""
    if limit is not None and limit < 1:
        raise UnicompError(f"limit must be a positive number of items, got {limit}", "pass --limit 1 or more, or omit it")
    ds = spec.dataset
    resolved = load_rows(ds.id, ds.config, ds.split, fallback_splits=ds.fallback_splits, sources=sources, data_dir=data_dir,
                         strict=strict_sources)
    validation.check_rows(spec, resolved)
    docs = validation.process(spec, resolved)
    if limit is not None:
        docs = docs[:limit]
    validation.check_docs(spec, docs, resolved)
    if spec.fewshot_split:
        pool = load_rows(ds.id, ds.config, spec.fewshot_split, sources=sources, data_dir=data_dir, strict=strict_sources)
        validation.check_rows(spec, pool)
        resolved.fewshot_rows = validation.process(spec, pool)
        resolved.fewshot = pool.record()
    return docs, resolved


def evaluate_task(
    lm: LanguageModel,
    spec: TaskSpec,
    docs: list[dict],
    resolved: ResolvedDataset,
    *,
    limit: int | None = None,
    num_fewshot: int | None = None,
    progress: Progress | None = None,
) -> TaskResult:
    pool = resolved.fewshot_rows if spec.fewshot_split else list(spec.fewshot_examples)
    if num_fewshot is not None and spec.has_fewshot and num_fewshot > len(pool or ()):
        raise UnicompError(
            f"task {spec.name} has {len(pool or ())} few-shot examples, {num_fewshot} requested",
            f"pass --num-fewshot {len(pool or ())} or fewer",
        )
    settings = task_settings(spec, limit, num_fewshot, lm.max_length, lm.add_bos_token)
    if resolved.fewshot:
        settings["fewshot_revision"] = resolved.fewshot.get("revision")
    if effective_fewshot(spec, num_fewshot) != spec.num_fewshot:
        spec = replace(spec, num_fewshot=effective_fewshot(spec, num_fewshot))
    runner = {
        "multiple_choice": _multiple_choice,
        "loglikelihood_rolling": _rolling,
        "fixed_window_perplexity": _fixed_window,
        "generate_until": _generation,
    }[spec.output_type]
    shots = select_fewshot(spec, docs, resolved.fewshot_rows, spec.num_fewshot)
    records, scores, stderr = runner(lm, spec, docs, shots, progress, limit)
    check_finite_scores(spec.name, records, scores)
    failpoint("evaluate.scored")
    data = resolved.record()
    if spec.output_type == "generate_until":
        # The policy for prompts longer than the context (minus the answer's budget), and how often it applied.
        data["prompt_truncation"] = {"policy": "left: the oldest prompt tokens are dropped (lm-eval's rule)",
                                     "truncated_prompts": sum(1 for r in records if r.extra.get("truncated_tokens"))}
        if spec.chat_template:
            applied = all(r.extra.get("chat_template") for r in records)
            data["chat_template"] = "applied" if applied else "the model has none: the turns were given as plain text"
    return TaskResult(spec.name, spec.category, scores, stderr, len(records), records, data, settings)


def _hash(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


def _scaled(progress: Progress | None, factor: float):
    if progress is None:
        return None
    return lambda n: progress(n * factor)


def _aggregate(records: list[ItemRecord], metrics, aggregations=None) -> tuple[dict[str, float], dict[str, float | None]]:
    """Mean and standard error per metric, or the task's own aggregate (no standard error)."""
    scores, stderr = {}, {}
    for m in metrics:
        values = [r.metrics[m] for r in records]
        if aggregations and m in aggregations:
            value = aggregations[m](values)
            if value is None:  # nothing to aggregate (e.g. a category without items): no score, not a zero
                continue
            scores[m], stderr[m] = float(value), None
        else:
            scores[m], stderr[m] = mean_and_stderr(values)
    return scores, stderr


def _multiple_choice(lm: LanguageModel, spec: TaskSpec, docs: list[dict], shots: list[list[dict]],
                     progress: Progress | None, limit: int | None):
    requests: list[tuple[str, str]] = []
    layout = []  # per doc: (first request index, choices, gold)
    for d, doc_shots in zip(docs, shots):
        text = spec.doc_to_text(d)
        prefix = text_prefix(spec, doc_shots)
        choices = spec.doc_to_choice(d)
        start = len(requests)
        if isinstance(text, int):  # partial scoring: one context per choice, shared continuation
            cont = spec.target_delimiter + spec.doc_to_target(d)
            requests.extend((prefix + c, cont) for c in choices)
            gold = text
        else:
            requests.extend((prefix + text, spec.target_delimiter + c) for c in choices)
            gold = spec.doc_to_target(d)
        if not isinstance(gold, int) or not 0 <= gold < len(choices):
            raise UnicompError(f"task {spec.name}: gold answer {gold!r} is not a choice index", "check the dataset rows")
        layout.append((start, choices, gold))
    answers = lm.loglikelihood(requests, _scaled(progress, len(docs) / max(len(requests), 1)))
    records = []
    for i, (start, choices, gold) in enumerate(layout):
        lls = [a[0] for a in answers[start:start + len(choices)]]
        greedy = [a[1] for a in answers[start:start + len(choices)]]
        if spec.process_results is not None:
            per_item, pred = spec.process_results(docs[i], lls), argmax(lls)
        else:
            per_item, pred = multiple_choice_metrics(lls, choices, gold, spec.metrics)
        prompt = "\x1e".join(f"{c}\x1f{x}" for c, x in requests[start:start + len(choices)])
        # Calibration's per-item list sits in `extra`: `metrics` stays lm-eval's per-item view.
        extra = {"calibration": item_values(lls, gold)} if spec.calibrated else {}
        records.append(ItemRecord(str(i), _hash(prompt), gold, pred, lls, greedy, None, per_item, extra))
    scores, stderr = _aggregate(records, spec.metrics, spec.aggregations)
    if spec.calibrated:  # a pure function of the log-likelihoods: not part of the unit key
        cal_scores, cal_stderr = calibration_scores([r.extra["calibration"] for r in records])
        scores.update(cal_scores)
        stderr.update(cal_stderr)
    return records, scores, stderr


def _rolling(lm: LanguageModel, spec: TaskSpec, docs: list[dict], shots, progress: Progress | None, limit: int | None):
    texts = [spec.doc_to_target(d) for d in docs]
    answers = lm.loglikelihood_rolling(texts, progress)
    records = []
    for i, (d, text, (ll, n_tokens)) in enumerate(zip(docs, texts, answers)):
        counts = {unit: count(d) for unit, count in spec.doc_counts.items()}  # e.g. the page's words and bytes
        records.append(ItemRecord(str(i), _hash(text), None, None, [ll], None, None,
                                  {"loglikelihood": ll, **counts, "tokens": n_tokens}))
    total = sum(r.metrics["loglikelihood"] for r in records)
    scores = {}
    for unit in (*spec.doc_counts, "tokens"):  # words -> word_perplexity; bytes also bits_per_byte (lm-eval's names)
        n = sum(r.metrics[unit] for r in records)
        scores[f"{unit.removesuffix('s')}_perplexity"] = perplexity(total, n)
        if unit == "bytes":
            scores["bits_per_byte"] = bits_per_unit(total, n)
    return records, scores, {k: None for k in scores}


def _fixed_window(lm: LanguageModel, spec: TaskSpec, docs: list[dict], shots, progress: Progress | None, limit: int | None):
    # `limit` for this task counts windows, not documents: the whole test text is one document.
    text = spec.doc_to_text(docs[0]) if docs else ""
    nlls = lm.fixed_window_nll(text, spec.seq_len, max_windows=limit, progress=None)
    if progress is not None:
        progress(len(docs))
    records = [ItemRecord(str(i), _hash(text, str(i), str(spec.seq_len)), None, None, None, None, None, {"nll": v})
               for i, v in enumerate(nlls)]
    mean_nll, se = mean_and_stderr(nlls)
    return records, {"token_perplexity": math.exp(mean_nll)}, {"token_perplexity": None if se is None else math.exp(mean_nll) * se}


def _generation(lm: LanguageModel, spec: TaskSpec, docs: list[dict], shots: list[list[dict]],
                progress: Progress | None, limit: int | None):
    chat = spec.chat_template and getattr(lm, "supports_chat", True)
    # A model without a chat template gets the same turns as plain text (lighteval's fallback too).
    as_built = spec if chat or not spec.chat_template else replace(spec, chat_template=False)
    prompts = [build_context(as_built, d, doc_shots) for d, doc_shots in zip(docs, shots)]
    kwargs = spec.generation_kwargs()
    if spec.temperature > 0:  # one seed per item, so an item's sample is the same in any batch or backend
        requests = [(p, {**kwargs, "seed": (spec.seed or 0) + i}) for i, p in enumerate(prompts)]
    else:
        requests = [(p, kwargs) for p in prompts]
    if hasattr(lm, "generate"):  # the in-process engine also says how each answer ended
        generations = lm.generate(requests, progress)
        outputs = [g.text for g in generations]
        extras = [{"finish_reason": g.finish_reason, "completion_tokens": g.completion_tokens,
                   "truncated_tokens": g.truncated_tokens} for g in generations]
    else:
        outputs = lm.generate_until(requests, progress)
        extras = [{} for _ in outputs]
    records = []
    metric_names = list(spec.metrics) if spec.process_results else [f"exact_match,{n}" for n in spec.answer_extractors]
    for i, (d, prompt, out) in enumerate(zip(docs, prompts, outputs)):
        target = spec.doc_to_target(d)
        if spec.process_results is not None:
            per_item, preds = spec.process_results(d, out), None
        else:
            preds = {name: fn(out) for name, fn in spec.answer_extractors.items()}
            norm = spec.normalize
            per_item = {f"exact_match,{name}": float(norm(p) == norm(str(target))) for name, p in preds.items()}
        records.append(ItemRecord(str(i), _hash(prompt_text(prompt)), _jsonable(target), preds, None, None, out, per_item,
                                  {**extras[i], "chat_template": bool(chat)} if spec.chat_template else extras[i]))
    scores, stderr = _aggregate(records, metric_names, spec.aggregations)
    return records, scores, stderr


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, list, dict, type(None))) else str(value)
