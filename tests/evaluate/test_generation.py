"""The continuous-batching decoder: what it generates equals greedy `transformers.generate`, and
does not depend on batch size, on which prompts share a batch, or on their order."""

from __future__ import annotations

import pytest
import torch
from tiny_models import CORPUS, tiny_llama, tiny_qwen2, tiny_tokenizer

from unicomp.errors import UnicompError
from unicomp.evaluate.generation import cut_at_stop
from unicomp.evaluate.lm import LanguageModel

PROMPTS = [CORPUS[i % 6][: 8 + 9 * i] for i in range(12)]
REQUESTS = [(p, {"until": ["dog", "Answer"], "max_gen_toks": 4 + 5 * (i % 4)}) for i, p in enumerate(PROMPTS)]


def _reference(model, tok, lm: LanguageModel, requests) -> list[str]:
    """Greedy `generate`, one prompt at a time, cut as lm-eval cuts."""
    out = []
    for prompt, kw in requests:
        ids = torch.tensor([lm.tok_encode(prompt)])
        gen = model.generate(input_ids=ids, max_new_tokens=kw["max_gen_toks"], do_sample=False, pad_token_id=1,
                             eos_token_id=lm.eos_token_ids())
        out.append(cut_at_stop(tok.decode(gen[0, ids.shape[1]:].tolist(), skip_special_tokens=True), kw["until"]))
    return out


@pytest.mark.parametrize("build", [tiny_llama, tiny_qwen2])
def test_equal_to_greedy_generate_at_every_batch_size(build):
    model, tok = build(), tiny_tokenizer()
    expected = _reference(model, tok, LanguageModel(model, tok), REQUESTS)
    for batch_size in (1, 3, 16):
        assert LanguageModel(model, tok, batch_size=batch_size).generate_until(REQUESTS) == expected


def test_order_and_company_do_not_change_an_answer():
    model, tok = tiny_llama(), tiny_tokenizer()
    lm = LanguageModel(model, tok, batch_size=4)
    alone = [lm.generate_until([r])[0] for r in REQUESTS[:5]]
    together = lm.generate_until(list(reversed(REQUESTS)))[::-1]
    assert together[:5] == alone


def test_finish_reason_and_token_counts():
    model, tok = tiny_llama(), tiny_tokenizer()
    lm = LanguageModel(model, tok, batch_size=4)
    gens = lm.generate([(p, {"until": [], "max_gen_toks": 7}) for p in PROMPTS[:4]])
    for g, p in zip(gens, PROMPTS):
        assert g.prompt_tokens == len(lm.tok_encode(p))
        assert (g.finish_reason, g.completion_tokens) in {("length", 7)} or (g.finish_reason == "stop" and g.completion_tokens <= 7)
    # a stop string the model produces ends its row early, and the answer is cut before it
    first = lm.generate([(PROMPTS[5], {"until": [], "max_gen_toks": 12})])[0]
    if len(first.text) > 3:
        stop = first.text[2:4]
        cut = lm.generate([(PROMPTS[5], {"until": [stop], "max_gen_toks": 12})])[0]
        assert cut.finish_reason == "stop" and cut.text == first.text.split(stop)[0]
        assert cut.completion_tokens < first.completion_tokens


def test_static_fallback_gives_the_same_answers():
    model, tok = tiny_llama(), tiny_tokenizer()
    lm = LanguageModel(model, tok, batch_size=5)
    continuous = lm.generate_until(REQUESTS)
    lm.decoder.continuous = False  # the path taken by sliding-window / hybrid-cache models
    assert lm.generate_until(REQUESTS) == continuous


