"""Finding 1: `--overwrite` never deletes what unicomp did not write, and replaces atomically."""

from __future__ import annotations

from pathlib import Path

from fault_helpers import assert_one_line_error, leftovers, manifest, snapshot, unicomp, unicomp_all

MAG = ("--method", "magnitude", "--sparsity")


def user_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "thesis.tex").write_text("three years of work")
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "results.csv").write_text("a,b\n1,2\n")
    return root


def test_overwrite_never_touches_the_current_folder_its_parents_or_home(tmp_path, tiny_model):
    home = user_folder(tmp_path / "home")
    work = user_folder(home / "project" / "work")
    before = snapshot(home)
    cases = ((".", "the current folder"), ("..", "a parent of the current folder"), (str(home), "your home folder"))
    procs = unicomp_all(*[{"args": ("compress", "-m", str(tiny_model), *MAG, "0.5", "--out", out, "--overwrite"),
                           "cwd": work, "env": {"HOME": str(home)}} for out, _ in cases])
    for proc, (_, needle) in zip(procs, cases):
        assert_one_line_error(proc, needle, "never writes an output over it")
    assert snapshot(home) == before  # nothing deleted, nothing added


def test_overwrite_refuses_a_folder_unicomp_did_not_write(tmp_path, tiny_model):
    mine = user_folder(tmp_path / "my_dir")
    before = snapshot(mine)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    into_mine, onto_file = unicomp_all(
        *[{"args": ("compress", "-m", str(tiny_model), *MAG, "0.5", "--out", str(out), "--overwrite")}
          for out in (mine, a_file)])
    assert_one_line_error(into_mine, "holds files unicomp did not write", "unicomp.json")
    assert_one_line_error(onto_file, "is a file")
    assert snapshot(mine) == before and a_file.read_text() == "keep me"


def test_overwrite_replaces_a_unicomp_folder_and_a_kill_mid_swap_keeps_the_old_one(tmp_path, tiny_model):
    out = tmp_path / "ckpt"
    first = unicomp("compress", "-m", str(tiny_model), *MAG, "0.5", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert manifest(out)["report"]["config"]["sparsity"] == 0.5
    replaced = unicomp("compress", "-m", str(tiny_model), *MAG, "0.3", "--out", str(out), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert manifest(out)["report"]["config"]["sparsity"] == 0.3
    assert leftovers(tmp_path) == []
    kept = snapshot(out)

    # SIGKILL between moving the old folder aside and moving the new one in: for a moment the
    # path is empty. The next unicomp command in that folder puts the old checkpoint back.
    killed = unicomp("compress", "-m", str(tiny_model), *MAG, "0.7", "--out", str(out), "--overwrite",
                     failpoint="save.swap:SIGKILL")
    assert killed.returncode == -9
    assert not out.exists() and len(leftovers(tmp_path)) == 2  # the old folder aside, the new one staged
    gc = unicomp("gc", str(tmp_path), "--store", str(tmp_path / "none.sqlite"))
    assert gc.returncode == 0, gc.stderr
    assert leftovers(tmp_path) == [] and snapshot(out) == kept
