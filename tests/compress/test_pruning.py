"""Pruning methods against independent computations on toy layers."""

from __future__ import annotations

import pytest
import torch

from unicomp.compress.prune.masks import Pattern, lowest_mask, nm_mask, parse_pattern
from unicomp.compress.hessian import Hessian
from unicomp.compress.prune.sparsegpt import sparsegpt_prune
from unicomp.compress.prune.wanda import InputNorms
from unicomp.compress.registry import make_method
from unicomp.errors import UnicompError


def correlated_inputs(n_tokens: int, dim: int, seed: int = 0) -> torch.Tensor:
    """Tokens whose channels are strongly correlated and unevenly scaled, like real activations."""
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(n_tokens, dim // 4, generator=g)
    mix = torch.randn(dim // 4, dim, generator=g)
    scale = torch.exp(torch.randn(dim, generator=g))
    return (latent @ mix + 0.1 * torch.randn(n_tokens, dim, generator=g)) * scale


def toy_linear(out_f: int, in_f: int, seed: int = 1) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(in_f, out_f, bias=False)


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_exact_unstructured_sparsity(method, sparsity):
    lin = toy_linear(32, 256)
    x = correlated_inputs(512, 256)
    m = make_method(method, {"sparsity": sparsity})
    acc = m.accumulator("x", lin)
    if acc is not None:
        acc.add(x)
    stats = m.compress_linear("x", lin, acc)
    zeros = int((lin.weight == 0).sum())
    if method == "wanda":  # per row: floor(sparsity * in) in every row
        assert all(int((row == 0).sum()) == int(256 * sparsity) for row in lin.weight)
    elif method == "magnitude":
        assert zeros == int(lin.weight.numel() * sparsity)
    else:  # sparsegpt: floor(sparsity * block numel) per 128-column block
        assert zeros == 2 * int(32 * 128 * sparsity)
    assert stats["zeros"] == zeros


@pytest.mark.parametrize("pattern", ["2:4", "4:8", "1:4"])
@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_nm_pattern_is_valid(method, pattern):
    p = parse_pattern(pattern)
    lin = toy_linear(16, 128)
    m = make_method(method, {"pattern": pattern})
    acc = m.accumulator("x", lin)
    if acc is not None:
        acc.add(correlated_inputs(256, 128))
    m.compress_linear("x", lin, acc)
    groups = (lin.weight != 0).reshape(16, 128 // p.m, p.m).sum(dim=2)
    assert int(groups.max()) <= p.n and int((lin.weight == 0).sum()) == 16 * 128 * (p.m - p.n) // p.m


def test_wanda_mask_equals_brute_force_ranking():
    lin = toy_linear(8, 24)
    x = correlated_inputs(100, 24)
    w0 = lin.weight.detach().clone()
    wanda = make_method("wanda", {"sparsity": 0.5})
    acc = wanda.accumulator("x", lin)
    for chunk in x.split(7):  # accumulation across batches
        acc.add(chunk)
    wanda.compress_linear("x", lin, acc)
    for i in range(8):  # brute force, per row: score_ij = |W_ij| * sqrt(sum_t x_tj^2), drop the 12 lowest
        scores = [(abs(float(w0[i, j])) * sum(float(x[t, j]) ** 2 for t in range(100)) ** 0.5, j) for j in range(24)]
        dropped = {j for _, j in sorted(scores)[:12]}
        assert {j for j in range(24) if lin.weight[i, j] == 0} == dropped


def test_sparsegpt_reconstructs_better_than_wanda_and_magnitude():
    x = correlated_inputs(2048, 256, seed=3)
    errors = {}
    for method in ("magnitude", "wanda", "sparsegpt"):
        lin = toy_linear(64, 256)
        ref = lin(x).detach()
        m = make_method(method, {"sparsity": 0.5})
        acc = m.accumulator("x", lin)
        if acc is not None:
            acc.add(x)
        m.compress_linear("x", lin, acc)
        errors[method] = float(((lin(x).detach() - ref) ** 2).mean())
    assert errors["sparsegpt"] < errors["wanda"] < errors["magnitude"]


def test_hessian_accumulation_is_two_over_n_xtx():
    x = correlated_inputs(300, 16)
    h = Hessian(16, torch.device("cpu"))
    for chunk in x.split(64):
        h.add(chunk)
    assert torch.allclose(h.h, 2 / 300 * x.T @ x, rtol=1e-4, atol=1e-3)
    norms = InputNorms(16, torch.device("cpu"))
    norms.add(x)
    assert torch.allclose(norms.sq, (x ** 2).sum(0), rtol=1e-5)


def test_sparsegpt_with_identity_hessian_is_magnitude_pruning():
    """With uncorrelated unit inputs (H = 2I), OBS updates vanish and the mask is by |w|."""
    w = torch.randn(8, 128)
    pruned = sparsegpt_prune(w, 2 * torch.eye(128), 0.5, block_size=128, dampening=0.01)
    expected = w.clone()
    expected[lowest_mask(w.abs(), 0.5, per_row=False)] = 0
    assert torch.allclose(pruned, expected, atol=1e-5)


def test_mask_helpers():
    scores = torch.tensor([[4.0, 1.0, 3.0, 2.0, 8.0, 5.0, 7.0, 6.0]])
    assert lowest_mask(scores, 0.5, per_row=True).tolist() == [[True, True, True, True, False, False, False, False]]
    assert nm_mask(scores, Pattern(2, 4)).tolist() == [[False, True, False, True, False, True, False, True]]


@pytest.mark.parametrize("options, needle", [
    ({"sparsity": 1.0}, "strictly between 0 and 1"),
    ({"sparsity": 0.0}, "strictly between 0 and 1"),
    ({"pattern": "4:4"}, "0 < N < M"),
    ({"pattern": "5:4"}, "0 < N < M"),
    ({"pattern": "half"}, "not 'unstructured' or N:M"),
    ({"sparsity": 0.5, "bogus": 1}, "bogus"),
])
def test_bad_options_are_one_line_errors(options, needle):
    with pytest.raises(UnicompError) as exc:
        make_method("wanda", options)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_unknown_method_suggests():
    with pytest.raises(UnicompError, match="did you mean wanda"):
        make_method("wandda", {})
