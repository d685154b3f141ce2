"""`unicomp eval`: evaluate one model on a list of tasks, as a plan of evaluate units.

Everything that can fail because of user input (task names, output and store paths, model,
datasets) is checked while the plan is built, before the run is created, so a bad invocation
leaves the store exactly as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from unicomp.outputs import FORMAT_KEY, check_output_file, write_text
from unicomp.requests import EvalRequest
from unicomp.runs.environment import environment
from unicomp.runs.executor import LocalExecutor
from unicomp.runs.models import ModelPool
from unicomp.runs.plan import plan_evaluation
from unicomp.runs.store import Store, ending
from unicomp.runs.units import UnitContext

# progress_factory(description, total) -> context manager yielding an `advance(n)` callable
ProgressFactory = Callable[[str, int], AbstractContextManager[Callable[[float], None]]]

__all__ = ["EvalRequest", "run_evaluation"]


def _no_progress(description: str, total: int):
    return nullcontext(lambda n: None)


def run_evaluation(req: EvalRequest, progress_factory: ProgressFactory = _no_progress,
                   on_status: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    from unicomp.evaluate.tasks import expand_task_names

    expand_task_names(req.tasks)  # unknown task names fail before anything is opened
    out_path = check_output_file(req.output, flag="--output") if req.output else None
    store = Store(req.store)
    try:
        pool = ModelPool(req.dtype, req.device, req.trust_remote_code)
        plan = plan_evaluation(req, pool, on_status=on_status)
        env = environment(req.device)
        run_id = store.start_run("eval", req.model_dump(), env)
        try:
            LocalExecutor().execute(plan, UnitContext(pool, progress_factory, on_status, req.data_dir), store=store,
                                    run_id=run_id, environment=env)
        except BaseException as exc:
            store.finish_run(run_id, *ending(exc))
            raise
        store.finish_run(run_id, "finished")
        exported = store.export_run(run_id)
        exported["store"] = str(store.path)
        if out_path is None:  # the default: next to the store, named by run id
            out_path = store.path.with_name(f"run-{run_id}.json")
        check_output_file(out_path, flag="--output")  # again: a file may have appeared during the run
        write_text(out_path, json.dumps({FORMAT_KEY: 1, **exported}, indent=2, sort_keys=True))
        exported["output"] = str(out_path)
        return exported
    finally:
        store.close()
