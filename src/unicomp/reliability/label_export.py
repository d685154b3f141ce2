"""Label files from a run: for every item an LLM judge decided, the rule judge's label and the
LLM judge's, as two label files with the same ids (`<model>:<task>:<item>`), plus a blank copy for a
person to fill in with `unicomp label`. `unicomp judge-agreement` then compares any two.

The rule label of an item is the field the LLM judge would write (`LlmJudge.label`) in the rule
judge's per-item record; for a pairwise judge (sycophancy preference) it is whether the rule
judge gave the pair's two answers the same stance. Labels that are not text are written as
sorted JSON so equal decisions compare equal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unicomp.errors import UnicompError
from unicomp.reliability.labels import LabelRow, write_labels
from unicomp.reliability.trustllm.subtasks import SUBTASKS
from unicomp.runs.store import Store


def _text(value: Any) -> str | None:
    """None stays None (an unjudged item: no label to compare)."""
    return value if value is None or isinstance(value, str) else json.dumps(value, sort_keys=True)


def _refusal(record: dict) -> str:
    return "refused" if record["refused"] else "answered"


def export_judge_labels(store_path: str | Path, out_dir: str | Path, run_id: str | None = None,
                        kind: str = "llm") -> dict[str, Any]:
    """`kind` "llm": the items an LLM judge labelled; "classifier": the answers the refusal
    classifier labelled (refused / answered), against the refusal rule."""
    from unicomp.evaluate.runner import load_task_docs
    from unicomp.evaluate.tasks import get_task

    if not Path(store_path).is_file():
        raise UnicompError(f"no results store {store_path}", "pass --store with the store the run wrote")
    store = Store(store_path)
    try:
        runs = [run_id] if run_id else [r["run_id"] for r in reversed(store.list_runs())]
        for rid in runs:
            exported = store.export_run(rid)
            judged = [u for u in exported["units"] if isinstance(u["data"].get("judge"), dict)
                      and u["data"]["judge"].get("type") == kind]
            if judged:
                break
        else:
            raise UnicompError(f"no run in {store_path} has {kind}-judged units",
                               "run TrustLLM subtasks with --judge-endpoint / a `judge:` block first" if kind == "llm"
                               else "run TrustLLM subtasks with --refusal-classifier / a `refusal_classifier:` block first")
        rule_rows, llm_rows = [], []
        for ju in judged:
            task, lj = ju["task"], SUBTASKS[ju["task"]].llm_judge
            metric = next(iter(SUBTASKS[task].metrics))
            llm = store.records(ju["unit_key"])
            rule = store.records(ju["data"]["evaluate_unit"])
            evaluation = store.find_unit(ju["data"]["evaluate_unit"])
            # the run's own mirror, and the same dataset revision the evaluation read
            docs, resolved = load_task_docs(get_task(task), evaluation.settings["limit"],
                                            data_dir=exported["config"].get("data_dir"))
            if resolved.revision != evaluation.data.get("revision") or len(docs) != len(llm):
                raise UnicompError(f"{task}: the dataset now resolves to revision {resolved.revision} with {len(docs)} "
                                   f"items, the run judged revision {evaluation.data.get('revision')} with {len(llm)}",
                                   "export with the mirror the run used (the run config's data_dir)")
            previous = None  # the pair's first member, for a pairwise judge
            for i, (lr, rr) in enumerate(zip(llm, rule)):
                if kind == "classifier":
                    if "classifier_label" in lr["extra"]:
                        common = dict(item_id=f"{ju['model'].get('name', '')}:{task}:{lr['item_id']}",
                                      prompt=docs[i]["prompt"], answer=rr["generation"] or "")
                        extra = {"task": task, "model": ju["model"].get("name", "")}
                        rule_rows.append(LabelRow(**common, label=_refusal(rr["metrics"][metric]), extra=extra))
                        llm_rows.append(LabelRow(**common, label=_refusal(lr["metrics"][metric]),
                                                 extra={**extra, "judge": lr["extra"]["judge"]}))
                    continue
                if "judge_reply" not in lr["extra"]:
                    if lj.pairwise and lj.applies(docs[i], rr["generation"]):
                        previous = rr
                    continue
                if lj.pairwise:
                    rule_label = previous["metrics"][metric]["stance"] == rr["metrics"][metric]["stance"]
                else:
                    rule_label = lj.compared(rr["metrics"][metric].get(lj.label))
                model = ju["model"].get("name", "")
                common = dict(item_id=f"{model}:{task}:{lr['item_id']}", prompt=docs[i]["prompt"],
                              answer=rr["generation"] or "")
                extra = {"task": task, "model": model}
                rule_rows.append(LabelRow(**common, label=_text(rule_label), extra=extra))
                llm_rows.append(LabelRow(**common, label=_text(lj.compared(lr["metrics"][metric][lj.label])),
                                         extra={**extra, "judge": lr["extra"]["judge"]}))
    finally:
        store.close()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_labels(out / "rule.jsonl", rule_rows)
    write_labels(out / f"{kind}.jsonl", llm_rows)
    write_labels(out / "human.jsonl", [LabelRow(r.item_id, r.prompt, r.answer, None, dict(r.extra)) for r in rule_rows])
    return {"run_id": rid, "items": len(rule_rows), "files": [str(out / n) for n in ("rule.jsonl", f"{kind}.jsonl", "human.jsonl")]}
