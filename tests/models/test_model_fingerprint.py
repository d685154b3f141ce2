"""fingerprint_model: deterministic, cheap, and sensitive to every weight."""

from __future__ import annotations

import warnings

import pytest
import torch

from tiny_saved import tiny_model
from unicomp.models import fingerprint_model


def test_deterministic_and_format() -> None:
    a, b = tiny_model("llama", 300, seed=1), tiny_model("llama", 300, seed=1)
    fp = fingerprint_model(a)
    assert fp.startswith("sha256:") and len(fp) == 7 + 64
    assert fp == fingerprint_model(a) == fingerprint_model(b)


def test_changes_when_any_weight_changes() -> None:
    model = tiny_model("qwen2", 300)
    before = fingerprint_model(model)
    weight = model.model.layers[1].mlp.down_proj.weight
    with torch.no_grad():
        old = weight[3, 5].item()
        weight[3, 5] = old + 1e-3
        assert fingerprint_model(model) != before
        weight[3, 5] = old
    assert fingerprint_model(model) == before


def test_changes_with_seed_dtype_config_and_buffers() -> None:
    base = fingerprint_model(tiny_model("llama", 300, seed=0))
    assert fingerprint_model(tiny_model("llama", 300, seed=1)) != base
    assert fingerprint_model(tiny_model("llama", 300).to(torch.bfloat16)) != base
    edited = tiny_model("llama", 300)
    edited.config.rms_norm_eps = 1e-3
    assert fingerprint_model(edited) != base
    rope = tiny_model("llama", 300)
    rope.model.rotary_emb.inv_freq.mul_(2)  # a non-persistent buffer
    assert fingerprint_model(rope) != base


def test_tied_weights_hash_the_tie() -> None:
    model = tiny_model("qwen2", 300)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    before = fingerprint_model(model)
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())  # untie
    assert fingerprint_model(model) != before


def test_dynamically_quantized_model() -> None:
    """Compression methods swap modules; packed int8 weights must still be hashed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.ao.quantization.quantize_dynamic(tiny_model("llama", 300), {torch.nn.Linear},
                                                   dtype=torch.qint8)
        q2 = torch.ao.quantization.quantize_dynamic(tiny_model("llama", 300, seed=1),
                                                    {torch.nn.Linear}, dtype=torch.qint8)
    fp = fingerprint_model(q)
    assert fp == fingerprint_model(q)
    assert fp != fingerprint_model(tiny_model("llama", 300)) and fp != fingerprint_model(q2)


def test_rejects_non_modules() -> None:
    with pytest.raises(TypeError):
        fingerprint_model(object())


def test_same_across_processes(tiny_dirs) -> None:
    """It is a cache key, so a fresh interpreter must compute the same value."""
    import os
    import subprocess
    import sys

    from unicomp.models import load_model

    folder = str(tiny_dirs["llama"])
    code = ("import sys; from unicomp.models import load_model; "
            "print(load_model(sys.argv[1]).fingerprint)")
    env = dict(os.environ, PYTHONHASHSEED="random")
    out = subprocess.run([sys.executable, "-c", code, folder], capture_output=True, text=True,
                         env=env, check=True)
    assert out.stdout.strip().splitlines()[-1] == load_model(folder).fingerprint
