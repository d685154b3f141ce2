"""Regenerate the run tables of a docs page from the stored runs, so no number there is typed by hand.

A table is a block between `<!-- run-table: CONFIG [KIND] -->` and `<!-- /run-table -->`. Each is
rewritten from the newest finished run of CONFIG in the config's store (its report JSON, which the
run wrote beside the store), with the run id, the run's commit and this command. KIND:
  scores (default)  one row per model: the ranked score of every task, each performance category's
                    retention, and the distance to the base
  tasks             one row per task (for runs with many tasks): each model's score and its
                    retention, and the distance to the base
  dimensions        one row per model: the reliability dimensions' scores (0..1, higher = more
                    reliable) with their retention
  efficiency        one row per measured profile: size, prefill and decode speed, peak memory, and
                    the compression's wall time and device-hours

A bench table is a block between `<!-- bench-table: SCRIPT JSON -->` and `<!-- /bench-table -->`:
rewritten with what `python SCRIPT --table JSON` prints (each bench script renders its own results
file), headed by the JSON's machine and commit.

    python scripts/docs_tables.py docs/benchmarks.md            # rewrite in place
    python scripts/docs_tables.py docs/benchmarks.md --check    # exit 1 if a table no longer reproduces
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from unicomp.config import load_config
from unicomp.report.files import run_output_paths
from unicomp.runs.store import Store

BLOCK = re.compile(r"(<!-- run-table: (?P<config>\S+)(?: (?P<kind>scores|tasks|efficiency|dimensions))? -->\n)"
                   r"(?P<body>.*?)(<!-- /run-table -->)", re.DOTALL)

BENCH_BLOCK = re.compile(r"(<!-- bench-table: (?P<script>\S+) (?P<json>\S+) -->\n)(?P<body>.*?)(<!-- /bench-table -->)",
                         re.DOTALL)


def measured_on(data: dict[str, Any]) -> tuple[str, str]:
    """(CPU, threads, torch; commit) of a results file. Newer files hold `machine` (bench/_machine.py);
    older ones keep the same facts under `setup`, `measurements` or the top level, in their own words."""
    places = [d for d in (data.get("machine"), data.get("setup"), data.get("measurements"), data) if isinstance(d, dict)]

    def first(*keys: str) -> Any:
        return next((d[k] for d in places for k in keys if d.get(k)), None)

    cpu = first("cpu")
    if isinstance(cpu, dict):
        cpu = cpu.get("model_name") or cpu.get("machine")
    threads, torch = first("torch_threads", "threads"), first("torch", "torch_version")
    where = ", ".join(v for v in (cpu, threads and f"{threads} threads", torch and f"torch {torch}") if v)
    return where or "a machine not recorded", (first("git_revision", "unicomp_commit") or "")[:7] or "not recorded"


def bench_table(script: str, results: str) -> str:
    """What the bench script prints for its results file, with where and on which commit it was measured."""
    for path in (script, results):
        if not Path(path).is_file():
            raise SystemExit(f"bench-table: no file {path} (paths are relative to where this runs: the repo root)")
    done = subprocess.run([sys.executable, script, "--table", results], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"bench-table: `python {script} --table {results}` failed:\n{done.stderr.strip()}")
    where, commit = measured_on(json.loads(Path(results).read_text()))
    return (f"Generated from `{results}` (measured on {where}; commit {commit}) by "
            f"`python {script} --table {results}`.\n\n{done.stdout.strip()}\n")


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


def score_cell(score: float | None, retained_pct: float | None, spec: str = ".3f") -> str:
    """A score with its retention in brackets where there is one (never on the base)."""
    if score is None:
        return "-"
    return format(score, spec) + ("" if retained_pct is None else f" ({retained_pct:.0f}%)")


def provenance(config_path: str, report: dict[str, Any]) -> str:
    env = report["export"]["environment"]
    return (f"Generated from run `{report['run_id']}` (commit {(env.get('git_revision') or '?')[:7]}, "
            f"{env.get('device_name', '?')}) of `{config_path}` by `python scripts/docs_tables.py`.")


def unit_work(report: dict[str, Any]) -> str:
    """How long the run's results took to compute: the stored units' own wall times, summed (a run that
    resumed or reused units from another run counts them once, where they were computed)."""
    export = report["export"]
    units = export["units"]
    computed = [u for u in units if not u.get("reused")]
    minutes = sum(u.get("wall_seconds") or 0 for u in units) / 60
    sitting = ""
    if export.get("created_at") and export.get("finished_at"):
        sitting = f" (the run, start to finish: {(export['finished_at'] - export['created_at']) / 60:.1f} min)"
    return (f"{len(units)} units, {minutes:.1f} min of unit work{sitting} on {export['environment'].get('device_name', '?')}"
            + (f" ({len(units) - len(computed)} reused from earlier runs)" if len(computed) < len(units) else "")
            + "; per-unit times: `SELECT task, wall_seconds FROM units` in the store.")


def training_seconds(report: dict[str, Any]) -> dict[str, float]:
    """Training time of each distilled variant, from its compression unit's record (the unit's wall time
    also counts building the student)."""
    out = {}
    for unit in report["export"]["units"]:
        extra = ((unit.get("data") or {}).get("report") or {}).get("extra")
        training = extra.get("training") if isinstance(extra, dict) else None
        if unit.get("category") == "compression" and isinstance(training, dict) and "seconds" in training:
            out[unit["task"]] = training["seconds"]
    return out


def dimensions_table(config_path: str, report: dict[str, Any]) -> str:
    dims = report.get("dimensions") or []
    if not dims:
        raise SystemExit(f"{config_path}: run {report['run_id']} scored no reliability dimension; add trustllm tasks")
    names = list(dict.fromkeys(d["dimension"] for d in dims))
    models = list(dict.fromkeys(d["model"] for d in dims))
    cell = {(d["model"], d["dimension"]): d for d in dims}
    lines = [provenance(config_path, report), "", "| model | " + " | ".join(names) + " |", "|---" * (1 + len(names)) + "|"]
    for m in models:
        cells = [score_cell((cell.get((m, n)) or {}).get("score"),
                            None if m == "base" else (cell.get((m, n)) or {}).get("retained_pct")) for n in names]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + unit_work(report) + "\n"


def efficiency_table(config_path: str, report: dict[str, Any]) -> str:
    """Measured profiles only (the report's modeled projections stay in the report, labelled there)."""
    runtime = report.get("runtime") or []
    if not runtime:
        raise SystemExit(f"{config_path}: run {report['run_id']} measured no runtime; add an `efficiency:` block")
    footprint, compression = report.get("footprint") or {}, report.get("compression") or {}
    training = training_seconds(report)
    head = ["model", "parameters", "bits / weight", "dtype", "batch", "prefill tok/s", "TTFT s", "decode tok/s",
            "prefill / decode vs base", "peak RSS MiB", "kernels", "compression s", "of it training s",
            "device-hours"]
    lines = [provenance(config_path, report), "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runtime:
        fp, comp = footprint.get(r["model"]) or {}, compression.get(r["model"]) or {}
        params = fp.get("parameters")
        kernels = ", ".join(f"{k} x{n}" for k, n in sorted((r.get("kernels") or {}).items()))
        cells = [r["model"] + ("" if r.get("measured_on", r["model"]) == r["model"] else f" (as {r['measured_on']})"),
                 "-" if params is None else f"{params / 1e6:.1f}M", fmt(fp.get("bits_per_weight"), ".2f"), r["dtype"],
                 str(r["batch"]), fmt(r.get("prefill_tokens_per_s"), ".0f"), fmt(r.get("ttft_s"), ".3f"),
                 fmt(r.get("decode_tokens_per_s"), ".1f"),
                 f"{fmt(r.get('prefill_speedup'), '.2f')}x / {fmt(r.get('decode_speedup'), '.2f')}x",
                 fmt(None if r.get("peak_memory_bytes") is None else r["peak_memory_bytes"] / 2**20, ".0f"),
                 kernels or "-", fmt(comp.get("wall_seconds"), ".0f"), fmt(training.get(r["model"]), ".0f"),
                 fmt(comp.get("device_hours"), ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table(config_path: str, report: dict[str, Any]) -> str:
    rows = report["rows"]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    metric = {r["task"]: r["metric"] for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))
    score = {(r["model"], r["task"]): r["score"] for r in rows}
    cats = sorted({c["category"] for c in report.get("categories", []) if c["category"] != "language_modelling"})
    cat = {(c["model"], c["category"]): c["mean_retained_pct"] for c in report.get("categories", [])}
    dist = report.get("distance") or {}
    head = ["model", *(f"{t} {metric[t]}" for t in tasks), *(f"{c} retained" for c in cats),
            "KL mean / p99", "top-1 agree"]
    lines = [provenance(config_path, report), "",
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


def tasks_table(config_path: str, report: dict[str, Any]) -> str:
    """The scores table turned: tasks down, models across ("score (retained %)")."""
    rows = report["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    tasks = list(dict.fromkeys((r["task"], r["metric"]) for r in rows))
    cell = {(r["model"], r["task"], r["metric"]): r for r in rows}
    lines = [provenance(config_path, report), "", "| task | metric | " + " | ".join(models) + " |",
             "|---|---|" + "---:|" * len(models)]
    for task, metric in tasks:
        spec = ".2f" if "perplexity" in metric else ".3f"
        cells = [score_cell((cell.get((m, task, metric)) or {}).get("score"),
                            None if m == "base" else (cell.get((m, task, metric)) or {}).get("retained_pct"), spec)
                 for m in models]
        lines.append(f"| {task} | {metric} | " + " | ".join(cells) + " |")
    dist = report.get("distance") or {}
    if dist:
        lines.append("| KL to base, mean / p99 | | " + " | ".join(
            f"{dist[m]['kl_mean']:.2f} / {dist[m]['kl_p99']:.2f}" if m in dist else "-" for m in models) + " |")
    return "\n".join(lines) + "\n\n" + unit_work(report) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("doc", nargs="+")
    ap.add_argument("--check", action="store_true", help="compare only: exit 1 when a table differs")
    ap.add_argument("--only", choices=("run", "bench"), default=None,
                    help="only run tables (need the stores) or only bench tables (need only the repo)")
    args = ap.parse_args()
    stale = []
    for doc in args.doc:
        text = Path(doc).read_text()

        def render(match: re.Match, doc: str = doc) -> str:
            make = {"efficiency": efficiency_table, "dimensions": dimensions_table,
                    "tasks": tasks_table}.get(match["kind"], table)
            body = make(match["config"], newest_report(match["config"]))
            if body != match["body"]:
                stale.append(f"{doc}: {match['config']} {match['kind'] or 'scores'}")
            return match.group(1) + body + match.group(5)

        def render_bench(match: re.Match, doc: str = doc) -> str:
            body = bench_table(match["script"], match["json"])
            if body != match["body"]:
                stale.append(f"{doc}: {match['json']}")
            return match.group(1) + body + match.group(5)

        new = text if args.only == "bench" else BLOCK.sub(render, text)
        new = new if args.only == "run" else BENCH_BLOCK.sub(render_bench, new)
        if not args.check and new != text:
            Path(doc).write_text(new)
    for s in stale:
        print(("differs: " if args.check else "rewrote: ") + s)
    if args.check and stale:
        sys.exit(1)


if __name__ == "__main__":
    main()
