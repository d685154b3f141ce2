"""`unicomp label FILE`: a small terminal labeller. One unlabelled item at a time (prompt, then
answer); a number picks one of the choices, text is taken as the label where no choices are
set, `s` skips, `q` quits. The file is saved (atomically) after every label, so quitting or a
crash loses nothing already labelled."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from unicomp.errors import UnicompError
from unicomp.reliability.labels import read_labels, write_labels


def label_file(path: str | Path, choices: list[str], *, ask: Callable[[str], str] = input,
               show: Callable[[str], None] = print) -> dict[str, int]:
    """Label the file's unlabelled items; returns counts of labelled / skipped / left."""
    rows = read_labels(path)
    if not choices:
        choices = sorted({r.label for r in rows if r.label is not None})
    todo = [i for i, r in enumerate(rows) if r.label is None]
    menu = "  ".join(f"[{n}] {c}" for n, c in enumerate(choices, start=1))
    done = skipped = 0
    for count, i in enumerate(todo, start=1):
        row = rows[i]
        show(f"\n--- item {row.item_id} ({count}/{len(todo)} unlabelled) ---\nPROMPT:\n{row.prompt}\n\nANSWER:\n{row.answer}\n")
        while True:
            reply = ask(f"{menu}  [s] skip  [q] quit > " if choices else "label (text)  [s] skip  [q] quit > ").strip()
            if reply == "q":
                return {"labelled": done, "skipped": skipped, "left": len(todo) - done - skipped}
            if reply == "s":
                skipped += 1
                break
            if choices and reply.isdigit() and 1 <= int(reply) <= len(choices):
                row.label = choices[int(reply) - 1]
            elif not choices and reply:
                row.label = reply
            else:
                show(f"not a choice: {reply!r}")
                continue
            write_labels(path, rows)  # after every label
            done += 1
            break
    return {"labelled": done, "skipped": skipped, "left": len(todo) - done - skipped}


def check_choices(raw: str | None) -> list[str]:
    choices = [c.strip() for c in (raw or "").split(",") if c.strip()]
    if len(set(choices)) != len(choices):
        raise UnicompError(f"--choices {raw!r} repeats a label", "list each label once, e.g. --choices refused,complied")
    return choices
