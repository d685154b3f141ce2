"""Low-Rank Clone against independent computations: identity projections give back the teacher
exactly (tied and untied heads, q/k/v biases); the PCA start at full width is a rotation of the
teacher; the projections span the principal subspace an SVD of the normalised residual stream finds;
the materialised student is the clone and reloads from its folder; the alignment loss is the formula
written out on hooked activations; training lowers the distance to the teacher; bad sizes fail."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_llama, tiny_qwen2, tiny_tokenizer
from transformers import AutoModelForCausalLM

from unicomp.compress.distill.low_rank_clone import LowRankClone, residual_pca
from unicomp.compress.distill.losses import LossTerm
from unicomp.compress.distill.trainer import TrainConfig, train
from unicomp.errors import UnicompError


def _ids(seed: int = 0, n: int = 2, length: int = 12) -> torch.Tensor:
    return torch.randint(2, len(tiny_tokenizer()), (n, length), generator=torch.Generator().manual_seed(seed))


def _batches() -> list[dict[str, torch.Tensor]]:
    return [{"input_ids": _ids(0)}, {"input_ids": _ids(1)}]


def _logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits


def _with_random_norms_and_biases(model):
    """Tiny models start with norm scales 1 and biases 0: randomise them, so folding is exercised."""
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


@pytest.mark.parametrize("make", [tiny_llama, tiny_qwen2])  # tied / untied head, q/k/v biases
def test_identity_projections_are_the_teacher_exactly(make):
    teacher = _with_random_norms_and_biases(make())
    clone = LowRankClone(teacher, teacher.config.hidden_size, init="random")
    with torch.no_grad():
        for p in clone.projections.values():
            p.copy_(torch.eye(p.shape[0]))
        for g in clone.norms.values():
            g.fill_(1.0)
    ids = _ids(5)
    assert torch.allclose(_logits(clone, ids), _logits(teacher, ids), atol=1e-5)
    assert torch.allclose(_logits(clone.materialise(), ids), _logits(teacher, ids), atol=1e-5)


def test_the_pca_start_at_full_width_is_a_rotation_of_the_teacher():
    teacher = _with_random_norms_and_biases(tiny_llama())
    clone = LowRankClone(teacher, teacher.config.hidden_size, batches=_batches())
    u = clone.projections["embed"].detach()
    assert not torch.allclose(u.abs(), torch.eye(u.shape[0]), atol=1e-2)  # a genuine rotation, not the identity
    assert torch.allclose(u.T @ u, torch.eye(u.shape[0]), atol=1e-5)
    assert torch.allclose(_logits(clone, _ids(5)), _logits(teacher, _ids(5)), atol=1e-4)


def test_the_projections_span_the_principal_subspace_of_the_normalised_residual_stream():
    """Brute force: stack every norm's normalised input, take an SVD, compare subspaces."""
    teacher = tiny_llama()
    rows = []
    hooks = [m.register_forward_pre_hook(lambda m, a: rows.append(
        (a[0] * torch.rsqrt(a[0].pow(2).mean(-1, keepdim=True) + 1e-6)).reshape(-1, a[0].shape[-1])))
        for name, m in teacher.named_modules() if name.endswith(("layernorm", "model.norm"))]
    for batch in _batches():
        _logits(teacher, batch["input_ids"])
    for h in hooks:
        h.remove()
    x = torch.cat(rows).double()
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    reference = vh[:16].T
    u, kept = residual_pca(teacher, _batches(), 16)
    overlap = torch.linalg.svdvals(reference.T @ u.double())  # cosines of the principal angles
    assert overlap.min() > 1 - 1e-4
    assert all(0 < f <= 1 for f in kept.values()) and len(kept) == 2 * 2 + 1


def test_a_narrower_clone_materialises_into_a_plain_student_that_reloads(tmp_path):
    teacher = tiny_llama()
    clone = LowRankClone(teacher, 32, batches=_batches())
    student = clone.materialise()
    assert student.config.hidden_size == 32 and student.config.head_dim == teacher.config.head_dim
    assert student.config.num_attention_heads == teacher.config.num_attention_heads
    assert torch.allclose(_logits(student, _ids(5)), _logits(clone, _ids(5)), atol=1e-5)
    student.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert torch.allclose(_logits(reloaded, _ids(5)), _logits(student, _ids(5)), atol=1e-6)
    teacher_params = sum(p.numel() for p in teacher.parameters())
    assert sum(p.numel() for p in student.parameters()) < teacher_params


