"""The distillation trainer: a run stopped and resumed from its checkpoint continues with the same loss
curve and weights as one never interrupted; a checkpoint of another configuration is refused; the
schedule is the textbook warm-up + cosine; distilling actually pulls the student to the teacher."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from tiny_models import tiny_llama, tiny_tokenizer

from unicomp.compress.distill.losses import LossTerm
from unicomp.compress.distill.trainer import TrainConfig, batch_indices, lr_factor, train
from unicomp.errors import UnicompError


def _samples(n: int = 12, length: int = 16) -> list[list[int]]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(2, len(tiny_tokenizer()), (n, length), generator=g).tolist()


def _config(**kw) -> TrainConfig:
    return TrainConfig(**{"steps": 6, "micro_batch_size": 2, "grad_accum": 2, "lr": 3e-3, "warmup_steps": 2,
                          "autocast": "off", "losses": [LossTerm(kind="forward_kl", temperature=2.0),
                                                         LossTerm(kind="ce", weight=0.5)], **kw})


def test_a_stopped_and_resumed_run_continues_exactly(tmp_path):
    teacher, student = tiny_llama(seed=0), tiny_llama(seed=1)
    whole = copy.deepcopy(student)
    uninterrupted = train(whole, teacher, _samples(), _config(), checkpoint_dir=tmp_path / "a")
    first = copy.deepcopy(student)
    part = train(first, teacher, _samples(), _config(checkpoint_every=1), checkpoint_dir=tmp_path / "b", stop_after=3)
    assert part["steps"] == 3 and not part["finished"]
    resumed_student = copy.deepcopy(student)  # a fresh process: the initial weights, then the checkpoint
    resumed = train(resumed_student, teacher, _samples(), _config(checkpoint_every=1), checkpoint_dir=tmp_path / "b")
    assert resumed["finished"] and [r["step"] for r in resumed["history"]] == list(range(1, 7))
    for a, b in zip(uninterrupted["history"], resumed["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6) and a["lr"] == pytest.approx(b["lr"])
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed_student.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    teacher, student = tiny_llama(seed=0), tiny_llama(seed=1)
    train(copy.deepcopy(student), teacher, _samples(), _config(), checkpoint_dir=tmp_path, stop_after=1)
    with pytest.raises(UnicompError, match="checkpoint of another training configuration"):
        train(copy.deepcopy(student), teacher, _samples(), _config(lr=1e-3), checkpoint_dir=tmp_path)


def test_distillation_pulls_the_student_towards_the_teacher():
    teacher, student = tiny_llama(seed=0), tiny_llama(seed=1)
    out = train(student, teacher, _samples(), _config(steps=25, losses=[LossTerm(kind="forward_kl")], lr=1e-2))
    losses = [r["loss"] for r in out["history"]]
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    assert out["tokens_seen"] == 25 * 2 * 2 * 16


def test_warm_up_then_cosine_to_the_floor():
    cfg = TrainConfig(steps=10, warmup_steps=2, min_lr_ratio=0.1)
    assert [lr_factor(s, cfg) for s in (0, 1)] == [0.5, 1.0]
    assert lr_factor(2, cfg) == pytest.approx(1.0)
    assert lr_factor(6, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(10, cfg) == pytest.approx(0.1)


def test_every_sample_is_seen_once_per_epoch_in_a_seeded_order():
    cfg = TrainConfig(steps=3, micro_batch_size=2, grad_accum=2, seed=7)
    epoch = [i for step in range(3) for micro in range(2) for i in batch_indices(step, micro, cfg, 12)]
    assert sorted(epoch) == list(range(12)) and epoch != list(range(12))
    assert epoch == [i for step in range(3) for micro in range(2) for i in batch_indices(step, micro, cfg, 12)]


def test_kl_without_a_teacher_fails_clearly():
    with pytest.raises(UnicompError, match="need a teacher's logits"):
        train(tiny_llama(), None, _samples(), _config())


@pytest.mark.slow
def test_two_gloo_processes_under_torchrun_equal_one_process_with_the_same_global_batch(tmp_path):
    """2 processes x 1 micro-batch of accumulation = 1 process x 2: same losses, same weights."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("ddp_train_script.py")
    out = tmp_path / "ddp.pt"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    str(script), str(out)], check=True, timeout=600, capture_output=True)
    ddp = torch.load(out, weights_only=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers ran
    try:
        student = tiny_llama(seed=1)
        single = train(student, tiny_llama(seed=0), _samples(), _config(grad_accum=2))
    finally:
        torch.set_num_threads(threads)
    assert ddp["losses"] == pytest.approx([r["loss"] for r in single["history"]], rel=1e-5)
    for name, value in student.state_dict().items():
        assert torch.allclose(ddp["state"][name], value, atol=1e-5), name


def test_cached_top_k_teacher_logits_train_like_the_live_teacher_and_are_reused_on_resume(tmp_path):
    """k = vocabulary: the cached run is the live-teacher run (the teacher ran once, not every step)."""
    teacher, student = tiny_llama(seed=0), tiny_llama(seed=1)
    kl = [LossTerm(kind="forward_kl", temperature=2.0)]
    live = train(copy.deepcopy(student), teacher, _samples(), _config(losses=kl))
    vocab = teacher.config.vocab_size
    cached = train(copy.deepcopy(student), teacher, _samples(), _config(losses=kl, teacher_topk=vocab),
                   checkpoint_dir=tmp_path, stop_after=3)
    assert (tmp_path / "teacher-topk.pt").is_file()
    calls = []
    handle = teacher.register_forward_hook(lambda *a: calls.append(1))
    resumed = train(copy.deepcopy(student), teacher, _samples(), _config(losses=kl, teacher_topk=vocab),
                    checkpoint_dir=tmp_path)
    handle.remove()
    assert calls == [] and cached["steps"] == 3  # the resumed run read the cache: the teacher never ran
    for a, b in zip(live["history"], resumed["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)


def test_cached_logits_refuse_terms_that_need_the_whole_teacher():
    with pytest.raises(UnicompError, match="cannot use cached top-k"):
        _config(teacher_topk=8, losses=[LossTerm(kind="jsd")])


def test_a_loss_mask_counts_only_the_masked_in_tokens():
    """One step's loss is cross-entropy over exactly the tokens the mask keeps (the next token of
    position j counts when mask[j + 1] is 1), computed here with torch directly."""
    student = tiny_llama(seed=1)
    samples = _samples(n=2, length=10)
    mask = [[0] * 4 + [1] * 6, [0] * 7 + [1] * 2 + [0]]
    config = _config(steps=1, grad_accum=1, losses=[LossTerm(kind="ce")], clip_grad_norm=None)
    with torch.no_grad():
        logits = student(input_ids=torch.tensor(samples)).logits
    ids, keep = torch.tensor(samples), torch.tensor(mask, dtype=torch.bool)
    want = torch.nn.functional.cross_entropy(logits[:, :-1][keep[:, 1:]], ids[:, 1:][keep[:, 1:]])
    out = train(student, None, samples, config, loss_mask=mask)
    assert out["history"][0]["loss"] == pytest.approx(want.item(), rel=1e-5)


def test_a_bare_yaml_off_turns_autocast_off():
    import yaml

    assert TrainConfig(**yaml.safe_load("{steps: 1, autocast: off}")).autocast == "off"
