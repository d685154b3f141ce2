"""The paper's lighteval protocol tasks run end to end through `unicomp eval`, as docs/benchmarks.md quotes them.

    UNICOMP_DATA_DIR=../shared/data python bench/protocol_tasks.py --json bench/results/protocol_tasks.json
    python bench/protocol_tasks.py --table bench/results/protocol_tasks.json

Runs the same code path as `unicomp eval -m MODEL -t TASKS --limit N --max-gen-toks K` into a throwaway
store and keeps each task's scores, standard errors, item count, data source and the unit's wall time.
Exactness against lighteval itself is bench/paper_protocols.py's job; this one shows the path works and
what a small model scores on it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from _cli import measure_or_render
from _machine import machine


def measure(model: str, tasks: list[str], limit: int, max_gen_toks: int) -> dict:
    from unicomp.requests import EvalRequest
    from unicomp.runs.evaluation import run_evaluation

    with tempfile.TemporaryDirectory() as tmp:
        req = EvalRequest.of(model=model, tasks=tasks, limit=limit, store=str(Path(tmp) / "protocol.sqlite"),
                             output=str(Path(tmp) / "run.json"), max_gen_toks=max_gen_toks)
        exported = run_evaluation(req)
    units = [{"task": u["task"], "scores": u["scores"], "stderr": u["stderr"], "n_items": u["n_items"],
              "source": (u.get("data") or {}).get("source"), "wall_seconds": u["wall_seconds"]}
             for u in exported["units"]]
    return {"machine": machine(), "model": model, "limit": limit, "max_gen_toks": max_gen_toks,
            "data_dir": os.environ.get("UNICOMP_DATA_DIR"), "units": units}


def table_from_json(path: str) -> str:
    data = json.loads(Path(path).read_text())
    lines = ["| task | metric | score | ± stderr | items | wall time |", "|---|---|---:|---:|---:|---:|"]
    for unit in data["units"]:
        for metric, value in unit["scores"].items():
            se = unit["stderr"].get(metric)
            lines.append(f"| {unit['task']} | {metric} | {value:.3f} | {'-' if se is None else f'{se:.3f}'} "
                         f"| {unit['n_items']} | {unit['wall_seconds']:.1f} s |")
    lines += ["", (f"`unicomp eval -m {data['model']} -t {','.join(u['task'] for u in data['units'])} "
                   f"--limit {data['limit']} --max-gen-toks {data['max_gen_toks']}`, fp32, greedy.")]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--tasks", default="gsm8k_paper,math_500")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--max-gen-toks", type=int, default=384)
    measure_or_render(ap, lambda a: measure(a.model, a.tasks.split(","), a.limit, a.max_gen_toks), table_from_json)


if __name__ == "__main__":
    main()
