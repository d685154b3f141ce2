"""Exactness of generation tasks against lm-eval 0.4.13: prompts, greedy generations and scores.

    UNICOMP_DATA_DIR=../shared/data python bench/generation_parity.py --tasks gsm8k,ifeval --limit 20 \\
        --json bench/results/generation_parity.json

For each task, lm-eval builds its own requests from its own YAML (re-pointed at the mirror files)
with `simple_evaluate`'s few-shot seed; unicomp builds its prompts; the two are compared
character for character. Then lm-eval's HFLM (`generate_until`, batch 16) and unicomp's engine
(batch 16) generate greedily on the same model object, and the texts are compared; finally each
side's generations are scored by lm-eval's filters and metric and by ours, which must agree.
`--max-gen-toks` shortens every answer for both engines (IFEval allows 1280 tokens: hours on a CPU).
`--repeats N` (default 1: one run is minutes to hours) times both engines' generation N times,
alternating; `seconds_*` and `speedup` are medians, `seconds_*_runs` every run and
`seconds_*_stats` their min/median/max (n=1 without repeats).
`--table JSON` prints the markdown table of a stored --json file (docs/benchmarks.md quotes it) and exits.
Needs the dev extra (lm-eval[ifeval]).
"""

from __future__ import annotations

from _machine import machine, spread  # the CPU / GPU, threads and versions the numbers came from
import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch


def lm_eval_task(name: str, mirror: Path, folder: Path):
    import lm_eval
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    from unicomp.evaluate.lm_eval_adapter import write_lm_eval_mirror_tasks

    if name == "ifeval":  # its only split is "train", used as the test split
        from unicomp.evaluate.instructions.nltk_resources import use_shipped_nltk_data

        use_shipped_nltk_data()
        config = load_yaml(Path(lm_eval.__file__).parent / "tasks" / "ifeval" / "ifeval.yaml")
        config.update(dataset_path="json", dataset_name=None,
                      dataset_kwargs={"data_files": {"train": str(mirror / "google/IFEval/default/train.jsonl")}})
        return ConfigurableTask(config=config)
    write_lm_eval_mirror_tasks(folder, [name], mirror)
    return TaskManager(include_path=str(folder)).load(f"mirror_{name}")["tasks"][f"mirror_{name}"]


