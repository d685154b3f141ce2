"""Label files: one item per line (JSONL) or row (CSV) with `item_id`, `prompt`, `answer`, `label`.

A judge's verdicts and a human's are the same format, so `unicomp judge-agreement` compares any
two, and `unicomp label` fills in a file's empty labels by hand. Other columns (task, stratum,
...) are kept and may be used to stratify a sample. An empty label means "not labelled yet".
Files are rewritten atomically (a temporary file, then a rename), so an interrupted labeller
never leaves half a file.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unicomp.data.jsonl import parse_jsonl_lines
from unicomp.errors import UnicompError
from unicomp.outputs import write_text

REQUIRED = ("item_id", "prompt", "answer", "label")
_FIX = "each item needs item_id, prompt, answer and label (label may be empty); see docs/judges.md"


@dataclass
class LabelRow:
    item_id: str
    prompt: str
    answer: str
    label: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "prompt": self.prompt, "answer": self.answer, "label": self.label, **self.extra}


def _row(raw: dict[str, Any], where: str) -> LabelRow:
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise UnicompError(f"{where}: no {', '.join(missing)} (has {', '.join(sorted(raw)) or 'nothing'})", _FIX)
    label = raw["label"]
    label = None if label is None or str(label).strip() == "" else str(label).strip()
    return LabelRow(str(raw["item_id"]), str(raw["prompt"]), str(raw["answer"]), label,
                    {k: v for k, v in raw.items() if k not in REQUIRED})


def read_labels(path: str | Path) -> list[LabelRow]:
    """The rows of a .jsonl or .csv label file; a bad line or a repeated id names the file and line."""
    path = Path(path)
    if not path.is_file():
        raise UnicompError(f"no label file {path}", "pass the path of a .jsonl or .csv label file")
    data = path.read_bytes()
    rows: list[LabelRow] = []
    lines: dict[str, int] = {}
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
        items = ((reader.line_num, raw) for raw in reader)
    elif path.suffix.lower() in (".jsonl", ".json"):
        parsed, numbers = parse_jsonl_lines(data, path, fix=_FIX)
        items = zip(numbers, parsed)
    else:
        raise UnicompError(f"{path}: unknown label file type {path.suffix!r}", "use a .jsonl or .csv file")
    for line, raw in items:
        row = _row(raw, f"{path} line {line}")
        if row.item_id in lines:
            raise UnicompError(f"{path} line {line}: item_id {row.item_id!r} repeats line {lines[row.item_id]}",
                               "give every item its own id")
        lines[row.item_id] = line
        rows.append(row)
    return rows


def write_labels(path: str | Path, rows: list[LabelRow]) -> None:
    """Replace the file with `rows`, atomically, in its own format."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        columns = list(dict.fromkeys([*REQUIRED, *(k for r in rows for k in r.extra)]))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in r.to_dict().items()})
        data = buffer.getvalue()
    else:
        data = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rows)
    write_text(path, data)
