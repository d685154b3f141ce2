"""Finding 4: user text is printed as typed, never parsed as Rich markup."""

from __future__ import annotations

import shutil

from fault_helpers import assert_one_line_error, unicomp


def test_brackets_in_a_task_name_are_shown_not_parsed(tmp_path):
    proc = unicomp("eval", "-m", "whatever", "-t", "arc_easy,[/bold]", "--store", str(tmp_path / "s.sqlite"))
    assert_one_line_error(proc, "unknown task '[/bold]'")


def test_brackets_in_a_model_path_are_reported_exactly(tmp_path, tiny_model):
    folder = tmp_path / "out" / "[v2]" / "ckpt"
    shutil.copytree(tiny_model, folder)
    proc = unicomp("eval", "-m", "out/[v2]/ckpt", "-t", "arc_easy", "--limit", "2", "--store", "s.sqlite", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "model: out/[v2]/ckpt from local" in proc.stdout and "fallback" not in proc.stderr
    assert str(folder) in proc.stderr  # the status line with the resolved location
    missing = unicomp("eval", "-m", "out/[red]missing[/red]", "-t", "arc_easy", "--store", "s.sqlite", cwd=tmp_path)
    assert_one_line_error(missing, "out/[red]missing[/red]")