def compare(name: str, limit: int, max_gen_toks: int | None, model, tok, batch_size: int, mirror: Path, folder: Path,
            repeats: int = 1) -> dict:
    from dataclasses import replace

    from lm_eval.models.huggingface import HFLM

    from unicomp.evaluate.lm import LanguageModel
    from unicomp.evaluate.prompts import contexts
    from unicomp.evaluate.runner import _generation, load_task_docs
    from unicomp.evaluate.tasks import get_task

    task = lm_eval_task(name, mirror, folder)
    task.set_fewshot_seed(1234)
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    instances = sorted(task.instances, key=lambda inst: inst.doc_id)
    spec = get_task(name)
    if max_gen_toks:
        spec = replace(spec, max_gen_toks=max_gen_toks)
        for inst in instances:
            inst.arguments = (inst.args[0], {**inst.args[1], "max_gen_toks": max_gen_toks})
    docs, resolved = load_task_docs(spec, limit)
    ours_prompts = contexts(spec, docs, resolved.fewshot_rows, spec.num_fewshot)
    same_prompts = sum(a == inst.args[0] for a, inst in zip(ours_prompts, instances))

    hflm = HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size)
    lm = LanguageModel(model, tok, batch_size=batch_size)
    lm_eval_runs: list[float] = []
    ours_runs: list[float] = []
    for _ in range(repeats):  # the engines in turn, so the machine's drift hits both alike; greedy: same texts
        start = time.perf_counter()
        theirs = hflm.generate_until(instances, disable_tqdm=True)
        lm_eval_runs.append(time.perf_counter() - start)
        start = time.perf_counter()
        gens = lm.generate([(p, spec.generation_kwargs()) for p in ours_prompts])
        ours_runs.append(time.perf_counter() - start)
    ours = [g.text for g in gens]
    lm_eval_stats, ours_stats = spread(lm_eval_runs), spread(ours_runs)
    lm_eval_s, ours_s = lm_eval_stats["median"], ours_stats["median"]

    class Fixed:  # hands a list of answers to our scorer
        def __init__(self, texts):
            self.texts = texts

        def generate_until(self, requests, progress=None):
            return self.texts

    def score_both(texts):
        _, our_scores, _ = _generation(Fixed(texts), spec, docs, [[] for _ in docs], None, None)
        for inst, text in zip(instances, texts):
            inst.resps = [text]
        task.apply_filters()
        per_metric: dict[str, list] = {}
        for inst in instances:
            for key, resp in inst.filtered_resps.items():
                for metric, value in task.process_results(inst.doc, [resp]).items():
                    per_metric.setdefault(metric if key == "none" else f"{metric},{key}", []).append(value)
        agg = task.aggregation()
        lm_scores = {k: float(agg[k.split(",")[0]](v)) for k, v in per_metric.items()}
        return our_scores, lm_scores

    ours_scored, theirs_scored = score_both(ours)
    return {"task": name, "items": len(instances), "max_gen_toks": spec.max_gen_toks,
            "prompts_equal": f"{same_prompts}/{len(instances)}",
            "generations_equal": f"{sum(a == b for a, b in zip(ours, theirs))}/{len(instances)}",
            "first_difference": next(({"item": i, "ours": a[:300], "lm_eval": b[:300]}
                                      for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None),
            "scores_ours": ours_scored, "scores_lm_eval_on_our_generations": theirs_scored,
            "generated_tokens": sum(g.completion_tokens for g in gens),
            "seconds_ours": round(ours_s, 1), "seconds_lm_eval": round(lm_eval_s, 1),
            "speedup": round(lm_eval_s / ours_s, 2), "seconds_ours_runs": ours_runs, "seconds_ours_stats": ours_stats,
            "seconds_lm_eval_runs": lm_eval_runs, "seconds_lm_eval_stats": lm_eval_stats}


def scores_text(scores: dict) -> str:
    """`metric (filter) value; ...` of lm-eval style keys ("exact_match,strict-match")."""
    def name(key: str) -> str:
        metric, _, filt = key.partition(",")
        return f"{metric} ({filt})" if filt else metric

    return "; ".join(f"{name(k)} {v:.2f}" if isinstance(v, (int, float)) else f"{name(k)} {v}"
                     for k, v in scores.items()) or "-"


def same_scores(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        x == y or (isinstance(x, (int, float)) and isinstance(y, (int, float)) and abs(x - y) <= 1e-9)
        for x, y in ((a[k], b[k]) for k in a))


def markdown(report: dict) -> str:
    """One row per task: prompts and greedy generations equal to lm-eval's, and the scores of our
    generations by our scorer and by lm-eval's ("equal" when they agree to 1e-9)."""
    head = ["task", "items", "max new tokens", "prompts equal", "greedy generations equal", "scores (our scorer)",
            "lm-eval's scorer on our generations"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in report.get("tasks") or []:
        ours, theirs = t.get("scores_ours") or {}, t.get("scores_lm_eval_on_our_generations")
        toks = t.get("max_gen_toks")
        cells = [str(t.get("task", "?")), str(t.get("items", "-")),
                 "-" if toks is None else f"{toks:,}" if isinstance(toks, int) else str(toks),
                 str(t.get("prompts_equal", "-")), str(t.get("generations_equal", "-")), scores_text(ours),
                 "-" if theirs is None else "equal" if same_scores(ours, theirs) else scores_text(theirs)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_from_json(path: str) -> str:
    """The markdown table of a results file written by --json."""
    return markdown(json.loads(Path(path).read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--tasks", default="gsm8k,ifeval")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-gen-toks", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=1, help="timed generations per engine and task (min/median/max)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--table", default=None, metavar="JSON", help="print the markdown table of a stored --json file")
    args = ap.parse_args()
    if args.table:
        print(table_from_json(args.table))
        return
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    from unicomp.models.loading import load_model

    mirror = Path(os.environ["UNICOMP_DATA_DIR"]).resolve()
    loaded = load_model(args.model, dtype="float32")
    report = {"machine": machine(), "model": loaded.record()["name"], "threads": torch.get_num_threads(), "batch_size": args.batch_size,
              "repeats": args.repeats, "tasks": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in [t for t in args.tasks.split(",") if t]:
            row = compare(name, args.limit, args.max_gen_toks, loaded.model, loaded.tokenizer, args.batch_size, mirror,
                          Path(tmp), args.repeats)
            report["tasks"].append(row)
            print(json.dumps(row, indent=1), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
