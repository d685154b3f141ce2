"""The paper-scale plan's size and modeled GPU hours, as docs/benchmarks.md quotes them.

    UNICOMP_DATA_DIR=../shared/data HF_HUB_OFFLINE=1 python bench/paper_plan.py --json bench/results/paper_plan.json
    python bench/paper_plan.py --table bench/results/paper_plan.json

Runs `unicomp plan configs/paper.yaml --json` (offline: models are planned from their alias shapes and
datasets sized from the mirror or their documented row counts) and keeps its unit counts and estimate.
The hours are modeled from the device profiles, never measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from _cli import measure_or_render
from _machine import machine


def measure(config: str) -> dict:
    unicomp = shutil.which("unicomp") or str(Path(sys.executable).with_name("unicomp"))
    start = time.perf_counter()
    done = subprocess.run([unicomp, "plan", config, "--json"], capture_output=True, text=True, check=False,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"`unicomp plan {config} --json` failed:\n{done.stderr[-2000:]}")
    plan = json.loads(done.stdout)
    return {"machine": machine(), "config": config, "data_dir": os.environ.get("UNICOMP_DATA_DIR"),
            "plan_seconds": seconds, "units_by_kind": dict(Counter(u["kind"] for u in plan["units"])),
            "estimate": plan["estimate"]}


def table_from_json(path: str) -> str:
    data = json.loads(Path(path).read_text())
    est = data["estimate"]
    kinds = data["units_by_kind"]
    stages = sorted({s for d in est["devices"].values() for s in d["hours"]})
    lines = [f"| device ({est['label']}) | " + " | ".join(f"{s} h" for s in stages) + " | total h |",
             "|---|" + "---:|" * (len(stages) + 1)]
    for dev in est["devices"].values():
        lines.append(f"| {dev['title']} | " + " | ".join(f"{dev['hours'].get(s, 0):.1f}" for s in stages)
                     + f" | **{dev['total']:.1f}** |")
    counted = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    skipped = ", ".join(f"{n} {k}" for k, n in est.get("not_counted", {}).items())
    lines += ["", (f"`unicomp plan {data['config']}`: {sum(kinds.values()):,} units ({counted}) in "
                   f"{data['plan_seconds']:.0f} s offline; {est['units_counted']:,} counted in the hours"
                   + (f" (not counted: {skipped})" if skipped else "") + ".")]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/paper.yaml")
    measure_or_render(ap, lambda a: measure(a.config), table_from_json)


if __name__ == "__main__":
    main()
