"""How far a compressed model's next-token distributions are from its base's.

Accuracy can stay flat while answers change ("Accuracy is Not All You Need", Dutta et al.
2024); llama.cpp's perplexity tool reports the same distance-to-base statistics. On fixed
windows of WikiText-2 test text we compute, at every position, KL(P_base || P_variant) over
the full vocabulary and whether both models' top-1 tokens agree. Both models must share a
tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from unicomp.errors import UnicompError
from unicomp.failpoints import failpoint


@dataclass
class Distance:
    kl_mean: float
    kl_p99: float
    kl_max: float
    top1_agreement: float
    tokens: int
    per_window_kl: list[float]

    def scores(self) -> dict[str, float]:
        return {"kl_mean": self.kl_mean, "kl_p99": self.kl_p99, "kl_max": self.kl_max,
                "top1_agreement": self.top1_agreement, "tokens": float(self.tokens)}


def token_windows(tokenizer, text: str, seq_len: int, windows: int) -> list[list[int]]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    n = min(windows, len(ids) // seq_len)
    if n == 0:
        raise UnicompError(f"text of {len(ids)} tokens has no window of {seq_len}", "lower distance.seq_len")
    return [ids[i * seq_len:(i + 1) * seq_len] for i in range(n)]


@torch.inference_mode()
def distribution_distance(base: torch.nn.Module, variant: torch.nn.Module, windows: list[list[int]],
                          progress=None) -> Distance:
    kls, agree, per_window = [], 0, []
    for window in windows:
        ids = torch.tensor([window])
        lp_base = F.log_softmax(base(input_ids=ids.to(_device(base))).logits[0].float(), dim=-1)
        lp_var = F.log_softmax(variant(input_ids=ids.to(_device(variant))).logits[0].float(), dim=-1).to(lp_base.device)
        kl = (lp_base.exp() * (lp_base - lp_var)).sum(dim=-1).clamp_min(0)
        if not bool(torch.isfinite(kl).all()):
            raise UnicompError(f"distance to base, window {len(kls)}: KL is {float(kl[~torch.isfinite(kl)][0])}: a model's "
                               "next-token distribution is NaN or has zero-probability tokens",
                               "check the variant checkpoint (NaN or overflowing weights), or compute in float32")
        kls.append(kl.cpu())
        per_window.append(float(kl.mean()))
        agree += int((lp_base.argmax(-1) == lp_var.argmax(-1)).sum())
        failpoint("distance.window")
        if progress is not None:
            progress(1)
    allkl = torch.cat(kls).double()
    p99 = float(torch.quantile(allkl, 0.99))
    return Distance(float(allkl.mean()), p99, float(allkl.max()), agree / allkl.numel(), int(allkl.numel()),
                    per_window)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def check_same_tokenizer(a, b) -> None:
    if a.get_vocab() != b.get_vocab():
        raise UnicompError("base and variant tokenizers differ", "distance to base needs the same vocabulary")


__all__ = ["Distance", "distribution_distance", "token_windows", "check_same_tokenizer"]
