"""`unicomp eval`: evaluate one model on a list of tasks, reusing stored units.

Everything that can fail because of user input (task names, store path, model, datasets) is
checked before the run is created, so a bad invocation leaves the store exactly as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from unicomp.evaluate.lm import LanguageModel
from unicomp.evaluate.runner import evaluate_task, load_task_docs, task_settings
from unicomp.evaluate.tasks import expand_task_names, get_task
from unicomp.models.loading import load_model
from unicomp.outputs import check_output_file, write_text
from unicomp.requests import EvalRequest
from unicomp.runs.environment import environment
from unicomp.runs.store import Store, ending, unit_key

# progress_factory(description, total) -> context manager yielding an `advance(n)` callable
ProgressFactory = Callable[[str, int], AbstractContextManager[Callable[[float], None]]]


def _no_progress(description: str, total: int):
    return nullcontext(lambda n: None)


def run_evaluation(req: EvalRequest, progress_factory: ProgressFactory = _no_progress,
                   on_status: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    task_names = expand_task_names(req.tasks)
    specs = [get_task(n) for n in task_names]
    out_path = check_output_file(req.output, flag="--output") if req.output else None
    store = Store(req.store)
    try:
        prepared = []  # datasets first: cheaper to fail on than the model
        for spec in specs:
            docs, resolved = load_task_docs(spec, req.limit, data_dir=req.data_dir, sources=req.data_sources,
                                            strict_sources=req.strict_sources)
            prepared.append((spec, docs, resolved))
            split_note = "" if resolved.split == resolved.requested_split else f" (fallback from {resolved.requested_split})"
            on_status(f"{spec.name}: {resolved.dataset_id} {resolved.split}{split_note} from {resolved.source}")
        on_status(f"loading model {req.model}")
        loaded = load_model(req.model, dtype=req.dtype, device=req.device, trust_remote_code=req.trust_remote_code)
        on_status(f"model from {loaded.source} ({loaded.location})")
        lm = LanguageModel(loaded.model, loaded.tokenizer, batch_size=req.batch_size)
        env = environment()
        model_record = loaded.record()
        run_id = store.start_run("eval", req.model_dump(), env)
        try:
            for spec, docs, resolved in prepared:
                settings = task_settings(spec, req.limit, req.num_fewshot, lm.max_length, lm.add_bos_token)
                key = unit_key("evaluate", loaded.fingerprint, spec.name, settings, resolved.revision)
                if store.find_unit(key) is not None:
                    store.link_unit(run_id, key)
                    on_status(f"{spec.name}: reused stored result")
                    continue
                start = time.perf_counter()
                with progress_factory(spec.name, len(docs)) as advance:
                    result = evaluate_task(lm, spec, docs, resolved, limit=req.limit, num_fewshot=req.num_fewshot,
                                           progress=advance)
                store.save_unit(run_id, key, kind="evaluate", model=model_record, result=result, environment=env,
                                wall_seconds=time.perf_counter() - start)
        except BaseException as exc:
            store.finish_run(run_id, *ending(exc))
            raise
        store.finish_run(run_id, "finished")
        exported = store.export_run(run_id)
        exported["store"] = str(store.path)
        if out_path is None:  # the default: next to the store, named by run id
            out_path = store.path.with_name(f"run-{run_id}.json")
        write_text(out_path, json.dumps(exported, indent=2, sort_keys=True))
        exported["output"] = str(out_path)
        return exported
    finally:
        store.close()
