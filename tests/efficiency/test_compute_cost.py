"""Device-hours converted between devices: hand-computed against the datasheet profiles' fp32 peaks."""

from __future__ import annotations

import pytest
import torch

from unicomp.efficiency.compute_cost import modeled_device_hours
from unicomp.efficiency.machine import matmul_tflops
from unicomp.efficiency.profiles import DeviceProfile, load_profile


def test_two_hours_at_half_a_teraflop_take_one_minute_on_a_60_teraflop_device():
    target = DeviceProfile(name="t", title="t", kind="datasheet", memory_gb=80, memory_bandwidth_gbps=2000,
                           peak_tflops={"fp32": 60.0})
    assert modeled_device_hours(2 * 3600, 0.5, target) == pytest.approx(1 / 60)  # 2 h x 0.5 / 60


def test_the_shipped_h100_is_faster_than_the_l4_by_their_fp32_peaks():
    h100, l4 = load_profile("h100-sxm"), load_profile("l4")
    on_h100, on_l4 = modeled_device_hours(3600, 1.0, h100), modeled_device_hours(3600, 1.0, l4)
    assert on_l4 / on_h100 == pytest.approx(h100.peak_tflops["fp32"] / l4.peak_tflops["fp32"])


def test_unknown_throughput_gives_no_number_rather_than_zero():
    l4 = load_profile("l4")
    assert modeled_device_hours(3600, None, l4) is None
    assert modeled_device_hours(3600, 1.0, l4, dtype="int4") is None  # the L4 profile lists no int4 peak


def test_this_machine_measures_a_plausible_fp32_throughput():
    tflops = matmul_tflops()
    assert 1e-3 < tflops < 1e3 and matmul_tflops() == tflops  # measured once per process


@pytest.mark.skipif(torch.cuda.is_available(), reason="measures the GPU when there is one")
def test_a_device_that_cannot_be_measured_records_no_throughput_instead_of_failing_the_run():
    assert matmul_tflops("cuda") is None  # torch without CUDA: None, and modeled hours become n/a
