"""`unicomp compress`: validate everything cheap first, then load, calibrate, compress, save."""

from __future__ import annotations

from collections.abc import Callable

from unicomp.compress.apply import compress_model
from unicomp.compress.checkpoint import check_output_dir, check_storage, save_compressed
from unicomp.compress.registry import make_method
from unicomp.errors import UnicompError
from unicomp.models.anatomy import decoder_layers
from unicomp.outputs import clean_leftovers
from unicomp.requests import CompressRequest

__all__ = ["CompressRequest", "run_compression"]


def calibration_config(source: str, n_samples: int, seq_len: int, seed: int):
    from pydantic import ValidationError

    from unicomp.data.calibration import CalibrationConfig

    try:
        return CalibrationConfig(source=source, n_samples=n_samples, seq_len=seq_len, seed=seed)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UnicompError(f"calibration option {'.'.join(map(str, first['loc']))!r}: {first['msg']}",
                           "see `unicomp compress --help`") from None


def run_compression(req: CompressRequest, layer_progress=None, on_status: Callable[[str], None] = lambda s: None) -> dict:
    method = make_method(req.method, req.options)
    check_storage(req.storage, method)
    out = check_output_dir(req.out, req.overwrite)
    clean_leftovers(out.absolute().parent)  # what a killed earlier save left beside it
    if method.needs_calibration and req.calibration in ("", "none"):
        raise UnicompError(f"{req.method} is data-aware and needs calibration data, but --calibration is {req.calibration!r}",
                           "pass --calibration c4 (generic web text) or reasoning, or pick a data-free method (magnitude, rtn)")
    cal_config = calibration_config(req.calibration, req.n_samples, req.seq_len, req.seed) if method.needs_calibration else None

    from unicomp.models.loading import load_model

    loaded = load_model(req.model, dtype=req.dtype, device=req.device)
    on_status(f"model from {loaded.source} ({loaded.location})")
    calibration = None
    if cal_config is not None:
        from unicomp.data.calibration import build_calibration
        from unicomp.evaluate.tasks.language_modelling import EVALUATION_TEXT

        calibration = build_calibration(cal_config, loaded.tokenizer, forbidden=EVALUATION_TEXT, data_dir=req.data_dir)
        on_status(f"calibration: {len(calibration.samples)} samples, {calibration.record.get('total_tokens')} tokens")
    n_layers = len(decoder_layers(loaded.model))
    if layer_progress is not None:
        with layer_progress(f"{req.method} layers", n_layers) as advance:
            report = compress_model(loaded.model, method, calibration, batch_size=req.batch_size,
                                    progress=lambda stage, done, total: advance(1), compute_dtype=req.compute_dtype)
    else:
        report = compress_model(loaded.model, method, calibration, batch_size=req.batch_size,
                                compute_dtype=req.compute_dtype)
    return save_compressed(loaded.model, loaded.tokenizer, req.out, report, base=loaded.record(), storage=req.storage,
                           overwrite=req.overwrite)
