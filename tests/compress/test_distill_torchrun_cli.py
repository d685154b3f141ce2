"""`unicomp compress` under torchrun: two gloo processes train one depth student data-parallel, rank 0
writes the folder, and the weights equal one process accumulating both processes' micro-batches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

OPTIONS = ["--option", "drop_layers=1", "--option", "keep_first_last=false",
           "--option", "data={n_samples: 8, seq_len: 16}", "--n-samples", "2", "--seq-len", "16"]


def _train(steps_accum: int) -> str:
    return (f"train={{steps: 3, micro_batch_size: 2, grad_accum: {steps_accum}, lr: 0.001, autocast: off, "
            "checkpoint_every: 0}")


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(next(folder.glob("*.safetensors"))))


def test_two_processes_under_torchrun_train_the_student_one_process_would(tiny_model, tmp_path, mirror):
    env = {**os.environ, "UNICOMP_DATA_DIR": str(mirror), "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "unicomp", "compress", "-m", str(tiny_model), "--method", "minitron_depth",
                          "-o", str(tmp_path / "ddp"), *OPTIONS, "--option", _train(1)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    single = subprocess.run([sys.executable, "-m", "unicomp", "compress", "-m", str(tiny_model), "--method", "minitron_depth",
                             "-o", str(tmp_path / "one"), *OPTIONS, "--option", _train(2)],
                            env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    a, b = _weights(tmp_path / "ddp"), _weights(tmp_path / "one")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name
    assert not list(tmp_path.glob(".*.training"))  # the training folder is gone once the student is saved


def test_a_method_that_does_not_train_is_refused_under_torchrun(tiny_model, tmp_path, mirror):
    from test_cli import assert_one_line_error, unicomp

    proc = unicomp("compress", "-m", str(tiny_model), "--method", "magnitude", "-o", str(tmp_path / "m"),
                   env={"UNICOMP_DATA_DIR": str(mirror), "WORLD_SIZE": "2"})
    assert_one_line_error(proc, "gains nothing from 2 processes", "without torchrun")
