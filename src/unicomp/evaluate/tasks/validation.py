"""Dataset rows checked against what a task reads, before any model is loaded.

A mirror file edited by hand (a renamed field, a label that is not a choice) used to surface as
a `KeyError` deep in prompt building, sometimes after minutes of work. Here every row is checked
for the task's declared fields, and every scored document is dry-run through the task's prompt
functions, so the error names the file and line and the field.
"""

from __future__ import annotations

from typing import Any

from unicomp.data.resolver import ResolvedDataset
from unicomp.errors import UnicompError
from unicomp.evaluate.tasks.spec import Doc, TaskSpec

FIX = "repair that row (the hub's field names and value types), re-copy the file, or point UNICOMP_DATA_DIR at a good mirror"
_READ_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)


def _has(row: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(row, dict) or part not in row:
            return False
        row = row[part]
    return True


def check_rows(spec: TaskSpec, resolved: ResolvedDataset) -> None:
    """Every row has every field the task reads."""
    for i, row in enumerate(resolved.rows):
        for name in spec.fields:
            if not _has(row, name):
                raise UnicompError(
                    f"{resolved.where(i)}: the row has no field {name!r}, which task {spec.name} reads "
                    f"(it reads {', '.join(spec.fields)}; the row has {', '.join(sorted(row)) or 'no fields'})", FIX)


def process(spec: TaskSpec, resolved: ResolvedDataset) -> list[Doc]:
    """The task's documents from the rows (its `process_docs`), with read errors located."""
    if spec.process_docs is None:
        return list(resolved.rows)
    try:
        return spec.process_docs(resolved.rows)
    except _READ_ERRORS as exc:
        raise UnicompError(f"{resolved.location}: task {spec.name} cannot read the rows ({type(exc).__name__}: {exc})",
                           FIX) from None


def check_docs(spec: TaskSpec, docs: list[Doc], resolved: ResolvedDataset) -> None:
    """Every document builds its prompt, choices and target; a gold answer is a valid choice."""
    one_to_one = spec.process_docs is None  # document i is row i, so its file line is known
    for i, doc in enumerate(docs):
        where = resolved.where(i) if one_to_one else f"{resolved.location}, {spec.name} document {i}"
        try:
            text = spec.doc_to_text(doc)
            target = spec.doc_to_target(doc)
            if spec.output_type == "multiple_choice":
                choices = spec.doc_to_choice(doc) if spec.doc_to_choice else []
                gold = text if isinstance(text, int) else target
                if not isinstance(gold, int) or not 0 <= gold < len(choices):
                    raise ValueError(f"gold answer {gold!r} is not one of the {len(choices)} choices")
                if not all(isinstance(c, str) for c in choices):
                    raise TypeError("choices are not all text")
        except _READ_ERRORS as exc:
            raise UnicompError(f"{where}: task {spec.name} cannot use this row ({type(exc).__name__}: {exc})", FIX) from None
