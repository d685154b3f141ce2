"""Findings 6 and 7: Ctrl-C, SIGTERM and SIGKILL at exact points of `compress` and `run`
(delivered by the process itself at a named failpoint, see unicomp/failpoints.py). Afterwards:
no partial checkpoint under the user's name, what a dead process left is cleaned by the next
command, the run list says "interrupted", earlier results are intact, and the message printed
on Ctrl-C is true for the command that was interrupted."""

from __future__ import annotations

from fault_helpers import assert_one_line_error, config_file, leftovers, store_rows, unicomp

WANDA = ("--method", "wanda", "--sparsity", "0.5", "--n-samples", "4", "--seq-len", "32")


def test_compress_interrupted_at_three_points_leaves_nothing_then_succeeds(tmp_path, tiny_model):
    out = tmp_path / "ckpt"
    compress = ("compress", "-m", str(tiny_model), *WANDA, "--out", str(out))

    for signal in ("SIGINT", "SIGTERM"):  # Ctrl-C and a polite kill, after the first layer
        proc = unicomp(*compress, failpoint=f"compress.layer:{signal}:1")
        line = assert_one_line_error(proc, "interrupted", code=130)
        assert "nothing was written" in line and "store" not in line  # what is true for compress
        assert not out.exists() and leftovers(tmp_path) == []

    killed = unicomp(*compress, failpoint="save.staged:SIGKILL")  # the whole checkpoint is staged
    assert killed.returncode == -9
    assert not out.exists()  # never a partial folder under the user's name
    [staged] = leftovers(tmp_path)
    assert staged.startswith(".unicomp-tmp.") and staged.endswith(".ckpt")

    done = unicomp(*compress)  # the next save beside it removes what the dead process left
    assert done.returncode == 0, done.stderr
    assert (out / "unicomp.json").is_file() and leftovers(tmp_path) == []


def test_run_killed_at_four_points_keeps_every_finished_unit_once(tmp_path, tiny_model):
    config = config_file(tmp_path, tiny_model, tasks="[arc_easy, piqa]",
                         variants="  - {name: wanda-50, method: wanda, options: {sparsity: 0.5}}\n")
    store = tmp_path / "store.sqlite"
    units = lambda: store_rows(store, "SELECT kind, task FROM units ORDER BY kind, task")  # noqa: E731

    # Ctrl-C inside the transaction of the first unit: rolled back whole, nothing half-written.
    proc = unicomp("run", str(config), failpoint="store.commit:SIGINT:1")
    line = assert_one_line_error(proc, "interrupted", code=130)
    assert "finished units are kept in the store" in line
    assert units() == [] and store_rows(store, "SELECT COUNT(*) FROM records") == [(0,)]

    # SIGKILL once the second base task is scored but not stored: the first one is kept.
    assert unicomp("run", str(config), failpoint="evaluate.scored:SIGKILL:2").returncode == -9
    assert units() == [("evaluate", "arc_easy")]

    # SIGKILL with the variant's checkpoint staged: a hidden leftover, no checkpoint.
    assert unicomp("run", str(config), failpoint="save.staged:SIGKILL").returncode == -9
    checkpoints = tmp_path / "out" / "checkpoints"
    assert len(leftovers(checkpoints)) == 1 and not [p for p in checkpoints.iterdir() if not p.name.startswith(".")]

    # SIGKILL in the middle of the distance unit.
    assert unicomp("run", str(config), failpoint="distance.window:SIGKILL:1").returncode == -9
    assert leftovers(checkpoints) == []  # this run cleaned the leftover before starting

    listed = unicomp("runs", "--store", str(store))
    assert listed.returncode == 0
    statuses = store_rows(store, "SELECT status FROM runs ORDER BY created_at")
    assert statuses == [("interrupted",)] * 4  # the killed ones too, now that their processes are gone
    assert listed.stdout.count("interrupted") >= 4 and "killed" in listed.stdout

    finished = unicomp("run", str(config))
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr.count("(reused from the store)") == 5  # all but the distance unit
    expected = [("compress", "wanda-50"), ("distance", "wikitext_kl"), ("evaluate", "arc_easy"), ("evaluate", "arc_easy"),
                ("evaluate", "piqa"), ("evaluate", "piqa")]
    assert units() == expected  # every unit exactly once
    assert store_rows(store, "SELECT status FROM runs ORDER BY created_at")[-1] == ("finished",)
