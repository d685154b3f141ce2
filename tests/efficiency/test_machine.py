"""This CPU as a measured device profile: a valid profile the roofline can project with, the
threads restored, and the raw measurements kept. No speed is asserted (timings stay in bench/)."""

from __future__ import annotations

import torch
from transformers import LlamaConfig

from unicomp.efficiency.machine import measure_this_cpu
from unicomp.efficiency.roofline import Format, project


def test_measured_profile_projects_like_a_datasheet_one():
    threads = torch.get_num_threads()
    profile, raw = measure_this_cpu(threads=1, buffer_bytes=32 << 20)
    assert torch.get_num_threads() == threads and raw["threads"] == 1
    assert profile.kind == "measured" and profile.name == "this-cpu" and "1 threads" in profile.title
    assert profile.memory_bandwidth_gbps == raw["read_bandwidth_bytes_per_s"] / 1e9 > 0
    assert set(profile.peak_tflops) == {"fp32", "bf16"} and profile.kernels == ["w4a16", "w8a16", "w8a8_int8"]
    cfg = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2)
    dense = project(cfg, Format("dense", dtype="fp32"), profile)
    w4 = project(cfg, Format("w4a16", group_size=32), profile)
    assert w4["kernel"] and dense["label"] == w4["label"] == "modeled"
    assert w4["weight_bytes"] < dense["weight_bytes"]
