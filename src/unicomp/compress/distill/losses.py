"""Distillation losses on logits, computed in vocabulary chunks, composable with weights.

A 150k-entry vocabulary makes every [tokens, vocab] fp32 intermediate (softmaxes, log-softmaxes,
their products) as large as the logits themselves; autograd would keep several of them alive
until backward. So each logit loss here is one `torch.autograd.Function` that walks the
vocabulary in chunks three times (log-normalisers; per-token sums; the gradient), holds only
[chunk, tokens] fp32 temporaries, and saves nothing for backward but the gradient it already
computed (in the logits' dtype).

With student logits z_s, teacher logits z_t, temperature T, u = z_s / T, p_s = softmax(u),
p_t = softmax(z_t / T), and token weights w (a mask; the mean is over weighted tokens):

- forward KL   T^2 KL(p_t || p_s),                            d/du = p_s - p_t
- reverse KL   T^2 KL(p_s || p_t),                            d/du = p_s (d - KL), d = log p_s - log p_t
- JSD(beta)    T^2 [beta KL(p_t || m) + (1-beta) KL(p_s || m)], m = beta p_t + (1-beta) p_s
               (generalised JSD, as in GKD, Agarwal et al. 2024),  d/du = p_s (g - <p_s, g>), g = (1-beta) log(p_s / m)
- cross-entropy on the data labels (T = 1; label -100 ignored): d/dz = p_s - onehot
- forward KL on cached top-k teacher logits: p_t is the softmax of the k kept logits / T (the
  teacher renormalised on its top k, as sparse-logit KD caches do), d/du = p_s - p_t scattered on
  the k entries; with k = V it is the forward KL above

and d/dz_s = d/du / T. The T^2 factor keeps gradient magnitudes comparable across temperatures
(Hinton et al. 2015). Hidden-state MSE and activation alignment (Low-Rank Clone's, computed by the
student itself) are ordinary autograd: they have no vocabulary.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from unicomp.errors import UnicompError

LOGIT_LOSSES = ("forward_kl", "reverse_kl", "jsd", "ce")
DEFAULT_CHUNK = 8192  # vocabulary entries per chunk: 8k x tokens fp32 temporaries
IGNORE_INDEX = -100


class LossTerm(BaseModel):
    """One weighted term of a distillation objective."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["forward_kl", "reverse_kl", "jsd", "ce", "hidden_mse", "activation_mse"]
    weight: float = Field(1.0, ge=0)
    temperature: float = Field(1.0, gt=0)
    beta: float = Field(0.5, gt=0, lt=1)  # JSD's mixing weight of the teacher


def needs_aligning_student() -> UnicompError:
    """The error for activation_mse without a student that computes it (raised by losses and trainer)."""
    return UnicompError("activation_mse needs a student that aligns its activations with the teacher's",
                        "use it with the lrc method (Low-Rank Clone), or drop the term")


def _lse(logits: torch.Tensor, scale: float, chunk: int) -> torch.Tensor:
    """Row-wise logsumexp of logits / scale, [N] fp32, one vocabulary chunk at a time."""
    parts = [torch.logsumexp(logits[:, i:i + chunk].float() / scale, dim=-1) for i in range(0, logits.shape[-1], chunk)]
    return torch.logsumexp(torch.stack(parts), dim=0)


