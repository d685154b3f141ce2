"""Every task by name, plus groups (`mmlu` = its 57 subjects) that expand to tasks.

Each module of this package that defines `TASKS` (a list of TaskSpec) contributes them, so a new
task is one new file here (plus its test) and nothing else.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil

import unicomp.evaluate.tasks as _package
from unicomp.errors import NotFoundError
from unicomp.evaluate.tasks.spec import TaskSpec


def _discover() -> dict[str, TaskSpec]:
    found: dict[str, TaskSpec] = {}
    for module in sorted(pkgutil.iter_modules(_package.__path__), key=lambda m: m.name):
        for spec in getattr(importlib.import_module(f"{_package.__name__}.{module.name}"), "TASKS", ()):
            if spec.name in found:
                raise ValueError(f"two tasks are named {spec.name!r}")
            found[spec.name] = spec
    return found


_TASKS: dict[str, TaskSpec] = _discover()
GROUPS: dict[str, list[str]] = {}
for _t in _TASKS.values():
    if _t.group:
        GROUPS.setdefault(_t.group, []).append(_t.name)
        if _t.subgroup and not _t.pool_group:  # e.g. trustllm_safety (MMLU's subgroups are report rows only)
            GROUPS.setdefault(f"{_t.group}_{_t.subgroup}", []).append(_t.name)


def list_tasks() -> list[TaskSpec]:
    return list(_TASKS.values())


def get_task(name: str) -> TaskSpec:
    try:
        return _TASKS[name]
    except KeyError:
        raise NotFoundError(f"unknown task {name!r}{_suggest(name)}", "run `unicomp ls tasks` to see every task") from None


def expand_task_names(names: list[str]) -> list[str]:
    """Task and group names -> task names, in order, without duplicates; unknown names fail."""
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        members = GROUPS.get(name) or [get_task(name).name]
        out.extend(m for m in members if m not in out)
    if not out:
        raise NotFoundError("no task given", "pass --tasks, e.g. --tasks arc_easy,hellaswag")
    return out


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, [*_TASKS, *GROUPS], n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""
