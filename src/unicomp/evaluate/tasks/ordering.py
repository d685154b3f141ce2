"""Row orders for tasks whose files are sorted by class: dealing the classes in turn, so that a
`--limit` scores every class while the full file scores the same in any order."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from unicomp.evaluate.tasks.spec import Doc


def alternate(rows: list[Doc], key: Callable[[Doc], Hashable], order: tuple[Hashable, ...]) -> list[Doc]:
    """Rows of each class of `order` in turn (first of each, then second of each, ...), in file
    order within a class; rows of other classes go with the last one."""
    classes: dict[Hashable, list[Doc]] = {c: [] for c in order}
    for row in rows:
        k = key(row)
        classes[k if k in classes else order[-1]].append(row)
    out: list[Doc] = []
    for i in range(max((len(v) for v in classes.values()), default=0)):
        out.extend(members[i] for members in classes.values() if i < len(members))
    return out
