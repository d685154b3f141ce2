"""A task is data: which dataset, how a document becomes a prompt, how it is scored.

Code appears only where a format needs it (HellaSwag's cleaning, WinoGrande's partial
scoring, GSM8K's answer extraction); everything else is fields. Field semantics follow
lm-evaluation-harness task YAMLs so a spec can be checked line by line against lm-eval's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unicomp.evaluate.calibration import CALIBRATION_METRICS

Doc = dict[str, Any]

# Categories are open: a new track names its own (instruction_following, multilingual, truthfulness,
# ...). These are the ones the report orders first.
CATEGORIES = ("knowledge", "reasoning", "language_modelling")
FEWSHOT_SAMPLERS = ("fixed", "first_n", "random", "lighteval")
OUTPUT_TYPES = ("multiple_choice", "loglikelihood_rolling", "fixed_window_perplexity", "generate_until")


@dataclass(frozen=True)
class DatasetRef:
    """A hub dataset split; `fallback_splits` are the only other splits a task accepts."""

    id: str
    config: str | None
    split: str
    fallback_splits: tuple[str, ...] = ()
    # Rows of the split as published, for datasets that are hub-only here: lets `unicomp plan`
    # size a paper-scale run on a machine without them (never used to score).
    documented_rows: int | None = None


@dataclass(frozen=True)
class TaskSpec:
    """Everything needed to turn dataset rows into requests and requests' answers into scores.

    For `multiple_choice`, `doc_to_text` may return an int instead of a string: the task then
    has one context per choice (`doc_to_choice`) and a shared continuation (`doc_to_target`),
    which is lm-eval's "partial scoring" used by WinoGrande; the int is the gold index.
    """

    name: str
    category: str
    output_type: str
    dataset: DatasetRef
    doc_to_text: Callable[[Doc], Any]
    doc_to_target: Callable[[Doc], Any]
    metrics: tuple[str, ...]
    doc_to_choice: Callable[[Doc], list[str]] | None = None
    process_docs: Callable[[list[Doc]], list[Doc]] | None = None
    description: str = ""
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    fewshot_examples: tuple[Doc, ...] = ()
    num_fewshot: int = 0
    until: tuple[str, ...] = ()
    max_gen_toks: int = 256
    answer_extractors: dict[str, Callable[[str], str]] = field(default_factory=dict)
    seq_len: int = 2048
    group: str | None = None
    subgroup: str | None = None
    # Reports pool a group's members into one row (MMLU's subjects); per-language groups (XCOPA,
    # MGSM) keep a row per member instead, and their category mean weighs each language once.
    report_members: bool = False
    # Whether a report pools the group into size-weighted rows of the ranking metric (MMLU). Off
    # where members rank by different metrics (TrustLLM's subtasks: RtA, F1, Pearson, ...).
    pool_group: bool = True
    version: str = "1"
    reference: str = ""
    # Row fields the task reads (dotted for nested ones, e.g. "choices.text"): checked on every
    # row before any model work, so a renamed field names its file and line instead of a KeyError.
    fields: tuple[str, ...] = ()
    # The metric a report ranks and retains by (default: the first of `metrics`), and the metrics
    # where lower is better (perplexities): retention is then base / variant.
    primary_metric: str | None = None
    lower_is_better: tuple[str, ...] = ()
    # generate_until: how an extracted answer and the target are normalised before exact match
    normalize: Callable[[str], str] = str
    # loglikelihood_rolling: per-document counts perplexities are normalised by (name -> count(doc))
    doc_counts: dict[str, Callable[[Doc], int]] = field(default_factory=dict)
    # Scoring beyond exact match / acc: (doc, generated text) or (doc, log-likelihoods) -> per-item
    # metric values (a float, or a list for instance-level metrics), and how each metric's values
    # aggregate over items (default: the mean).
    process_results: Callable[[Doc, Any], dict[str, Any]] | None = None
    aggregations: dict[str, Callable[[list[Any]], float]] = field(default_factory=dict)
    # Few-shot exemplars drawn from another split of the task's dataset: "first_n" takes the split's
    # first rows, "random" is lm-eval's default sampler (one Random(seed), `sample(pool, n)` per
    # document in document order). "fixed" uses `fewshot_examples`.
    fewshot_split: str | None = None
    fewshot_sampler: str = "fixed"
    fewshot_seed: int = 1234
    doc_to_fewshot_target: Callable[[Doc], Any] | None = None
    # A protocol of another tool (lighteval: sampler "lighteval") chooses its exemplars
    # (docs, pool, n) -> shots per doc, and renders a prompt (doc, shots) -> text or messages.
    select_shots: Callable[[list[Doc], list[Doc] | None, int], list[list[Doc]]] | None = None
    render_prompt: Callable[[Doc, list[Doc]], Any] | None = None
    # Chat: the prompt becomes messages rendered by the model's chat template; few-shot exemplars
    # become user/assistant turns when `fewshot_as_multiturn`, else one user message (lm-eval's rule).
    chat_template: bool = False
    system_prompt: str | None = None
    fewshot_as_multiturn: bool = True
    # Decoding: temperature 0 is greedy; sampling tasks set a temperature, top_p and a seed.
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    # A note a report shows next to the task's scores (e.g. "substitute for Global-MMLU").
    note: str = ""

    def __post_init__(self) -> None:
        if not self.category or not self.category.replace("_", "").isalnum():
            raise ValueError(f"task {self.name}: category {self.category!r} is not a lower_case identifier")
        if self.output_type not in OUTPUT_TYPES:
            raise ValueError(f"task {self.name}: output type {self.output_type!r} not in {OUTPUT_TYPES}")
        if self.fewshot_sampler not in FEWSHOT_SAMPLERS:
            raise ValueError(f"task {self.name}: few-shot sampler {self.fewshot_sampler!r} not in {FEWSHOT_SAMPLERS}")
        if self.fewshot_sampler != "fixed" and not self.fewshot_split:
            raise ValueError(f"task {self.name}: sampler {self.fewshot_sampler!r} needs a fewshot_split")
        if self.primary_metric is not None and self.primary_metric not in self.metrics:
            raise ValueError(f"task {self.name}: primary metric {self.primary_metric!r} is not one of {self.metrics}")

    @property
    def ranked_by(self) -> str:
        return self.primary_metric or self.metrics[0]

    @property
    def calibrated(self) -> bool:
        """Multiple-choice tasks scored by the default argmax also report calibration (evaluate/calibration.py);
        a task with its own `process_results` (bbq, truthfulqa_mc2) defines its own metrics."""
        return self.output_type == "multiple_choice" and self.process_results is None

    @property
    def reported_metrics(self) -> tuple[str, ...]:
        """`metrics` (lm-eval's list, what the task ranks by) plus the calibration metrics it reports."""
        return self.metrics + CALIBRATION_METRICS if self.calibrated else self.metrics

    def is_lower_better(self, metric: str) -> bool:
        return metric in self.lower_is_better or (self.calibrated and metric in CALIBRATION_METRICS)

    def retained(self, metric: str, base: float, variant: float) -> float | None:
        """Variant as a percentage of base, 100 meaning "as good as the base" in either direction."""
        if self.is_lower_better(metric):
            return 100.0 * base / variant if variant else None
        return 100.0 * variant / base if base else None

    @property
    def has_fewshot(self) -> bool:
        return bool(self.fewshot_examples) or self.fewshot_split is not None

    def generation_kwargs(self) -> dict[str, Any]:
        """What the engine is asked per request; also part of the unit key."""
        kwargs: dict[str, Any] = {"until": list(self.until), "max_gen_toks": self.max_gen_toks}
        if self.temperature > 0:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, seed=self.seed)
        return kwargs
