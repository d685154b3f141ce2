"""The path-safety helper every writer uses (unicomp/outputs.py) and the owner tokens behind
its cleaning (unicomp/owner.py), checked on real folders and real (dead and live) processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unicomp import outputs, owner
from unicomp.errors import UnicompError


def dead_token() -> str:
    """The owner token of a real process that has exited."""
    proc = subprocess.run([sys.executable, "-c", "from unicomp import owner; print(owner.token())"],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_owner_tokens_tell_live_from_dead_processes():
    assert not owner.is_dead(owner.token())
    assert owner.is_dead(dead_token())
    assert not owner.is_dead(None) and not owner.is_dead("garbage")
    pid, start, host = owner.token().split(".")
    assert not owner.is_dead(f"{pid}.{start}.ffffffff")  # another machine's process: never judged dead
    assert owner.is_dead(f"{pid}.1.{host}")  # our pid with another start time: a reused pid, the owner is gone


@pytest.mark.parametrize("name, ok", [("wanda-50", True), ("gptq_w4.g64+act", True), ("../x", False), ("/abs", False),
                                      ("a/b", False), ("", False), ("-flag", False), ("x" * 64, True), ("x" * 65, False),
                                      ("a..b", False), ("sp ace", False)])
def test_names_that_become_file_names(name, ok):
    assert (outputs.name_problem(name) is None) == ok


def test_protected_folders_are_refused(tmp_path, monkeypatch):
    home = tmp_path / "home"
    work = home / "work"
    work.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    for path, why in ((".", "the current folder"), ("..", "your home folder"), (str(tmp_path), "a parent"), ("/", "a parent")):
        with pytest.raises(UnicompError, match=why):
            outputs.check_output_folder(path, overwrite=True)
    assert outputs.check_output_folder("new/deeper", overwrite=False) == Path("new/deeper")


def test_staged_folder_is_all_or_nothing_and_replaces_only_unicomp_folders(tmp_path):
    final = tmp_path / "ckpt"
    with pytest.raises(RuntimeError):
        with outputs.staged_folder(final, overwrite=False) as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("crash while writing")
    assert list(tmp_path.iterdir()) == []

    with outputs.staged_folder(final, overwrite=False) as tmp:
        (tmp / outputs.MANIFEST).write_text(json.dumps({"format_version": 1}))
        (tmp / "weights").write_text("v1")
    assert (final / "weights").read_text() == "v1" and oct(final.stat().st_mode & 0o777) != "0o700"
    with outputs.staged_folder(final, overwrite=True) as tmp:
        (tmp / outputs.MANIFEST).write_text(json.dumps({"format_version": 1}))
        (tmp / "weights").write_text("v2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"] and (final / "weights").read_text() == "v2"

    (final / outputs.MANIFEST).unlink()  # now it is somebody else's folder
    with pytest.raises(UnicompError, match="did not write"):
        with outputs.staged_folder(final, overwrite=True) as tmp:
            (tmp / "weights").write_text("v3")
    assert (final / "weights").read_text() == "v2" and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_leftovers_of_dead_processes_are_removed_and_an_interrupted_swap_is_undone(tmp_path):
    dead, alive = dead_token(), owner.token()
    (tmp_path / f".unicomp-tmp.{dead}.abc123.ckpt").mkdir()          # a save killed mid-write
    (tmp_path / f".unicomp-tmp.{dead}.def456.run.json").write_text("{")  # a report killed mid-write
    (tmp_path / f".unicomp-tmp.{alive}.ghi789.other").mkdir()        # still being written: keep
    old = tmp_path / f".unicomp-old.{dead}.jkl012.model"             # a swap killed between its renames
    (old / "content").mkdir(parents=True)
    (old / "content" / "weights").write_text("the original")
    (tmp_path / ".unicomp-notes").write_text("not ours by name")    # no owner in the name: keep
    removed = outputs.clean_leftovers(tmp_path)
    assert len(removed) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [".unicomp-notes", f".unicomp-tmp.{alive}.ghi789.other", "model"]
    assert (tmp_path / "model" / "weights").read_text() == "the original"


def test_output_files_are_written_atomically_and_never_over_a_users_file(tmp_path):
    target = tmp_path / "sub" / "run.json"
    outputs.check_output_file(target, flag="--output")
    outputs.write_text(target, json.dumps({outputs.FORMAT_KEY: 1, "run_id": "r1"}))
    outputs.check_output_file(target, flag="--output")  # unicomp's own: may be written again
    theirs = tmp_path / "theirs.json"
    theirs.write_text('{"mine": 1}')
    with pytest.raises(UnicompError, match="not written by unicomp"):
        outputs.check_output_file(theirs, flag="--output")
    with pytest.raises(UnicompError, match="is a folder"):
        outputs.check_output_file(tmp_path, flag="--output")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["run.json"]
    assert os.stat(target).st_mode & 0o044  # readable by others, as a plain write would be (umask 022)


def test_only_unicomps_own_report_files_are_rewritten(tmp_path):
    from unicomp.report.files import RETENTION_COLUMNS

    cases = {"marked.json": ({outputs.FORMAT_KEY: 1, "anything": 2}, True),
             "old-eval.json": ({"run_id": "r", "command": "eval", "environment": {}, "units": []}, True),
             "yours.json": ({"run_id": "my own", "data": [1, 2, 3]}, False),
             "yours2.json": ({"units": "metric"}, False)}
    for name, (content, ours) in cases.items():
        (tmp_path / name).write_text(json.dumps(content))
        if ours:
            outputs.check_output_file(tmp_path / name, flag="--output")
        else:
            with pytest.raises(UnicompError, match="not written by unicomp"):
                outputs.check_output_file(tmp_path / name, flag="--output")
    (tmp_path / "ours.csv").write_text(",".join(RETENTION_COLUMNS) + "\n")
    (tmp_path / "yours.csv").write_text("model,task,my,columns\n")
    outputs.check_output_file(tmp_path / "ours.csv", flag="output_dir")
    with pytest.raises(UnicompError, match="not written by unicomp"):
        outputs.check_output_file(tmp_path / "yours.csv", flag="output_dir")


def test_dotted_paths_are_checked_as_what_they_name_and_mount_points_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "keep.txt").write_text("mine")
    with pytest.raises(UnicompError, match="did not write"):
        outputs.check_output_folder("a/b/..", overwrite=True)  # that is folder a, which holds a user's file
    if os.path.ismount("/proc"):
        with pytest.raises(UnicompError, match="mount point"):
            outputs.check_output_folder("/proc", overwrite=True)
