"""Distillation losses against their textbook formulas on random logits: values and gradients equal
autograd through the direct (unchunked, full-softmax) formula, chunked equals unchunked, masks and
ignored labels drop tokens, and bad inputs fail with one clear error."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unicomp.compress.distill.losses import LossTerm, distillation_loss, hidden_mse, logit_loss
from unicomp.errors import UnicompError

B, S, V = 2, 5, 37  # 37: no chunk size used below divides it


def _logits(seed: int, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(B, S, V, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float() * scale


def _direct(kind: str, z_s: torch.Tensor, z_t: torch.Tensor, mask: torch.Tensor, t: float, beta: float) -> torch.Tensor:
    """The formulas written out on full softmaxes; autograd gives the reference gradient."""
    log_ps, log_pt = F.log_softmax(z_s / t, -1), F.log_softmax(z_t / t, -1)
    ps, pt = log_ps.exp(), log_pt.exp()
    if kind == "forward_kl":
        row = F.kl_div(log_ps, pt, reduction="none").sum(-1)  # torch's KL(p_t || p_s)
    elif kind == "reverse_kl":
        row = (ps * (log_ps - log_pt)).sum(-1)
    else:
        m = beta * pt + (1 - beta) * ps
        row = beta * (pt * (log_pt - m.log())).sum(-1) + (1 - beta) * (ps * (log_ps - m.log())).sum(-1)
    w = mask.float()
    return t**2 * (row * w).sum() / w.sum()


@pytest.mark.parametrize("kind", ["forward_kl", "reverse_kl", "jsd"])
@pytest.mark.parametrize("temperature", [1.0, 2.5])
@pytest.mark.parametrize("chunk", [V, 8, 5])
def test_logit_losses_and_gradients_equal_the_direct_formula(kind, temperature, chunk):
    teacher = _logits(1)
    mask = torch.ones(B, S, dtype=torch.bool)
    mask[1, 3:] = False  # padding
    ours_in = _logits(0).requires_grad_()
    ref_in = ours_in.detach().clone().requires_grad_()
    ours = logit_loss(kind, ours_in, teacher, mask=mask, temperature=temperature, beta=0.3, chunk=chunk)
    ref = _direct(kind, ref_in, teacher, mask, temperature, 0.3)
    ours.backward()
    ref.backward()
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    assert torch.allclose(ours_in.grad, ref_in.grad, rtol=1e-4, atol=1e-6)
    assert not ours_in.grad[1, 3:].any()  # masked tokens get no gradient


def test_chunked_equals_unchunked_and_kl_of_identical_distributions_is_zero():
    s, t = _logits(2), _logits(3)
    for kind in ("forward_kl", "reverse_kl", "jsd"):
        whole = logit_loss(kind, s, t, chunk=V)
        assert logit_loss(kind, s, t, chunk=4).item() == pytest.approx(whole.item(), rel=1e-6)
        assert logit_loss(kind, s, s.clone(), chunk=4).item() == pytest.approx(0.0, abs=1e-6)


def test_cross_entropy_equals_torch_with_ignored_labels():
    z = _logits(4).requires_grad_()
    labels = torch.randint(0, V, (B, S), generator=torch.Generator().manual_seed(5))
    labels[0, :2] = -100
    ref_in = z.detach().clone().requires_grad_()
    ours = logit_loss("ce", z, labels=labels, chunk=6, temperature=4.0)  # temperature does not apply to data
    ref = F.cross_entropy(ref_in.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    ours.backward()
    ref.backward()
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    assert torch.allclose(z.grad, ref_in.grad, atol=1e-6)


def test_bf16_student_logits_get_a_bf16_gradient_close_to_fp32():
    s32, t = _logits(6), _logits(7)
    s16 = s32.to(torch.bfloat16).requires_grad_()
    ref = s16.detach().float().requires_grad_()
    logit_loss("forward_kl", s16, t, temperature=2.0).backward()
    logit_loss("forward_kl", ref, t, temperature=2.0).backward()
    assert s16.grad.dtype == torch.bfloat16
    assert torch.allclose(s16.grad.float(), ref.grad, atol=1e-3)


def test_weighted_objective_is_the_sum_of_its_terms_and_hidden_mse_is_the_textbook_one():
    s, t = _logits(8), _logits(9)
    labels = torch.randint(0, V, (B, S), generator=torch.Generator().manual_seed(10))
    hs, ht = torch.randn(B, S, 4), torch.randn(B, S, 4)
    terms = [LossTerm(kind="forward_kl", weight=0.5, temperature=2.0), LossTerm(kind="ce", weight=0.25),
             LossTerm(kind="hidden_mse", weight=2.0)]
    total, parts = distillation_loss(terms, s, t, labels=labels, student_hidden=hs, teacher_hidden=ht)
    expected = (0.5 * logit_loss("forward_kl", s, t, temperature=2.0) + 0.25 * logit_loss("ce", s, labels=labels)
                + 2.0 * F.mse_loss(hs, ht))
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(parts) == {"forward_kl", "ce", "hidden_mse"}
    assert hidden_mse(hs, ht).item() == pytest.approx(F.mse_loss(hs, ht).item(), rel=1e-6)


def test_bad_inputs_fail_with_one_clear_error():
    s = _logits(11)
    with pytest.raises(UnicompError, match="teacher logits of the student's shape"):
        logit_loss("forward_kl", s, s[..., :-1])  # another vocabulary
    with pytest.raises(UnicompError, match="unknown logit loss"):
        logit_loss("kl", s, s)
    with pytest.raises(UnicompError, match="needs the data's labels"):
        logit_loss("ce", s)
    with pytest.raises(UnicompError, match="at least one loss term"):
        distillation_loss([], s, s)


@pytest.mark.parametrize("k", [V, 6])
@pytest.mark.parametrize("chunk", [V, 8])
def test_forward_kl_on_cached_top_k_equals_the_renormalised_formula(k, chunk):
    """With k = V it is the full forward KL; with k < V it is KL(p_t restricted to its top k and
    renormalised || p_s), written out with a scatter into the full vocabulary."""
    teacher, t = _logits(1), 2.0
    top = teacher.topk(k, dim=-1)
    mask = torch.ones(B, S)
    mask[1, 3:] = 0
    a = _logits(2).requires_grad_()
    got = logit_loss("forward_kl", a, None, mask=mask, temperature=t, chunk=chunk, teacher_topk=(top.values, top.indices))
    got.backward()
    b = _logits(2).requires_grad_()
    sparse = torch.zeros(B, S, V).scatter(-1, top.indices, F.softmax(top.values / t, -1))
    log_ps = F.log_softmax(b / t, -1)
    row = (sparse * (sparse.clamp(min=1e-30).log() - log_ps)).sum(-1)
    want = t**2 * (row * mask).sum() / mask.sum()
    want.backward()
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert torch.allclose(a.grad, b.grad, atol=1e-6)
    if k == V:
        full = logit_loss("forward_kl", _logits(2), teacher, mask=mask, temperature=t)
        assert got.item() == pytest.approx(full.item(), rel=1e-5)


def test_only_forward_kl_takes_cached_teacher_logits():
    top = _logits(1).topk(4, dim=-1)
    with pytest.raises(UnicompError, match="whole distribution"):
        logit_loss("reverse_kl", _logits(2), None, teacher_topk=(top.values, top.indices))
    with pytest.raises(UnicompError, match="lrc method"):
        distillation_loss([LossTerm(kind="activation_mse")], _logits(2), _logits(1))
