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


def test_a_distillation_killed_mid_training_resumes_from_its_checkpoint(tiny_model, tmp_path):
    """SIGKILL after step 3 of 4 (checkpoints every 2 steps): the re-run picks up at step 2, and its
    loss curve and student equal an uninterrupted run's; the training folder is gone afterwards."""
    import json
    from pathlib import Path

    import torch
    import yaml
    from safetensors.torch import load_file

    def config(name: str) -> Path:
        raw = {"name": name, "model": str(tiny_model), "store": str(tmp_path / f"{name}.sqlite"),
               "output_dir": str(tmp_path / name), "evaluation": {"tasks": ["arc_easy"], "limit": 2, "batch_size": 2},
               "calibration": {"source": "c4", "n_samples": 2, "seq_len": 32}, "distance": {"enabled": False},
               "variants": [{"name": "depth", "method": "minitron_depth", "options": {
                   "drop_layers": 1, "keep_first_last": False, "data": {"n_samples": 4, "seq_len": 32},
                   "train": {"steps": 4, "micro_batch_size": 2, "lr": 1e-3, "autocast": "off", "checkpoint_every": 2}}}]}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    killed = unicomp("run", str(config("killed")), failpoint="distill.step:SIGKILL:3")
    assert killed.returncode == -9
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert [p.name for p in checkpoints.iterdir() if p.name.endswith(".training")]  # the resumable state is there
    resumed = unicomp("run", str(config("killed")))
    clean = unicomp("run", str(config("clean")))
    assert resumed.returncode == 0 and clean.returncode == 0, resumed.stderr[-2000:] + clean.stderr[-2000:]

    def history_and_weights(name: str):
        folder = next(p for p in (tmp_path / name / "checkpoints").iterdir() if p.is_dir() and not p.name.startswith("."))
        manifest = json.loads((folder / "unicomp.json").read_text())
        return manifest["report"]["extra"]["training"]["history"], load_file(str(folder / "model.safetensors"))

    (a, wa), (b, wb) = history_and_weights("killed"), history_and_weights("clean")
    assert [r["step"] for r in a] == [1, 2, 3, 4]
    for x, y in zip(a, b):
        assert abs(x["loss"] - y["loss"]) <= 1e-5 * max(1.0, abs(y["loss"]))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wb)
    assert not [p for p in checkpoints.iterdir() if p.name.endswith(".training")]
