"""Regenerate the run tables of a docs page from the stored runs, so no number there is typed by hand.

A table is a block between `<!-- run-table: CONFIG -->` and `<!-- /run-table -->`. Each is rewritten
from the newest finished run of CONFIG in the config's store (its report JSON, which the run wrote
beside the store): one row per model, the ranked score of every task, each performance category's
retention, and the distance to the base; with the run id, the run's commit and this command.

    python scripts/docs_tables.py docs/benchmarks.md            # rewrite in place
    python scripts/docs_tables.py docs/benchmarks.md --check    # exit 1 if a table no longer reproduces
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from unicomp.config import load_config
from unicomp.report.files import run_output_paths
from unicomp.runs.store import Store

BLOCK = re.compile(r"(<!-- run-table: (?P<config>\S+) -->\n)(?P<body>.*?)(<!-- /run-table -->)", re.S)


def newest_report(config_path: str) -> dict[str, Any]:
    cfg = load_config(config_path)
    if not Path(cfg.store).is_file():
        raise SystemExit(f"{config_path}: no store at {cfg.store}; run `unicomp run {config_path}` first")
    store = Store(cfg.store)
    try:
        newest = store.newest_finished_run(cfg.name)
    finally:
        store.close()
    path = run_output_paths(cfg.name, cfg.output_dir)["report"]
    report = json.loads(path.read_text()) if path.is_file() else {}
    if newest is None or report.get("run_id") != newest["run_id"]:
        raise SystemExit(f"{config_path}: the report at {path} is not the newest finished run's; re-run the config")
    return report


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(config_path: str, report: dict[str, Any]) -> str:
    rows = report["rows"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    metric = {r["task"]: r["metric"] for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))
    score = {(r["model"], r["task"]): r["score"] for r in rows}
    cats = sorted({c["category"] for c in report.get("categories", []) if c["category"] != "language_modelling"})
    cat = {(c["model"], c["category"]): c["mean_retained_pct"] for c in report.get("categories", [])}
    dist = report.get("distance") or {}
    env = report["export"]["environment"]
    head = ["model", *(f"{t} {metric[t]}" for t in tasks), *(f"{c} retained" for c in cats),
            "KL mean / p99", "top-1 agree"]
    lines = [f"Generated from run `{report['run_id']}` (commit {(env.get('git_revision') or '?')[:7]}, "
             f"{env.get('device_name', '?')}) of `{config_path}` by `python scripts/docs_tables.py`.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in models:
        spec = {t: ".2f" if "perplexity" in metric[t] else ".3f" for t in tasks}
        d = dist.get(m) or {}
        kl = f"{d['kl_mean']:.3f} / {d['kl_p99']:.2f}" if d else "-"
        cells = [m, *(fmt(score.get((m, t)), spec[t]) for t in tasks),
                 *("100%" if m == "base" else fmt(cat.get((m, c)), ".1f") + "%" * (cat.get((m, c)) is not None)
                   for c in cats), kl, fmt(d.get("top1_agreement"), ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("doc", nargs="+")
    ap.add_argument("--check", action="store_true", help="compare only: exit 1 when a table differs")
    args = ap.parse_args()
    stale = []
    for doc in args.doc:
        text = Path(doc).read_text()

        def render(match: re.Match) -> str:
            body = table(match["config"], newest_report(match["config"]))
            if body != match["body"]:
                stale.append(f"{doc}: {match['config']}")
            return match.group(1) + body + match.group(4)

        new = BLOCK.sub(render, text)
        if not args.check and new != text:
            Path(doc).write_text(new)
    for s in stale:
        print(("differs: " if args.check else "rewrote: ") + s)
    if args.check and stale:
        sys.exit(1)


if __name__ == "__main__":
    main()
