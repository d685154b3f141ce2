"""Random pruning (compress/prune/random.py), the baseline a pruning method must beat."""

from __future__ import annotations

import pytest
import torch

from tiny_models import tiny_llama
from unicomp.compress.apply import compress_model
from unicomp.compress.registry import make_method, methods


def toy(seed: int = 1) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(256, 32, bias=False)


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.7])
def test_exact_sparsity_and_the_kept_weights_are_untouched(sparsity):
    lin = toy()
    before = lin.weight.detach().clone()
    make_method("random", {"sparsity": sparsity}).compress_linear("layer", lin)
    zeros = lin.weight == 0
    assert int(zeros.sum()) == int(sparsity * before.numel())  # floor, as every pruning method counts
    assert torch.equal(lin.weight[~zeros], before[~zeros])


def test_n_of_m_pattern_holds_in_every_group():
    lin = toy()
    make_method("random", {"sparsity": 0.5, "pattern": "2:4"}).compress_linear("layer", lin)
    kept = (lin.weight != 0).reshape(32, -1, 4).sum(-1)
    assert bool((kept == 2).all())


def test_masks_depend_on_seed_and_layer_name_only():
    masks = {}
    for seed, name in [(0, "a"), (0, "a"), (1, "a"), (0, "b")]:
        lin = toy()
        make_method("random", {"sparsity": 0.5, "seed": seed}).compress_linear(name, lin)
        masks.setdefault((seed, name), []).append(lin.weight == 0)
    assert torch.equal(*masks[(0, "a")])  # the same seed and layer: the same mask
    assert not torch.equal(masks[(0, "a")][0], masks[(1, "a")][0])
    assert not torch.equal(masks[(0, "a")][0], masks[(0, "b")][0])


def test_random_ignores_magnitude_unlike_magnitude_pruning():
    """Textbook contrast: magnitude keeps the largest |w|; a random mask keeps |w| of average size."""
    lin_r, lin_m = toy(), toy()
    mean_abs = lin_r.weight.abs().mean().item()
    make_method("random", {"sparsity": 0.5}).compress_linear("layer", lin_r)
    make_method("magnitude", {"sparsity": 0.5}).compress_linear("layer", lin_m)
    kept_r = lin_r.weight[lin_r.weight != 0].abs().mean().item()
    kept_m = lin_m.weight[lin_m.weight != 0].abs().mean().item()
    assert abs(kept_r - mean_abs) < 0.1 * mean_abs < kept_m - mean_abs


def test_registered_and_runs_on_a_whole_model():
    assert "random" in methods()
    model = tiny_llama()
    report = compress_model(model, make_method("random", {"sparsity": 0.5}))
    assert report.summary["sparsity"] == pytest.approx(0.5, abs=1e-3) and report.method == "random"
