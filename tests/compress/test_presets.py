"""Named presets resolve to their method and options before anything else sees them."""

from __future__ import annotations

import pytest
from test_cli import assert_one_line_error, unicomp

from unicomp.compress.presets import PRESETS
from unicomp.compress.registry import make_method
from unicomp.config import VariantConfig
from unicomp.errors import NotFoundError


def test_awq_w4a16_is_llm_compressors_symmetric_group_128_scheme() -> None:
    method = make_method("awq-w4a16", {})
    assert method.name == "awq"
    assert (method.config.bits, method.config.group_size, method.config.symmetric) == (4, 128, True)
    assert make_method("awq", {}).config.symmetric is False  # the method's own default stays AutoAWQ's


def test_a_preset_variant_is_the_same_unit_as_its_method_with_those_options() -> None:
    preset = VariantConfig(name="a", method="awq-w4a16", options={"group_size": 64})
    explicit = VariantConfig(name="a", method="awq", options={"bits": 4, "group_size": 64, "symmetric": True})
    assert (preset.method, preset.options) == (explicit.method, explicit.options)
    assert make_method(preset.method, preset.options).config == make_method(explicit.method, explicit.options).config


def test_unicomp_compress_resolves_a_preset_like_a_run_config() -> None:
    from unicomp.requests import CompressRequest

    req = CompressRequest(model="m", method="awq-w4a16", out="o", options={"group_size": 64})
    assert (req.method, req.options) == ("awq", {"bits": 4, "group_size": 64, "symmetric": True})


def test_every_preset_builds_and_unknown_names_suggest_presets() -> None:
    for name in PRESETS:
        make_method(name, {})
    with pytest.raises(NotFoundError, match="unknown compression method 'awq-w4a61'.*awq-w4a16"):
        make_method("awq-w4a61", {})


def test_ls_methods_lists_the_presets() -> None:
    result = unicomp("ls", "methods")
    assert result.returncode == 0, result.stderr
    assert "awq-w4a16" in result.stdout and "smoothquant-w8a8" in result.stdout
    bad = unicomp("compress", "--model", "nowhere", "--method", "awq-w4a61", "--out", "x")
    assert_one_line_error(bad, "awq-w4a16")
