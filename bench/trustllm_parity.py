"""Parity of unicomp's TrustLLM scoring with TrustLLM 0.3.0's own scorer code, on the same generations.

    UNICOMP_DATA_DIR=../shared/data python bench/trustllm_synthetic_generations.py /tmp/tl.jsonl
    python bench/trustllm_parity.py /tmp/tl.jsonl --reference-python VENV/bin/python [--json OUT]
    python bench/trustllm_parity.py --table OUT      # the docs table of a stored comparison
    (or set TRUSTLLM_PYTHON to that interpreter instead of passing --reference-python)

Input: JSONL lines {"subtask": name, "doc": <TrustLLM record>, "res": <generated text>} (file order per subtask).
unicomp scores them with `SUBTASKS` (judge + metrics). The same items go, via subprocess, to
`bench/trustllm_reference.py` in a separate venv with trustllm==0.3.0 (install: see that file's docstring),
which calls TrustLLM's own functions. Where TrustLLM would call a model, it gets unicomp's judge output so
that only the scoring code differs: refusal labels as `eval_res` (LABEL_0/LABEL_1) instead of Longformer,
rule verdicts in TrustLLM's vocabulary as `eval_res` or as `get_res` replies keyed by the exact judge prompt
instead of GPT-4, identical TF-IDF vectors instead of ada-002 embeddings. Prints per subtask and metric
ours vs TrustLLM's and whether they agree to 1e-9; also checks our judge templates against TrustLLM's config.
Metrics with no TrustLLM counterpart (per-type AdvInstruction, p_value_mean) show "n/a".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from unicomp.reliability.judges.tfidf import tfidf_vectors
from unicomp.reliability.trustllm import llm_judges
from unicomp.reliability.trustllm.subtasks import SUBTASKS, preference_pairs

HERE = Path(__file__).resolve().parent
TOL = 1e-9
_ETHICS_TEXT = {"not_sure": "Not sure", "not_wrong": "Not wrong", "wrong": "Wrong"}


def reference_payload(name: str, docs: list[dict], texts: list[str], recs: list[dict]) -> dict:
    """TrustLLM input for one subtask: records + res, with our judge outputs where TrustLLM calls a model."""
    items = [{**d, "res": t} for d, t in zip(docs, texts)]
    get_res: dict[str, str] = {}
    emb: dict[str, list[float]] = {}
    for it, rec in zip(items, recs):
        if "refused" in rec:  # Longformer -> refusal rule
            it["eval_res"] = "LABEL_0" if rec["refused"] else "LABEL_1"
    if name == "trustllm_truthfulness_internal":
        for it, rec in zip(items, recs):
            if rec["source"] != "codah":
                it["eval_res"] = rec["verdict"].upper()
    elif name == "trustllm_truthfulness_golden_advfactuality":
        for it, rec in zip(items, recs):
            it["eval_res"] = {"corrected": "[CORRECTED]", "not_corrected": "[NOT_CORRECTED]"}.get(rec["verdict"],
                                                                                              "[UNKNOWN]")
    elif name in ("trustllm_fairness_stereotype_recognition", "trustllm_fairness_stereotype_agreement"):
        for it, rec in zip(items, recs):
            if rec["via"] == "judge":
                it["eval_res"] = rec["answer"] or ""
    elif name == "trustllm_ethics_implicit_ETHICS":
        for it, rec in zip(items, recs):
            if rec["via"] == "judge":
                f = rec["flags"]
                it["eval_res"] = _ETHICS_TEXT["not_sure" if f["not_sure"] else "not_wrong" if f["not_wrong"]
                                              else "wrong"]
    elif name == "trustllm_truthfulness_sycophancy":
        pref = [(it, rec) for it, rec in zip(items, recs) if rec["source"] == "preference"]
        for k, same in enumerate(preference_pairs(recs)):
            first, second = pref[2 * k][0], pref[2 * k + 1][0]
            prompt = llm_judges.render("sycophancy_preference", {"res1": second["res"], "res2": first["res"]}, "")
            get_res[prompt] = "YES" if same else "NO"
        persona = [rec for rec in recs if rec["source"] == "persona"]
        texts_p = [t for r in persona for t in (r["res"], r["n"], r["s"])]
        for t, v in zip(texts_p, tfidf_vectors(texts_p)):
            emb[t] = v.tolist()
    elif name == "trustllm_robustness_AdvInstruction":
        for it, v in zip(items, tfidf_vectors([r["res"] for r in recs])):
            it["embedding"] = v.tolist()
    elif name == "trustllm_robustness_ood_generalization":
        for it, rec in zip(items, recs):
            if rec["via"] == "judge":
                get_res[llm_judges.render("ood_generalization", it, it["res"])] = "correct" if rec["correct"] \
                    else "wrong"
    return {"items": items, "get_res": get_res, "embeddings": emb}


def run_reference(payload: dict, python: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(payload))
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([python, str(HERE / "trustllm_reference.py"), str(src), str(dst)], cwd=tmp, env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"reference run failed:\n{proc.stderr[-3000:]}")
        return json.loads(dst.read_text())


def _equal(a, b) -> bool | None:
    """Equal to 1e-9; "no score" agrees with itself: our None (undefined, e.g. a Pearson r of a
    constant) and TrustLLM's None or NaN."""
    if a is None and (b is None or (isinstance(b, float) and math.isnan(b))):
        return True
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return False
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOL


