"""The command line every bench script shares: measure into `--json OUT`, or render a stored file with `--table JSON`.

docs_tables.py regenerates docs tables through `python SCRIPT --table JSON`, so every script must keep that form."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def measure_or_render(ap: argparse.ArgumentParser, measure: Callable[[argparse.Namespace], dict[str, Any]],
                      table: Callable[[str], str]) -> None:
    """Parse the arguments; print the table of `--table JSON`, or measure, save to `--json OUT` and print its table."""
    ap.add_argument("--json", default=None, help="write the measurement here")
    ap.add_argument("--table", default=None, metavar="JSON", help="print the markdown table of a stored --json file")
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return
    if not args.json:
        ap.error("pass --json OUT (or --table JSON)")
    Path(args.json).write_text(json.dumps(measure(args), indent=1))
    print(table(args.json))
