"""WikiText-2 perplexity in the two protocols people quote.

* `wikitext`: lm-eval's task. Documents are the articles of the raw test file (rebuilt from
  the line-level hub rows exactly as `EleutherAI/wikitext_document_level` builds its `page`s),
  detokenised, scored with disjoint rolling windows; word perplexity, byte perplexity and bits
  per byte use the word and byte counts of the original page.
* `wikitext2_fixed`: the GPTQ / SparseGPT / Wanda papers' token perplexity: the test rows
  joined with "\\n\\n", tokenised once, cut into non-overlapping windows of `seq_len` tokens.
  Token perplexities depend on the tokenizer and are comparable only within one model family.
"""

from __future__ import annotations

import re

from unicomp.evaluate.tasks.spec import DatasetRef, Doc, TaskSpec

_WIKITEXT_RAW_TEST = DatasetRef("Salesforce/wikitext", "wikitext-2-raw-v1", "test")


def wikitext_pages(rows: list[Doc]) -> list[Doc]:
    """Group line rows into articles; a level-1 heading (` = Title = `) starts a new page.

    The hub rows drop whitespace-only lines to "" while the raw file has " " there; we restore
    " " (the raw files' convention) so pages equal the document-level dataset's.
    """
    lines = [r["text"][:-1] if r["text"].endswith("\n") else (r["text"] or " ") for r in rows]
    pages, current = [], []
    for line in lines:
        heading = line.replace("= = =", "===").replace("= =", "==").strip()
        if heading.startswith("= ") and heading.endswith(" ="):
            page = "\n".join(current)
            if page.strip():
                pages.append({"page": page})
            current = []
        current.append(line)
    # The raw file ends with a newline, so splitting it on "\n" (what the document-level dataset
    # does) leaves one empty last line: the last page ends with "\n".
    page = "\n".join([*current, ""])
    if page.strip():
        pages.append({"page": page})
    return pages


def wikitext_detokenize(doc: Doc) -> str:
    """lm-eval's `wikitext_detokenizer`, rule for rule."""
    s = doc["page"]
    s = s.replace("s '", "s'")
    s = re.sub(r"/' [0-9]/", r"/'[0-9]/", s)
    s = s.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
    for p in (":", ";", ".", "!", "?", ","):
        s = s.replace(f" {p} ", f"{p} ")
    s = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", s)
    s = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", s)
    s = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", s)
    s = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', s)
    s = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", s)
    s = s.replace("= = = =", "====").replace("= = =", "===").replace("= =", "==")
    s = s.replace(" " + chr(176) + " ", chr(176))
    s = s.replace(" \n", "\n").replace("\n ", "\n")
    s = s.replace(" N ", " 1 ").replace(" 's", "'s")
    return s


def count_words(doc: Doc) -> int:
    """Words of the original page (before detokenisation), as lm-eval counts them."""
    return len(re.split(r"\s+", doc["page"]))


def count_bytes(doc: Doc) -> int:
    return len(doc["page"].encode("utf-8"))


def _join_rows(docs: list[Doc]) -> list[Doc]:
    return [{"text": "\n\n".join(d["text"] for d in docs)}]


TASKS: list[TaskSpec] = [
    TaskSpec(
        name="wikitext", category="language_modelling", output_type="loglikelihood_rolling",
        dataset=_WIKITEXT_RAW_TEST, process_docs=wikitext_pages,
        doc_to_text=lambda d: "", doc_to_target=wikitext_detokenize,
        metrics=("word_perplexity", "byte_perplexity", "bits_per_byte"),
        lower_is_better=("word_perplexity", "byte_perplexity", "bits_per_byte", "token_perplexity"),
        doc_counts={"words": count_words, "bytes": count_bytes},
        reference="lm-eval 0.4.13 wikitext/wikitext.yaml", version="3", fields=("text",),
    ),
    TaskSpec(
        name="wikitext2_fixed", category="language_modelling", output_type="fixed_window_perplexity",
        dataset=_WIKITEXT_RAW_TEST, process_docs=_join_rows,
        doc_to_text=lambda d: d["text"], doc_to_target=lambda d: "",
        metrics=("token_perplexity",), seq_len=2048, lower_is_better=("token_perplexity",),
        reference="GPTQ/SparseGPT/Wanda datautils: '\\n\\n'.join(test['text']), seqlen 2048", fields=("text",),
    ),
]

# Text that evaluation scores: never to be used for calibration.
EVALUATION_TEXT: tuple[tuple[str, str | None, str], ...] = (
    ("Salesforce/wikitext", "wikitext-2-raw-v1", "test"),
    ("Salesforce/wikitext", "wikitext-2-v1", "test"),
)
