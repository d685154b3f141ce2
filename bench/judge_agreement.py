"""The docs table of a judge-agreement result: `unicomp judge-agreement A B --json FILE` writes FILE,
and this renders it (docs/benchmarks.md, via scripts/docs_tables.py).

    python bench/judge_agreement.py --table bench/results/judge_agreement_smollm2.json

The comparison itself is the CLI's; this script only prints its JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _interval(stats: dict[str, Any], key: str) -> str:
    low, high = stats[f"{key}_interval"]
    if stats["items"] < 2 or low == high == stats[key]:
        return f"{stats[key]:.3f}"
    return f"{stats[key]:.3f} [{low:.3f}, {high:.3f}]"


def table_from_json(path: str) -> str:
    data = json.loads(Path(path).read_text())
    level = round(100 * data["level"])
    lines = [f"| stratum | items | accuracy ({level}% CI) | Cohen's kappa ({level}% CI) | labels seen |",
             "|---|---:|---|---|---:|",
             f"| all | {data['items']} | {_interval(data, 'accuracy')} | {_interval(data, 'kappa')} | {len(data['labels'])} |"]
    for name, stats in data.get("by_stratum", {}).items():
        lines.append(f"| {name.removeprefix('trustllm_')} | {stats['items']} | {_interval(stats, 'accuracy')} "
                     f"| {_interval(stats, 'kappa')} | {len(stats['labels'])} |")
    lines += ["", (f"{data['labelled_in_both']} items labelled by both judges, {data['sample']} sampled "
                   f"(stratified by {data.get('stratified_by') or 'nothing'}); bootstrap intervals from "
                   f"{data['resamples']:,} resamples, seed {data['seed']}.")]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--table":
        sys.exit(__doc__)
    print(table_from_json(sys.argv[2]))
