"""`unicomp compress`: validate everything cheap first, then load, calibrate, compress, save."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext

from unicomp.compress.checkpoint import check_output_dir, check_storage
from unicomp.compress.registry import make_method
from unicomp.errors import UnicompError
from unicomp.outputs import clean_leftovers
from unicomp.requests import CompressRequest

__all__ = ["CompressRequest", "run_compression"]


def calibration_config(source: str, n_samples: int, seq_len: int, seed: int, path: str | None = None):
    from pydantic import ValidationError

    from unicomp.data.calibration import CalibrationConfig

    try:
        return CalibrationConfig(source=source, n_samples=n_samples, seq_len=seq_len, seed=seed,
                                 **({"path": path} if path is not None else {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UnicompError(f"calibration option {'.'.join(map(str, first['loc']))!r}: {first['msg']}",
                           "see `unicomp compress --help`") from None


def run_compression(req: CompressRequest, layer_progress=None, on_status: Callable[[str], None] = lambda s: None) -> dict:
    from unicomp.compress.distill.distributed import join_from_env, launched_world

    method = make_method(req.method, req.options)
    check_storage(req.storage, method)
    if launched_world() > 1:  # under torchrun: one student trained data-parallel (distill/distributed.py)
        if not getattr(method, "builds_student", False):
            raise UnicompError(f"{req.method} does not train, so it gains nothing from {launched_world()} processes",
                               "run it without torchrun (only distillation methods train data-parallel)")
        req = req.model_copy(update={"device": join_from_env(req.device)})
    out = check_output_dir(req.out, req.overwrite)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one process tidies
        clean_leftovers(out.absolute().parent)  # what a killed earlier save left beside it
    if method.needs_calibration and req.calibration in ("", "none"):
        raise UnicompError(f"{req.method} is data-aware and needs calibration data, but --calibration is {req.calibration!r}",
                           "pass --calibration c4 (generic web text) or reasoning, or pick a data-free method (magnitude, rtn)")
    # checked before the model is loaded; a data-free method's unit still records the (unused) default
    calibration = (calibration_config(req.calibration, req.n_samples, req.seq_len, req.seed, req.calibration_file)
                   if method.needs_calibration else calibration_config("c4", req.n_samples, req.seq_len, req.seed))

    from unicomp.runs.executor import LocalExecutor
    from unicomp.runs.models import ModelPool
    from unicomp.runs.plan import plan_compression
    from unicomp.runs.units import UnitContext

    plan = plan_compression(req, calibration)
    progress = layer_progress or (lambda description, total: nullcontext(lambda n: None))
    ctx = UnitContext(ModelPool(req.dtype, req.device), progress, on_status, req.data_dir)
    done = LocalExecutor().execute(plan, ctx, store=None, run_id=None, environment={})
    return done[plan.units[0].name].manifest
