"""Compute cost of a compression in device-hours: measured on the device that ran it, and modeled on
a named device profile.

A compression's wall time is a measurement on one machine (named in the unit's environment). To
compare the cost of methods run on different machines, or to ask what a run costs on an A100, the
wall time is rescaled by matmul throughput: hours on the target = hours measured x (throughput
measured on the source, fp32 matmul, `machine.matmul_tflops`) / (the target's datasheet fp32 peak).
That assumes the compression is compute-bound in fp32 matmuls (GPTQ/SparseGPT Hessians and
updates, calibration forwards; all statistics are fp32) and that the target reaches its datasheet
peak, which no real run does: the modeled hours are a lower bound, labelled "modeled", and never
replace the measured ones.
"""

from __future__ import annotations

from unicomp.efficiency.profiles import DeviceProfile

STATISTICS_DTYPE = "fp32"  # what the calibration engine computes in (compress/ keeps fp32 statistics)


def modeled_device_hours(wall_seconds: float, source_tflops: float | None, target: DeviceProfile,
                         dtype: str = STATISTICS_DTYPE) -> float | None:
    """Hours the same compression would take on `target` (None when either throughput is unknown)."""
    peak = target.peak_tflops.get(dtype)
    if not source_tflops or not peak:
        return None
    return wall_seconds / 3600 * source_tflops / peak
