"""Task specs: prompts, targets and answer extraction, checked against lm-eval's own task code."""

from __future__ import annotations

import pytest

from unicomp.data.resolver import load_rows
from unicomp.errors import NotFoundError
from unicomp.evaluate.prompts import build_context
from unicomp.evaluate.tasks import expand_task_names, get_task
from unicomp.evaluate.tasks.language_modelling import count_words, wikitext_detokenize, wikitext_pages
from unicomp.evaluate.tasks.reasoning import flexible_answer, normalize_number, strict_answer

lm_eval = pytest.importorskip("lm_eval")


def test_hellaswag_preprocessing_equals_lm_eval(mirror):
    from lm_eval.tasks.hellaswag.utils import preprocess

    spec = get_task("hellaswag")
    rows = load_rows("Rowan/hellaswag", None, "validation").rows[:300]
    docs = spec.process_docs(rows)
    for row, doc in zip(rows, docs):
        ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
        assert doc["query"] == preprocess(row["activity_label"] + ": " + ctx)
        assert doc["choices"] == [preprocess(e) for e in row["endings"]]


def test_wikitext_detokenizer_and_counts_equal_lm_eval(mirror):
    from lm_eval.tasks.wikitext.preprocess_wikitext import process_results, wikitext_detokenizer

    pages = wikitext_pages(load_rows("Salesforce/wikitext", "wikitext-2-raw-v1", "test").rows)
    assert len(pages) == 62  # the document-level test split has 62 articles
    assert pages[0]["page"].startswith(" = Robert Boulter = \n")
    for page in pages:
        assert wikitext_detokenize(page) == wikitext_detokenizer(page)
        assert count_words(page) == process_results(page, [0.0])["word_perplexity"][1]


def _document_level_pages(raw: str) -> list[str]:
    """EleutherAI/wikitext_document_level's loader, step for step: split the raw file on "\n",
    a new page at each level-1 heading, pages joined with "\n"."""
    pages, block = [], []
    for line in raw.split("\n"):
        rline = line.replace("= = =", "===").replace("= =", "==").strip()
        if rline.startswith("= ") and rline.strip().endswith(" ="):
            page = "\n".join(block)
            if page.strip():
                pages.append(page)
            block = []
        block.append(line)
    page = "\n".join(block)
    if page.strip():
        pages.append(page)
    return pages


def test_wikitext_pages_equal_the_document_level_dataset_byte_for_byte(mirror):
    rows = load_rows("Salesforce/wikitext", "wikitext-2-raw-v1", "test").rows
    raw = "".join(r["text"] or " \n" for r in rows)  # the raw file: blank lines are " " there, "" on the hub
    expected = _document_level_pages(raw)
    ours = [p["page"] for p in wikitext_pages(rows)]
    assert ours == expected
    assert ours[-1].endswith("\n") and not ours[0].endswith("\n")  # the last page keeps the file's final newline


def test_winogrande_partial_scoring_matches_lm_eval(mirror):
    from lm_eval.tasks.winogrande import preprocess_winogrande as ref

    spec = get_task("winogrande")
    for row in load_rows("allenai/winogrande", "winogrande_xl", "validation").rows[:50]:
        assert spec.doc_to_text(row) == ref.doc_to_text(row)
        assert spec.doc_to_choice(row) == ref.doc_to_choice(row)
        assert spec.doc_to_target(row) == ref.doc_to_target(row)


def test_gsm8k_answer_extraction():
    text = "She has 3 + 4 = 7 apples. Then 1,200 more. The answer is 1,207.\n\n"
    assert strict_answer(text) == "1,207"
    assert flexible_answer(text) == "1,207."
    assert normalize_number(flexible_answer(text)) == normalize_number("1207")
    assert strict_answer("no number here") == "[invalid]"
    assert flexible_answer("I think $18 is it") == "$18"
    assert normalize_number("#### 72") == "72"


def test_gsm8k_fewshot_prompt_layout():
    spec = get_task("gsm8k_cot")
    prompt = build_context(spec, {"question": "What is 2+2?"}, list(spec.fewshot_examples))
    assert prompt.count("Q: ") == 9 and prompt.endswith("\n\nQ: What is 2+2?\nA:")
    assert "A: There are 15 trees originally." in prompt


def test_group_expansion_and_unknown_task():
    names = expand_task_names(["mmlu", "arc_easy"])
    assert len(names) == 58 and names[-1] == "arc_easy" and "mmlu_anatomy" in names
    with pytest.raises(NotFoundError, match="did you mean arc_easy"):
        get_task("arc_esay")
