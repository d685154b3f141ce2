"""The paper's reasoning tasks equal lighteval 0.13's gsm8k|4, math_500|4 and gpqa:diamond|5.

lighteval is not a unicomp dependency, so its outputs are recorded, not imported:
* prompts: sha256 of the chat messages and plain-text prompt lighteval's own Pipeline and
  PromptManager build for rows 0-19 (lighteval_prompt_hashes.json, no dataset text);
* scores: lighteval's metric values for hand-made generations (paper_reasoning_cases.py).
Both are written and re-checked by bench/paper_protocols.py run in a venv with lighteval 0.13
(it compares every document's prompt and ~4,800 generated-answer variants, all equal).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from paper_reasoning_cases import CASES, synthetic_gpqa

from unicomp.errors import NotFoundError
from unicomp.evaluate.choice_letters import extract_letter
from unicomp.evaluate.prompts import build_context, prompt_text, select_fewshot
from unicomp.evaluate.runner import load_task_docs
from unicomp.evaluate.tasks import get_task
from unicomp.evaluate.tasks.paper_reasoning import (
    GPQA_CHOICE_SEED,
    gold_positions,
    gpqa_options,
)

HASHES = json.loads((Path(__file__).parent / "lighteval_prompt_hashes.json").read_text())
ROWS = 20


def _sha(prompt) -> str:
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture(scope="module")
def built(mirror):
    """name -> (spec, docs, exemplars, pool) as the runner builds them, all rows (lighteval's order needs them)."""
    out = {}
    for name in ("gsm8k_paper", "math_500"):
        spec = get_task(name)
        docs, resolved = load_task_docs(spec, None)
        pool = resolved.fewshot_rows
        out[name] = (spec, docs, select_fewshot(spec, docs, pool, spec.num_fewshot), pool)
    spec = get_task("gpqa_diamond")
    docs, pool = spec.process_docs(synthetic_gpqa()), spec.process_docs(synthetic_gpqa())
    out["gpqa_diamond"] = (spec, docs, select_fewshot(spec, docs, pool, spec.num_fewshot), pool)
    return out


@pytest.mark.parametrize("name", ["gsm8k_paper", "math_500", "gpqa_diamond"])
def test_prompts_equal_lighteval_for_the_first_20_rows(built, name):
    from unicomp.evaluate.lighteval_protocol import renderer
    from unicomp.evaluate.tasks import paper_reasoning

    spec, docs, shots, _ = built[name]
    plain = renderer({"gsm8k_paper": paper_reasoning.GSM8K, "math_500": paper_reasoning.MATH,
                      "gpqa_diamond": paper_reasoning.GPQA}[name], chat=False)
    for row in range(ROWS):
        want = HASHES[name][str(row)]
        assert [s["_row"] for s in shots[row]] == want["exemplar_rows"]
        messages = build_context(spec, docs[row], shots[row])
        assert _sha(messages) == want["chat"], f"{name} row {row}: chat prompt differs from lighteval's"
        assert _sha(plain(docs[row], shots[row])) == want["text"], f"{name} row {row}: text prompt differs"


def test_gsm8k_prompt_is_question_answer_turns_with_full_train_solutions(built):
    spec, docs, shots, _ = built["gsm8k_paper"]
    messages = build_context(spec, docs[0], shots[0])
    assert [m["role"] for m in messages] == ["user", "assistant"] * 4 + ["user"]
    assert messages[-1]["content"] == f"Question: {docs[0]['question']}\nAnswer:"
    assert messages[1]["content"].startswith(" ") and "####" in messages[1]["content"]  # lighteval keeps the space
    assert spec.generation_kwargs() == {"until": [], "max_gen_toks": 4096}  # chat: EOS ends it, paper's budget


def test_math_500_exemplars_come_from_test_and_include_row_87_itself(built):
    """lighteval 0.13 draws MATH-500's exemplars from its only split; its self-exclusion never fires."""
    _, _, shots, _ = built["math_500"]
    assert {tuple(s["_row"] for s in doc_shots) for doc_shots in shots} == {(87, 468, 141, 251)}


def test_a_fewshot_override_keeps_lighteval_rules(built):
    """--num-fewshot changes k, not the rules: train exemplars for GSM8K, the balanced prefix for MATH."""
    spec, docs, _, pool = built["gsm8k_paper"]
    two = select_fewshot(replace(spec, num_fewshot=2), docs[:3], pool, 2)
    assert [len(s) for s in two] == [2, 2, 2] and all(s["_rows"] == len(pool) == 7473 for s in two[0])
    m_spec, m_docs, _, m_pool = built["math_500"]
    three = select_fewshot(replace(m_spec, num_fewshot=3), m_docs[:2], m_pool, 3)
    assert [d["_row"] for d in three[0]] == [87, 468, 141]


@pytest.mark.parametrize("task,gold,generation,expected", CASES,
                         ids=[f"{c[0]}:{c[2][:30]}" for c in CASES])
def test_scores_equal_lighteval_on_hand_cases(task, gold, generation, expected):
    spec = get_task(task)
    if task == "gsm8k_paper":
        doc = {"question": "", "answer": gold[1:]}
    elif task == "math_500":
        doc = {"problem": "", "solution": gold.removeprefix("ANSWER: "), "answer": ""}
    else:
        doc = {"_gold": "ABCD".index(gold)}
    assert spec.process_results(doc, generation) == {spec.metrics[0]: expected}


def test_lighteval_regex_edits_change_what_plain_math_verify_extracts():
    """Why math_equivalence edits math-verify's regexes: lighteval's copy accepts "Answer :"."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    from unicomp.evaluate.math_equivalence import EXPR_GOLD

    text = "Answer : 7. Checking again, the answer is 1000"
    plain = parse(text, [ExprExtractionConfig(), LatexExtractionConfig(boxed_match_priority=0)])
    assert str(plain[0]) == "1000" and str(EXPR_GOLD.extract_prediction(text)[0]) == "7"


@pytest.mark.parametrize("text,letter", [
    ("Answer: C", "C"), ("answer:(D)", "D"), ("I think B.\nAnswer: A", "A"), ("**B** is right", "B"),
    ("The final answer is D. I hope it is correct. Answer: A", "D"), ("The answer is (C).", "C"),
    ("no capital option letters here", None), ("Answer: E", "A"),  # the A of "Answer", lighteval's last resort
])
def test_gpqa_letter_extraction(text, letter):
    assert extract_letter(text) == letter


def test_gpqa_choice_order_is_fixed_by_the_recorded_seed():
    first, again = gold_positions(198), gold_positions(198)
    assert first == again and GPQA_CHOICE_SEED == 1234
    assert gold_positions(198, seed=7) != first
    evaluated, pooled = first
    assert evaluated != pooled and set(evaluated) == {0, 1, 2, 3}
    spec = get_task("gpqa_diamond")
    docs = spec.process_docs(synthetic_gpqa(12))
    for doc in docs:
        options = gpqa_options(doc)
        assert options[doc["_gold"]] == doc["Correct Answer"]
        assert [o for o in options if o != doc["Correct Answer"]] == [doc[f"Incorrect Answer {i}"] for i in (1, 2, 3)]
    # the same rows give the same prompt in a second process-independent build
    assert [prompt_text(build_context(spec, d, [])) for d in docs] == \
           [prompt_text(build_context(spec, d, [])) for d in spec.process_docs(synthetic_gpqa(12))]


def test_gpqa_zero_shot_glues_the_instruction_to_the_question_like_lighteval():
    spec = get_task("gpqa_diamond")
    doc = spec.process_docs(synthetic_gpqa(1))[0]
    (message,) = build_context(spec, doc, [])
    assert message["content"].startswith("Answer the following multiple choice question.")
    assert "before answering.Question 0: which option is right?\n\nA) " in message["content"]


def test_gpqa_without_access_names_the_dataset_and_how_to_get_it(mirror, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotFoundError) as err:
        load_task_docs(get_task("gpqa_diamond"), 5)
    text = str(err.value)
    assert "Idavidrein/gpqa" in text and "gated" in text
    assert "https://huggingface.co/datasets/Idavidrein/gpqa" in text and "HF_TOKEN" in text and "login" in text


def test_a_hub_refusal_of_a_gated_repo_becomes_the_access_message():
    """datasets wraps huggingface_hub's GatedRepoError; the hub source recognises it either way."""
    import httpx2
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub.errors import GatedRepoError

    from unicomp.data.sources.hub import access_hint, is_gated_error

    response = httpx2.Response(401, request=httpx2.Request("GET", "https://huggingface.co/datasets/Idavidrein/gpqa"))
    gated = GatedRepoError("401 Client Error. Cannot access gated repo", response=response)
    try:
        try:
            raise gated
        except GatedRepoError as exc:
            raise DatasetNotFoundError("Dataset 'Idavidrein/gpqa' is a gated dataset on the Hub.") from exc
    except DatasetNotFoundError as wrapped:
        assert is_gated_error(wrapped)
    assert is_gated_error(gated)
    assert not is_gated_error(ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub"))
    assert "accept its terms" in access_hint("Idavidrein/gpqa")


def test_math_scoring_refuses_to_run_off_the_main_thread():
    """math-verify's SIGALRM timeouts fail off the main thread; a silent 0 would be worse than an error."""
    spec = get_task("gsm8k_paper")
    errors: list[BaseException] = []

    def score() -> None:
        try:
            spec.process_results({"question": "", "answer": "#### 5"}, "The answer is 5")
        except RuntimeError as exc:
            errors.append(exc)

    worker = threading.Thread(target=score)
    worker.start()
    worker.join()
    assert errors and "main thread" in str(errors[0])


@pytest.mark.slow
def test_smollm2_runs_gsm8k_paper_end_to_end(mirror):
    """Two documents through the real runner and engine: chat prompt, EOS-ended generation, scores."""
    from unicomp.evaluate.lm import LanguageModel
    from unicomp.evaluate.runner import evaluate_task
    from unicomp.models.loading import load_model

    loaded = load_model("smollm2-135m-instruct", dtype="float32")
    lm = LanguageModel(loaded.model, loaded.tokenizer, batch_size=2)
    spec = replace(get_task("gsm8k_paper"), max_gen_toks=96)
    docs, resolved = load_task_docs(spec, 2)
    result = evaluate_task(lm, spec, docs, resolved, limit=2)
    assert result.n_items == 2 and set(result.scores) == {"extractive_match"}
    for record, doc in zip(result.records, docs):
        assert record.generation and "Question:" not in record.generation[:10]
        assert record.metrics == spec.process_results(doc, record.generation)
    assert result.scores["extractive_match"] == sum(r.metrics["extractive_match"] for r in result.records) / 2
