"""lm-eval's own task objects, built from its YAMLs re-pointed at the local mirror (or a fixture).

Building lm-eval's TaskManager indexes every task it ships (~15 s), so one manager per session
serves every test module; the YAMLs of all multilingual and bias tasks are written once.
"""

from __future__ import annotations

import functools
from pathlib import Path

from unicomp.evaluate.lm_eval_adapter import LM_EVAL_MIRROR_TASKS, write_lm_eval_mirror_tasks

# Global-MMLU is not in the mirror: tests write hand-made rows in hub layout under this folder.
GLOBAL_MMLU_FIXTURE_TASKS = ("global_mmlu_full_de_anatomy", "global_mmlu_full_de_astronomy", "global_mmlu_full_ja_anatomy")


@functools.cache
def mirror_task_manager(folder: Path, mirror: Path, fixture_mirror: Path):
    from lm_eval.tasks import TaskManager

    folder.mkdir(parents=True, exist_ok=True)
    names = [n for n in LM_EVAL_MIRROR_TASKS if n == "bbq" or n.startswith(("xcopa_", "mgsm_native_cot_"))]
    write_lm_eval_mirror_tasks(folder, names, mirror)
    write_lm_eval_mirror_tasks(folder, GLOBAL_MMLU_FIXTURE_TASKS, fixture_mirror)
    return TaskManager(include_path=str(folder))


def session_manager(tmp_path_factory, mirror: Path):
    """The session's manager; its Global-MMLU tasks read `fixture_mirror(tmp_path_factory)`."""
    base = tmp_path_factory.getbasetemp()
    return mirror_task_manager(base / "lm_eval_mirror_tasks", Path(mirror), fixture_mirror(tmp_path_factory))


def fixture_mirror(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "fixture_mirror"


def lm_eval_task(manager, name: str):
    """lm-eval's task object for one of our task names (its YAML, the mirror's data)."""
    key = f"mirror_{name}"
    return manager.load(key)["tasks"][key]