def test_the_alignment_loss_is_the_relative_error_of_projected_outputs():
    teacher = tiny_llama()
    clone = LowRankClone(teacher, 32, init="random", seed=3)
    student = clone.materialise()
    outs = {"student": [], "teacher": []}
    handles = [layer.get_submodule(n).register_forward_hook(lambda m, a, o, side=side: outs[side].append(o))
               for side, model in (("student", student), ("teacher", teacher))
               for layer in model.model.layers for n in ("self_attn.o_proj", "mlp.down_proj")]
    ids = _ids(7)
    _logits(student, ids), _logits(teacher, ids)
    for h in handles:
        h.remove()
    names = [f"layer{i}_{kind}" for i in range(2) for kind in ("attn_out", "down")]
    want = sum(((s - t @ clone.projections[n].detach()).pow(2).sum() / (t @ clone.projections[n].detach()).pow(2).sum())
               for s, t, n in zip(outs["student"], outs["teacher"], names)) / 4
    with clone.watching(teacher):
        with torch.no_grad():
            clone(ids), teacher(input_ids=ids)
            got = clone.alignment_loss()
    assert got.item() == pytest.approx(want.item(), rel=1e-4)
    assert not any(m._forward_hooks for m in teacher.modules())  # the teacher is left unhooked


def test_training_the_clone_pulls_it_towards_the_teacher():
    teacher = tiny_llama()
    clone = LowRankClone(teacher, 32, batches=_batches())
    samples = torch.randint(2, len(tiny_tokenizer()), (8, 16), generator=torch.Generator().manual_seed(0)).tolist()
    config = TrainConfig(steps=20, micro_batch_size=4, lr=1e-2, autocast="off",
                         losses=[LossTerm(kind="forward_kl"), LossTerm(kind="activation_mse")])
    out = train(clone, teacher, samples, config)
    first, last = out["history"][0]["parts"], out["history"][-1]["parts"]
    assert last["forward_kl"] < 0.7 * first["forward_kl"] and last["activation_mse"] < first["activation_mse"]
    assert sum(p.numel() for p in clone.state_dict().values()) == sum(p.numel() for p in clone.parameters())


def test_bad_sizes_fail_with_one_clear_error():
    teacher = tiny_llama()  # hidden 64, 4 heads
    with pytest.raises(UnicompError, match="larger than the teacher"):
        LowRankClone(teacher, 128, init="random")
    with pytest.raises(UnicompError, match="multiple of 4"):
        LowRankClone(teacher, 30, init="random")
    with pytest.raises(UnicompError, match="needs calibration batches"):
        LowRankClone(teacher, 32)


def test_a_stopped_clone_resumes_from_its_checkpoint_exactly(tmp_path):
    """Construction is redone (deterministic), the projections come back from the checkpoint."""
    teacher = tiny_llama()
    samples = torch.randint(2, len(tiny_tokenizer()), (8, 16), generator=torch.Generator().manual_seed(0)).tolist()
    config = TrainConfig(steps=6, micro_batch_size=2, lr=1e-2, autocast="off", checkpoint_every=1,
                         losses=[LossTerm(kind="forward_kl"), LossTerm(kind="activation_mse", weight=0.5)])
    whole = LowRankClone(teacher, 32, batches=_batches())
    uninterrupted = train(whole, teacher, samples, config)
    train(LowRankClone(teacher, 32, batches=_batches()), teacher, samples, config, checkpoint_dir=tmp_path, stop_after=3)
    resumed_clone = LowRankClone(teacher, 32, batches=_batches())
    resumed = train(resumed_clone, teacher, samples, config, checkpoint_dir=tmp_path)
    for a, b in zip(uninterrupted["history"], resumed["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert torch.allclose(_logits(whole.materialise(), _ids(5)), _logits(resumed_clone.materialise(), _ids(5)), atol=1e-5)
