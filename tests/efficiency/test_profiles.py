"""Device profiles: every shipped datasheet profile loads and is plausible, and the two mistakes a
user makes (a wrong name, a file missing a field) give one line naming the problem."""

from __future__ import annotations

import pytest
import yaml

from unicomp.errors import UnicompError
from unicomp.efficiency.profiles import DEVICES_DIR, known_profiles, load_profile


def test_the_shipped_profiles_load_and_are_consistent():
    names = known_profiles()
    assert {"h100-sxm", "a100-sxm", "l4", "rtx-4090", "apple-m2-max", "jetson-agx-orin"} <= set(names)
    for name in names:
        p = load_profile(name)
        assert p.name == name and p.kind == "datasheet" and p.sources
        assert p.peak_tflops["bf16"] >= p.peak_tflops["fp32"]  # no device does fp32 faster than bf16
        if "w8a8_fp8" in p.kernels:
            assert "fp8" in p.peak_tflops
    # fp8 compute exists only on Ada and Hopper; Apple's GPU has no 2:4 or int8 matrix path
    assert not load_profile("a100-sxm").has_kernel("w8a8_fp8") and load_profile("h100-sxm").has_kernel("w8a8_fp8")
    assert load_profile("apple-m2-max").kernels == ["w4a16", "w8a16"]


def test_an_unknown_profile_lists_the_known_ones():
    with pytest.raises(UnicompError) as err:
        load_profile("h100")
    assert "unknown device profile 'h100' (did you mean h100-sxm?)" in err.value.problem
    assert all(name in err.value.fix for name in known_profiles())


def test_a_profile_file_missing_a_field_names_file_and_field(tmp_path):
    data = yaml.safe_load((DEVICES_DIR / "l4.yaml").read_text())
    del data["memory_bandwidth_gbps"]
    path = tmp_path / "my-gpu.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UnicompError, match=r"my-gpu.yaml: field 'memory_bandwidth_gbps' is missing"):
        load_profile(str(path))
    data["memory_bandwidth_gbps"] = 300
    data["kernels"] = ["w4a16", "int3"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UnicompError, match=r"field 'kernels.1' is invalid"):
        load_profile(str(path))


def test_an_unknown_device_in_a_run_config_fails_when_the_config_is_read(tmp_path):
    from unicomp.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "model": "m", "evaluation": {"tasks": ["arc_easy"]},
                                    "efficiency": {"devices": ["l4", "h100"]}}))
    with pytest.raises(UnicompError) as err:
        load_config(path)
    assert "unknown device profile 'h100'" in str(err.value) and "h100-sxm" in str(err.value)