def test_sampling_is_seeded_and_reproducible():
    model, tok = tiny_llama(), tiny_tokenizer()
    kw = {"until": [], "max_gen_toks": 12, "temperature": 1.5, "top_p": 0.95, "seed": 7}
    lm1, lm4 = LanguageModel(model, tok, batch_size=1), LanguageModel(model, tok, batch_size=4)
    reqs = [(p, kw) for p in PROMPTS[:6]]
    first = lm1.generate_until(reqs)
    assert lm1.generate_until(reqs) == first and lm4.generate_until(reqs) == first
    greedy = lm1.generate_until([(p, {"until": [], "max_gen_toks": 12}) for p in PROMPTS[:6]])
    assert first != greedy
    other = lm1.generate_until([(p, dict(kw, seed=8)) for p in PROMPTS[:6]])
    assert other != first


def test_an_empty_prompt_starts_from_bos():
    model, tok = tiny_llama(), tiny_tokenizer()
    lm = LanguageModel(model, tok)
    assert lm.generate_until([("", {"max_gen_toks": 5})]) == lm.generate_until([("<|endoftext|>", {"max_gen_toks": 5})])


def test_long_prompts_lose_their_oldest_tokens_and_say_so():
    model, tok = tiny_llama(), tiny_tokenizer()  # context of 256 tokens
    lm = LanguageModel(model, tok, batch_size=2)
    long_prompt = " ".join(CORPUS[:12])
    n = len(lm.tok_encode(long_prompt))
    assert n > 256
    g = lm.generate([(long_prompt, {"until": [], "max_gen_toks": 16})])[0]
    assert g.truncated_tokens == n - (256 - 16) and g.prompt_tokens == 256 - 16
    ids = lm.tok_encode(long_prompt)[-(256 - 16):]
    ref = model.generate(input_ids=torch.tensor([ids]), max_new_tokens=16, do_sample=False, pad_token_id=1,
                         eos_token_id=lm.eos_token_ids())
    assert g.text == tok.decode(ref[0, len(ids):].tolist(), skip_special_tokens=True)
    with pytest.raises(UnicompError, match="max_gen_toks=300 leaves no room"):
        lm.generate([("x", {"max_gen_toks": 300})])


def test_chat_messages_need_a_chat_template():
    model, tok = tiny_llama(), tiny_tokenizer()
    lm = LanguageModel(model, tok)
    messages = [{"role": "user", "content": "What is the boiling point of water?"}]
    with pytest.raises(UnicompError, match="no chat template"):
        lm.generate_until([(messages, {"max_gen_toks": 4})])
    chat_tok = tiny_tokenizer()
    saved = chat_tok.chat_template
    try:
        chat_tok.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
        lm = LanguageModel(model, chat_tok)
        rendered = "user: What is the boiling point of water?\nassistant:"
        assert lm.render(messages) == rendered
        assert lm.generate_until([(messages, {"max_gen_toks": 6})]) == lm.generate_until([(rendered, {"max_gen_toks": 6})])
    finally:
        chat_tok.chat_template = saved


@pytest.mark.slow
def test_smollm2_answers_do_not_depend_on_batch_size(mirror):
    from unicomp.evaluate.prompts import contexts
    from unicomp.evaluate.runner import load_task_docs
    from unicomp.evaluate.tasks import get_task
    from unicomp.models.loading import load_model

    loaded = load_model("smollm2-135m-instruct", dtype="float32")
    spec = get_task("gsm8k")
    docs, resolved = load_task_docs(spec, 6)
    prompts = contexts(spec, docs, resolved.fewshot_rows, 2)  # 2-shot keeps this test short
    kw = dict(spec.generation_kwargs(), max_gen_toks=40)
    reqs = [(p, kw) for p in prompts]
    one = LanguageModel(loaded.model, loaded.tokenizer, batch_size=1).generate_until(reqs)
    six = LanguageModel(loaded.model, loaded.tokenizer, batch_size=6).generate_until(reqs)
    three = LanguageModel(loaded.model, loaded.tokenizer, batch_size=3).generate_until(reqs[::-1])[::-1]
    assert one == six == three
    assert _reference(loaded.model, loaded.tokenizer, LanguageModel(loaded.model, loaded.tokenizer), reqs[:2]) == one[:2]