def _topk_forward_kl(z_s: torch.Tensor, values: torch.Tensor, index: torch.Tensor, t: float, chunk: int,
                     row_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward KL against a teacher known only on its top-k logits `values` at `index` ([N, k])."""
    lse_s = _lse(z_s, t, chunk)
    log_pt = torch.log_softmax(values.float() / t, dim=-1)
    pt = log_pt.exp()
    log_ps = z_s.gather(1, index).float() / t - lse_s[:, None]
    loss = (pt * (log_pt - log_ps)).sum(-1)
    grad = torch.empty_like(z_s)
    for i in range(0, z_s.shape[1], chunk):
        g = (z_s[:, i:i + chunk].float() / t - lse_s[:, None]).exp()
        local = index - i
        inside = (local >= 0) & (local < g.shape[1])
        g.scatter_add_(1, local.clamp(0, g.shape[1] - 1), torch.where(inside, -pt, 0.0))
        grad[:, i:i + chunk] = g * (row_scale / t)[:, None]
    return loss, grad


def _row_loss_and_grad(kind: str, z_s: torch.Tensor, z_t: torch.Tensor | None, labels: torch.Tensor | None,
                       temperature: float, beta: float, chunk: int,
                       row_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row loss [N] fp32, and row_scale[:, None] x d(row loss)/d z_s as [N, V] in z_s's dtype (each
    chunk scaled in fp32 before it is written, so no fp32 [N, V] tensor ever exists)."""
    n, v = z_s.shape
    t = temperature
    lse_s = _lse(z_s, t, chunk)
    lse_t = _lse(z_t, t, chunk) if z_t is not None else None
    grad = torch.empty_like(z_s)
    rows = torch.arange(n, device=z_s.device)

    def chunk_terms(i: int) -> tuple[torch.Tensor, ...]:
        log_ps = z_s[:, i:i + chunk].float() / t - lse_s[:, None]
        log_pt = None if z_t is None else z_t[:, i:i + chunk].float() / t - lse_t[:, None]
        return log_ps, log_pt

    if kind == "ce":
        valid = labels != IGNORE_INDEX
        target = torch.where(valid, labels, 0)
        picked = z_s.gather(1, target[:, None]).squeeze(1).float()
        loss = torch.where(valid, lse_s - picked, 0.0)
        for i in range(0, v, chunk):
            log_ps, _ = chunk_terms(i)
            g = log_ps.exp()
            inside = valid & (target >= i) & (target < i + chunk)
            g[rows[inside], target[inside] - i] -= 1.0
            grad[:, i:i + chunk] = g * row_scale[:, None]  # ignored labels have row_scale 0
        return loss, grad

    # pass 2: the per-row loss and, for reverse KL / JSD, <p_s, g> (the softmax Jacobian's correction)
    loss = torch.zeros(n, device=z_s.device)
    inner = torch.zeros(n, device=z_s.device)
    for i in range(0, v, chunk):
        log_ps, log_pt = chunk_terms(i)
        ps, pt = log_ps.exp(), log_pt.exp()
        if kind == "forward_kl":
            loss += (pt * (log_pt - log_ps)).sum(-1)
        elif kind == "reverse_kl":
            d = log_ps - log_pt
            loss += (ps * d).sum(-1)
            inner += (ps * d).sum(-1)
        else:  # jsd
            log_m = torch.log(beta * pt + (1 - beta) * ps)
            loss += beta * (pt * (log_pt - log_m)).sum(-1) + (1 - beta) * (ps * (log_ps - log_m)).sum(-1)
            inner += (ps * (1 - beta) * (log_ps - log_m)).sum(-1)
    # pass 3: the gradient with respect to u = z_s / T, then / T for z_s
    for i in range(0, v, chunk):
        log_ps, log_pt = chunk_terms(i)
        ps, pt = log_ps.exp(), log_pt.exp()
        if kind == "forward_kl":
            g = ps - pt
        elif kind == "reverse_kl":
            g = ps * ((log_ps - log_pt) - inner[:, None])
        else:
            log_m = torch.log(beta * pt + (1 - beta) * ps)
            g = ps * ((1 - beta) * (log_ps - log_m) - inner[:, None])
        grad[:, i:i + chunk] = g * (row_scale / t)[:, None]
    return loss, grad


class _ChunkedLogitLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z_s, z_t, labels, weights, kind, temperature, beta, chunk, topk=None):  # noqa: ANN001, ANN205
        scale = (1.0 if kind == "ce" else temperature**2) / weights.sum().clamp(min=1e-12)
        if topk is not None:
            row_loss, grad = _topk_forward_kl(z_s.detach(), topk[0], topk[1], temperature, chunk, weights * scale)
        else:
            row_loss, grad = _row_loss_and_grad(kind, z_s.detach(), None if z_t is None else z_t.detach(), labels,
                                                temperature, beta, chunk, weights * scale)
        ctx.save_for_backward(grad)
        return (row_loss * weights).sum() * scale

    @staticmethod
    def backward(ctx, grad_output):  # noqa: ANN001, ANN205
        (grad,) = ctx.saved_tensors
        return grad * grad_output.to(grad.dtype), None, None, None, None, None, None, None, None