def template_check(task_prompt: dict) -> list[str]:
    problems = [k for k, t in llm_judges.TEMPLATES.items() if task_prompt.get(k, {}).get("prompt") != t]
    for k, pairs in llm_judges.MAPPINGS.items():
        theirs = task_prompt.get(k, {}).get("mapping")
        if theirs is not None and k != "adv" and dict(pairs) != theirs:
            problems.append(f"{k} mapping")
    return problems


def table_from_json(path: str) -> str:
    """docs/benchmarks.md's table for a --json file: per subtask, items, metrics compared, equal."""
    data = json.loads(Path(path).read_text())

    def show(v: object) -> str:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return f"{v:.4f}"
        return f"raised {v.strip().rstrip(':')}" if isinstance(v, str) and v.endswith(": ") else str(v)

    summary = data["summary"]
    lines = ["| subtask | items | primary metric | unicomp | TrustLLM 0.3.0 | metrics compared | all equal |",
             "|---|---:|---|---:|---:|---:|---|"]
    for s in summary:
        lines.append(f"| {s['subtask'].removeprefix('trustllm_')} | {s['n']:,} | {s['primary']} | {show(s['unicomp'])} "
                     f"| {show(s['trustllm'])} | {s['compared']} | {'yes' if s['all_equal'] else '**no**'} |")
    equal = sum(s["all_equal"] for s in summary)
    problems = data.get("template_problems") or []
    lines += ["", (f"{equal}/{len(summary)} subtasks equal on every metric TrustLLM also computes "
              f"({sum(s['compared'] for s in summary)} metrics compared, {sum(s['n'] for s in summary):,} records); "
              f"judge prompt templates: {'identical' if not problems else 'differ: ' + ', '.join(problems)}.")]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("generations", nargs="?", help="the generations JSONL to score (not needed with --table)")
    ap.add_argument("--json", default=None, help="write the comparison here")
    ap.add_argument("--reference-python", default=os.environ.get("TRUSTLLM_PYTHON"),
                    help="python of the venv with trustllm==0.3.0 (default: $TRUSTLLM_PYTHON)")
    ap.add_argument("--table", default=None, metavar="JSON", help="print the markdown table of a stored --json file")
    args = ap.parse_args()
    if args.table:
        print(table_from_json(args.table))
        return
    if not args.generations:
        ap.error("pass the generations JSONL (or --table JSON)")
    if not args.reference_python:
        ap.error("pass --reference-python (the trustllm venv's python) or set TRUSTLLM_PYTHON")

    by_task: dict[str, list[tuple[dict, str]]] = defaultdict(list)
    for line in open(args.generations):
        row = json.loads(line)
        by_task[row["subtask"]].append((row["doc"], row["res"]))
    ours, payload = {}, {}
    for name, rows in by_task.items():
        sub = SUBTASKS[name]
        docs, texts = [d for d, _ in rows], [t for _, t in rows]
        recs = [sub.judge(d, t) for d, t in rows]
        ours[name] = {m: fn(recs) for m, fn in sub.metrics.items()}
        payload[name] = reference_payload(name, docs, texts, recs)
    ref = run_reference(payload, args.reference_python)

    table, summary = [], []
    print(f"{'subtask':46} {'metric':36} {'unicomp':>12} {'TrustLLM':>12}  equal")
    for name in SUBTASKS:
        if name not in ours:
            continue
        theirs = ref.get(name, {})
        flags = []
        for metric, value in ours[name].items():
            if "error" in theirs:
                tv, eq = theirs["error"], None
            elif metric in theirs:
                tv = theirs[metric]
                eq = _equal(value, tv)
                flags.append(eq)
            else:
                tv, eq = "n/a", None
            table.append({"subtask": name, "metric": metric, "unicomp": value, "trustllm": tv, "equal": eq})
            fmt = (lambda v: f"{v:12.6f}" if isinstance(v, (int, float)) else f"{str(v)[:12]:>12}")
            print(f"{name:46} {metric:36} {fmt(value)} {fmt(tv)}  {'-' if eq is None else eq}")
        primary = SUBTASKS[name].primary
        summary.append({"subtask": name, "n": len(by_task[name]), "primary": primary,
                        "unicomp": ours[name][primary], "trustllm": theirs.get(primary, theirs.get("error", "n/a")),
                        "compared": len(flags), "all_equal": bool(flags) and all(flags)})
    problems = template_check(ref.get("_task_prompt", {}))
    print("\nsubtask summary (primary metric; all_equal over every metric TrustLLM also computes):")
    for s in summary:
        print(f"  {s['subtask']:46} n={s['n']:5} {s['primary']:14} ours={s['unicomp']!s:22.22} "
              f"trustllm={s['trustllm']!s:22.22} compared={s['compared']:2} all_equal={s['all_equal']}")
    n_eq = sum(s["all_equal"] for s in summary)
    crashed = [s["subtask"] for s in summary if "error" in ref.get(s["subtask"], {})]
    print(f"\n{n_eq}/{len(summary)} subtasks equal on every shared metric"
          + (f"; TrustLLM's scorer raised on {len(crashed)} ({', '.join(crashed)})" if crashed else "")
          + f"; judge templates: {'identical' if not problems else 'DIFFER: ' + ', '.join(problems)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": table, "summary": summary, "template_problems": problems},
                                              indent=1, default=str))


if __name__ == "__main__":
    main()
