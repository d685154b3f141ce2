"""The files a `unicomp run` leaves in its output_dir: the report JSON and the retention CSV.

Their locations are checked before the run starts (a file in the way, an unwritable folder, a
user's own file with the same name), and they are written atomically through outputs.py.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from unicomp.errors import UnicompError
from unicomp.outputs import CSV_HEADERS, FORMAT_KEY, check_output_file, write_text

RETENTION_COLUMNS = ["model", "task", "category", "metric", "score", "delta", "retained_pct", "n_items", "items",
                     "correct_to_wrong", "wrong_to_correct", "prediction_agreement"]
CSV_HEADERS.add(",".join(RETENTION_COLUMNS))


def run_output_paths(name: str, output_dir: str | Path) -> dict[str, Path]:
    out = Path(output_dir).expanduser()
    return {"report": out / f"{name}-report.json", "csv": out / f"{name}-retention.csv",
            "html": out / f"{name}-report.html"}


def check_run_outputs(name: str, output_dir: str | Path) -> dict[str, Path]:
    out = Path(output_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise UnicompError(f"output_dir {out} is a file", "set output_dir to a folder")
    paths = run_output_paths(name, out)
    for path in paths.values():
        check_output_file(path, flag="output_dir")
    return paths


def retention_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RETENTION_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_run_outputs(name: str, output_dir: str | Path, result: dict[str, Any]) -> dict[str, Path]:
    paths = check_run_outputs(name, output_dir)  # again: a file may have appeared during the run
    write_text(paths["report"], json.dumps({FORMAT_KEY: 1, **result}, indent=2, sort_keys=True, default=str))
    write_text(paths["csv"], retention_csv(result["rows"]))
    from unicomp.report.html import render

    write_text(paths["html"], render(result))
    return paths