def logit_loss(kind: str, student: torch.Tensor, teacher: torch.Tensor | None = None, *,
               labels: torch.Tensor | None = None, mask: torch.Tensor | None = None, temperature: float = 1.0,
               beta: float = 0.5, chunk: int = DEFAULT_CHUNK,
               teacher_topk: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Mean over (masked) tokens of one logit loss; logits [..., V], mask/labels [...].

    `kind` is one of forward_kl, reverse_kl, jsd (these need `teacher`) or ce (needs `labels`; its
    ignored labels count as masked tokens). forward_kl also takes the teacher as cached top-k logits
    instead: `teacher_topk` = (values, indices), each [..., k]."""
    if kind not in LOGIT_LOSSES:
        raise UnicompError(f"unknown logit loss {kind!r}", f"use one of {', '.join(LOGIT_LOSSES)}")
    v = student.shape[-1]
    z_s = student.reshape(-1, v)
    z_t = None
    if kind == "ce":
        if labels is None:
            raise UnicompError("cross-entropy needs the data's labels", "pass labels= (token ids, -100 to ignore)")
        labels = labels.reshape(-1).to(z_s.device)
    elif teacher_topk is not None and teacher is None:
        if kind != "forward_kl":
            raise UnicompError(f"{kind} needs the teacher's whole distribution, and only its top-k logits are cached",
                               "use forward_kl with cached teacher logits, or turn the cache off (teacher_topk: null)")
        values, index = teacher_topk
        if values.shape[:-1] != student.shape[:-1] or index.shape != values.shape:
            raise UnicompError(f"cached teacher logits {tuple(values.shape)} do not match the student's logits "
                               f"{tuple(student.shape)}", "report this as a bug: the cache is keyed by its windows")
        weights = torch.ones(z_s.shape[0], device=z_s.device) if mask is None else mask.reshape(-1).float().to(z_s.device)
        k = values.shape[-1]
        return _ChunkedLogitLoss.apply(z_s, None, None, weights, kind, float(temperature), float(beta), int(chunk),
                                       (values.reshape(-1, k).to(z_s.device), index.reshape(-1, k).to(z_s.device).long()))
    else:
        labels = None  # the KL terms are on the teacher's distribution; padding is the mask's job
        if teacher is None or teacher.shape != student.shape:
            got = None if teacher is None else tuple(teacher.shape)
            raise UnicompError(f"{kind} needs teacher logits of the student's shape {tuple(student.shape)}, got {got}",
                               "teacher and student must share the tokenizer (vocabulary) and the batch")
        z_t = teacher.reshape(-1, v)
    weights = torch.ones(z_s.shape[0], device=z_s.device) if mask is None else mask.reshape(-1).float().to(z_s.device)
    if labels is not None:
        weights = weights * (labels != IGNORE_INDEX)
    t = 1.0 if kind == "ce" else float(temperature)  # cross-entropy is on the data, not softened
    return _ChunkedLogitLoss.apply(z_s, z_t, labels, weights, kind, t, float(beta), int(chunk))


def hidden_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between hidden states [..., H] over (masked) tokens, averaged over H."""
    if student.shape != teacher.shape:
        raise UnicompError(f"hidden states differ in shape: student {tuple(student.shape)}, teacher {tuple(teacher.shape)}",
                           "use hidden_mse with students as wide as the teacher (depth pruning); a narrower "
                           "Low-Rank Clone aligns through its projections with activation_mse")
    per_token = (student.float() - teacher.float().detach()).pow(2).mean(-1).reshape(-1)
    if mask is None:
        return per_token.mean()
    w = mask.reshape(-1).float()
    return (per_token * w).sum() / w.sum().clamp(min=1e-12)


def distillation_loss(terms: list[LossTerm], student_logits: torch.Tensor, teacher_logits: torch.Tensor | None = None,
                      *, labels: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                      student_hidden: torch.Tensor | None = None, teacher_hidden: torch.Tensor | None = None,
                      teacher_topk: tuple[torch.Tensor, torch.Tensor] | None = None,
                      alignment: torch.Tensor | None = None,
                      chunk: int = DEFAULT_CHUNK) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of `terms`, and each term's value (for the progress bar and the log).

    `alignment` is the student's own activation-alignment loss (Low-Rank Clone), for activation_mse."""
    if not terms:
        raise UnicompError("a distillation objective needs at least one loss term", "e.g. [{kind: forward_kl}]")
    total = student_logits.new_zeros((), dtype=torch.float32)
    parts: dict[str, float] = {}
    for term in terms:
        if term.weight == 0:
            continue
        if term.kind == "hidden_mse":
            if student_hidden is None or teacher_hidden is None:
                raise UnicompError("hidden_mse needs student and teacher hidden states", "run both with output_hidden_states")
            value = hidden_mse(student_hidden, teacher_hidden, mask)
        elif term.kind == "activation_mse":
            if alignment is None:
                raise needs_aligning_student()
            value = alignment
        else:
            value = logit_loss(term.kind, student_logits, teacher_logits, labels=labels, mask=mask,
                               temperature=term.temperature, beta=term.beta, chunk=chunk,
                               teacher_topk=teacher_topk if term.kind == "forward_kl" else None)
        total = total + term.weight * value
        parts[term.kind] = float(value.detach())
    return total, parts


__all__ = ["LossTerm", "distillation_loss", "hidden_mse", "logit_loss"]
