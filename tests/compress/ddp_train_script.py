"""Run by test_distill_trainer under `torchrun --nproc_per_node 2`: train the tiny student on gloo and
save the weights from rank 0 (argv[1])."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: tiny_models
from test_distill_trainer import _config, _samples  # noqa: E402
from tiny_models import tiny_llama  # noqa: E402

from unicomp.compress.distill.trainer import train  # noqa: E402

dist.init_process_group("gloo")
torch.set_num_threads(1)
student = tiny_llama(seed=1)
out = train(student, tiny_llama(seed=0), _samples(), _config(grad_accum=1))
if dist.get_rank() == 0:
    torch.save({"state": student.state_dict(), "losses": [r["loss"] for r in out["history"]]}, sys.argv[1])
dist.destroy_process_group()
