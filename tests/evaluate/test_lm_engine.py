"""The evaluation engine against a brute-force computation, and its batch/padding invariance."""

from __future__ import annotations

import pytest
import torch

from tiny_models import tiny_llama, tiny_qwen2, tiny_tokenizer
from unicomp.errors import UnicompError
from unicomp.evaluate.lm import LanguageModel

CTX = "Question: What is the boiling point of water?\nAnswer:"
REQUESTS = [(CTX, " " + c) for c in ("100 degrees Celsius.", "The lazy dog", "a roof", "twist")] + [
    ("A man is sitting on a roof.", " He starts pulling"),
    ("To open a jar ", "twist the lid"),  # trailing space moves to the continuation, as in lm-eval
    ("", "The quick brown fox"),  # empty context: the prefix token conditions
]


def brute_force(model, tokenizer, ctx_ids, cont_ids) -> tuple[float, bool]:
    """One unpadded forward pass over context + continuation, the textbook way."""
    ids = torch.tensor([ctx_ids + cont_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    rows = logprobs[len(ctx_ids) - 1: len(ctx_ids) - 1 + len(cont_ids)]
    lp = sum(rows[k, t].item() for k, t in enumerate(cont_ids))
    greedy = all(rows[k].argmax().item() == t for k, t in enumerate(cont_ids))
    return lp, greedy


@pytest.mark.parametrize("make_model", [tiny_llama, tiny_qwen2], ids=["llama", "qwen2"])
def test_loglikelihood_matches_brute_force(make_model):
    model, tok = make_model(), tiny_tokenizer()
    lm = LanguageModel(model, tok, batch_size=16)
    got = lm.loglikelihood(REQUESTS)
    for (ctx_ids, cont_ids), (lp, greedy) in zip(lm.encode_pairs(REQUESTS), got):
        ref_lp, ref_greedy = brute_force(model, tok, ctx_ids, cont_ids)
        assert lp == pytest.approx(ref_lp, abs=1e-4)
        assert greedy == ref_greedy


def test_context_trailing_space_moves_to_continuation():
    lm = LanguageModel(tiny_llama(), tiny_tokenizer())
    (ctx, cont), = lm.encode_pairs([("To open a jar ", "twist")])
    tok = tiny_tokenizer()
    assert tok.decode(ctx) == "To open a jar"
    assert tok.decode(cont) == " twist"


@pytest.mark.parametrize("make_model", [tiny_llama, tiny_qwen2], ids=["llama", "qwen2"])
def test_results_do_not_depend_on_batch_size_packing_or_padding(make_model):
    model, tok = make_model(), tiny_tokenizer()
    reference = LanguageModel(model, tok, batch_size=1, pack_choices=False).loglikelihood(REQUESTS)
    for batch_size in (1, 3, 16):
        for pack in (True, False):
            got = LanguageModel(model, tok, batch_size=batch_size, pack_choices=pack).loglikelihood(REQUESTS)
            for (a, ga), (b, gb) in zip(got, reference):
                assert a == pytest.approx(b, abs=1e-4)
                assert ga == gb
    tok.padding_side = "left"  # our rows are right-padded whatever the tokenizer says
    try:
        got = LanguageModel(model, tok, batch_size=16).loglikelihood(REQUESTS)
    finally:
        tok.padding_side = "right"
    assert [round(a, 4) for a, _ in got] == [round(b, 4) for b, _ in reference]


def test_packing_changes_nothing_but_work_done():
    lm = LanguageModel(tiny_llama(), tiny_tokenizer(), batch_size=16)
    rows = lm._plan_rows(lm.encode_pairs(REQUESTS[:4]))
    assert len(rows) == 1  # four choices with one shared context: one row
    unpacked = LanguageModel(tiny_llama(), tiny_tokenizer(), pack_choices=False)
    assert len(unpacked._plan_rows(unpacked.encode_pairs(REQUESTS[:4]))) == 4


def test_rolling_loglikelihood_equals_sum_over_tokens():
    model, tok = tiny_llama(), tiny_tokenizer()
    text = "Robert Boulter is an English film, television and theatre actor. " * 12
    lm = LanguageModel(model, tok, batch_size=4, max_length=32)  # forces several windows
    (total, n_tokens), = lm.loglikelihood_rolling([text])
    ids = tok.encode(text)
    assert n_tokens == len(ids)
    # brute force: every token predicted from at most max_length previous tokens (prefix token first)
    seq = [lm.prefix_token_id] + ids
    expected = 0.0
    windows = lm.rolling_windows(text)
    assert sum(len(p) for _, p in windows) == len(ids)
    for ctx, pred in windows:
        lp, _ = brute_force(model, tok, ctx, pred)
        expected += lp
    assert total == pytest.approx(expected, abs=1e-3)
    assert len(seq) > 32


def test_generate_until_stops_and_is_batch_invariant():
    model, tok = tiny_llama(), tiny_tokenizer()
    reqs = [("The quick", {"until": ["."], "max_gen_toks": 12}), ("Question: What is", {"until": ["\n"], "max_gen_toks": 6})]
    one = LanguageModel(model, tok, batch_size=1).generate_until(reqs)
    many = LanguageModel(model, tok, batch_size=8).generate_until(reqs)
    assert one == many
    assert all("." not in o for o in one[:1]) and all("\n" not in o for o in one[1:])
    # greedy reference with a plain loop, no cache, no padding
    ids = tok.encode("Question: What is")
    out = []
    for _ in range(6):
        with torch.no_grad():
            nxt = int(model(torch.tensor([ids + out])).logits[0, -1].argmax())
        out.append(nxt)
    assert one[1] == tok.decode(out).split("\n")[0]


def test_bad_batch_size():
    with pytest.raises(UnicompError, match="batch size"):
        LanguageModel(tiny_llama(), tiny_tokenizer(), batch_size=0)
