"""The CLI's printers. Markup is off everywhere: task names, paths and model outputs are user
text, and `[v2]` in a path or `[/bold]` in a task list must print as typed, not be parsed as Rich
markup (which changed paths and crashed the CLI). Styling is applied explicitly with `Text`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

# Wide tables stay readable when output goes to a file or a pipe (rich assumes 80 columns there).
console = Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, markup=False, highlight=False, width=None if sys.stderr.isatty() else 160)


def error(message: str) -> None:
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)


def warning(message: str) -> None:
    err_console.print(Text.assemble(("warning:", "bold yellow"), " ", message), soft_wrap=True)


def status(message: str) -> None:
    err_console.print(Text(message, style="dim"), soft_wrap=True)


class _ItemsPerSecond(TextColumn):
    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # type: ignore[override]
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} items/s" if speed else "- items/s")


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[float], None]]:
    """A bar with items/s and ETA; yields `advance(n)`."""
    with Progress(TextColumn("{task.description}", markup=False, style="bold"), BarColumn(), MofNCompleteColumn(),
                  _ItemsPerSecond(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                  console=err_console, transient=False) as bar:
        task_id = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task_id, n)
        bar.update(task_id, completed=total)
