"""Real model generations of TrustLLM subtasks, from a unicomp results store, in the JSONL format
`bench/trustllm_parity.py` reads ({"subtask", "doc", "res"} per line, file order per subtask).

    UNICOMP_DATA_DIR=../shared/data python bench/trustllm_generations_from_store.py \\
        unicomp-results/unicomp.sqlite /tmp/real.jsonl [--run RUN_ID] [--model LABEL]

Every evaluate unit of a `trustllm_*` task in the run (default: the newest run holding one) is
exported: item i of a unit is document i of the task at the unit's limit (the same stratified
order the evaluation used), with the stored generation. One model's units: --model (its stored
name), else the first model of the run (the base).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unicomp.evaluate.runner import load_task_docs
from unicomp.evaluate.tasks import get_task
from unicomp.runs.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("store")
    ap.add_argument("out")
    ap.add_argument("--run", default=None)
    ap.add_argument("--model", default=None, help="the model's name as stored (default: the run's first model)")
    args = ap.parse_args()
    store = Store(args.store)
    try:
        runs = [r["run_id"] for r in reversed(store.list_runs())] if args.run is None else [args.run]
        for run_id in runs:
            units = [u for u in store.export_run(run_id)["units"] if u["task"].startswith("trustllm_")
                     and not isinstance(u["data"].get("judge"), dict)
                     and (args.model is None or u["model"].get("name") == args.model)]
            if units:
                model = args.model or units[0]["model"].get("name")  # one model: the parity bench groups by subtask
                units = [u for u in units if u["model"].get("name") == model]
                break
        else:
            raise SystemExit(f"no run in {args.store} has TrustLLM units")
        lines = 0
        with open(args.out, "w", encoding="utf-8") as out:
            for u in units:
                docs, _ = load_task_docs(get_task(u["task"]), u["settings"]["limit"])
                records = store.records(u["unit_key"])
                assert len(records) == len(docs), (u["task"], len(records), len(docs))
                for doc, rec in zip(docs, records):
                    out.write(json.dumps({"subtask": u["task"], "doc": doc, "res": rec["generation"],
                                          "model": u["model"].get("name")}, ensure_ascii=False) + "\n")
                    lines += 1
    finally:
        store.close()
    print(f"run {run_id}: {len(units)} units, {lines} generations -> {Path(args.out)}")


if __name__ == "__main__":
    main()
