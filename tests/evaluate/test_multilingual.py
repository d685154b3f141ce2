"""Global-MMLU, MGSM (native CoT) and XCOPA against lm-eval 0.4.13's own task objects.

lm-eval's YAMLs are only re-pointed at the mirror (Global-MMLU, which the mirror lacks, at
hand-made rows in the hub's layout). Prompts, choices, targets and stop strings are compared
document by document; then one scripted model answers both harnesses (lm-eval through unicomp's
`UnicompLMEval` adapter) and per-item and aggregate scores must be identical. A last test runs
the real tiny model through both.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from lm_eval_mirror import GLOBAL_MMLU_FIXTURE_TASKS, fixture_mirror, lm_eval_task, session_manager
from scripted_lm import ScriptedModel, unit_hash
from unicomp.data.resolver import load_rows
from unicomp.evaluate.lm_eval_adapter import UnicompLMEval
from unicomp.evaluate.runner import evaluate_task, load_task_docs
from unicomp.evaluate.tasks import expand_task_names, get_task
from unicomp.evaluate.tasks.mmlu_subjects import MMLU_SUBJECTS
from unicomp.evaluate.tasks.multilingual import GLOBAL_MMLU_LANGUAGES, MGSM_LANGUAGES, XCOPA_CONNECTORS

lm_eval = pytest.importorskip("lm_eval")
LM_EVAL_TASKS = Path(lm_eval.__file__).parent / "tasks"
N_DOCS = 20
NUMBER = r"(\-?[0-9\.\,]+)"


@pytest.fixture(scope="module")
def manager(tmp_path_factory, mirror):
    _write_global_mmlu_fixture(fixture_mirror(tmp_path_factory))
    return session_manager(tmp_path_factory, mirror)


def _evaluate_both(manager, names: list[str], limit: int, num_fewshot: int, script: dict, data_dir=None):
    """lm-eval and unicomp on the same scripted model; returns (lm-eval output, {name: our result}, models)."""
    from lm_eval import simple_evaluate

    theirs_model, ours_model = ScriptedModel(**script), ScriptedModel(**script)
    out = simple_evaluate(model=UnicompLMEval(theirs_model), tasks=[lm_eval_task(manager, n) for n in names], limit=limit,
                          num_fewshot=num_fewshot, log_samples=True, bootstrap_iters=0, task_manager=manager)
    ours = {}
    for name in names:
        spec = get_task(name)
        docs, resolved = load_task_docs(spec, limit, data_dir=data_dir)
        ours[name] = evaluate_task(ours_model, spec, docs, resolved, limit=limit, num_fewshot=num_fewshot)
    return out, ours, (theirs_model, ours_model)


def _samples(out, name: str, filter_name: str = "none") -> list[dict]:
    rows = [s for s in out["samples"][f"mirror_{name}"] if s["filter"] == filter_name]
    return sorted(rows, key=lambda s: s["doc_id"])


# --- registry -----------------------------------------------------------------------------------

def test_task_names_groups_and_category_follow_lm_eval():
    assert expand_task_names(["xcopa"]) == [f"xcopa_{lang}" for lang in XCOPA_CONNECTORS]
    assert expand_task_names(["mgsm_cot_native"]) == [f"mgsm_native_cot_{lang}" for lang in MGSM_LANGUAGES]
    assert len(MGSM_LANGUAGES) == 11 and len(XCOPA_CONNECTORS) == 11
    for lang in GLOBAL_MMLU_LANGUAGES:
        members = expand_task_names([f"global_mmlu_full_{lang}"])
        assert members == [f"global_mmlu_full_{lang}_{s}" for s in sorted(MMLU_SUBJECTS)]
        assert {get_task(m).subgroup for m in members} == {"stem", "humanities", "social_sciences", "other"}
    for name in ["xcopa_it", "mgsm_native_cot_de", "global_mmlu_full_sw_virology"]:
        assert get_task(name).category == "multilingual"
    assert "substitute for Global-MMLU" in get_task("xcopa_qu").note
    assert "substitute for Global-MMLU" in get_task("mgsm_native_cot_te").note
    assert not get_task("global_mmlu_full_en_anatomy").note


# --- (a) prompts, choices, targets ----------------------------------------------------------------

@pytest.mark.parametrize("lang", list(MGSM_LANGUAGES))
def test_mgsm_prompts_targets_stops_and_patterns_equal_lm_eval(manager, lang):
    task, spec = lm_eval_task(manager, f"mgsm_native_cot_{lang}"), get_task(f"mgsm_native_cot_{lang}")
    docs, resolved = load_task_docs(spec, N_DOCS)
    theirs = list(task.test_docs())[:N_DOCS]
    for ours_doc, their_doc in zip(docs, theirs, strict=True):
        assert spec.doc_to_text(ours_doc) == task.doc_to_text(their_doc)
        assert spec.doc_to_target(ours_doc) == task.doc_to_target(their_doc)
    # the 8 exemplars: question with its cue, worked answer without the answer cue
    exemplars = list(task.fewshot_docs())
    assert len(resolved.fewshot_rows) == len(exemplars) == 8
    for ours_doc, their_doc in zip(resolved.fewshot_rows, exemplars, strict=True):
        assert spec.doc_to_text(ours_doc) == task.doc_to_text(their_doc)
        assert spec.doc_to_target(ours_doc) == task.doc_to_target(their_doc)
    assert list(spec.until) == task.config.generation_kwargs["until"]
    assert spec.target_delimiter == task.config.target_delimiter and spec.fewshot_delimiter == task.config.fewshot_delimiter
    patterns = {f["name"]: f["filter"][0] for f in task.config.filter_list}
    assert patterns["strict-match"]["regex_pattern"] == MGSM_LANGUAGES[lang][2]
    assert patterns["flexible-extract"] == {"function": "regex", "group_select": -1,
                                            "regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)"}
    original = yaml.safe_load((LM_EVAL_TASKS / f"mgsm/native_cot/mgsm_native_cot_{lang}.yaml").read_text())
    assert (spec.dataset.id, spec.dataset.config, spec.version) == (
        "juletxara/mgsm", original["dataset_name"], str(task.config.metadata["version"]))


@pytest.mark.parametrize("lang", list(XCOPA_CONNECTORS))
def test_xcopa_prompts_choices_and_gold_equal_lm_eval(manager, lang):
    task, spec = lm_eval_task(manager, f"xcopa_{lang}"), get_task(f"xcopa_{lang}")
    docs, _ = load_task_docs(spec, N_DOCS)
    for ours_doc, their_doc in zip(docs, list(task.test_docs())[:N_DOCS], strict=True):
        assert spec.doc_to_text(ours_doc) == task.doc_to_text(their_doc)
        assert spec.doc_to_choice(ours_doc) == task.doc_to_choice(their_doc)
        assert spec.doc_to_target(ours_doc) == task.doc_to_target(their_doc)
    original = yaml.safe_load((LM_EVAL_TASKS / f"xcopa/default_{lang}.yaml").read_text().replace("!function", ""))
    assert (spec.dataset.id, spec.dataset.config) == ("cambridgeltl/xcopa", original.get("dataset_name", "et"))


# --- Global-MMLU on hand-made rows in the hub's layout ---------------------------------------------

def _gm_row(i: int, subject: str, lang: str) -> dict:
    """A made-up question with Global-MMLU's columns (the fields lm-eval reads, and some it does not)."""
    return {"sample_id": f"{subject}/test/{i}", "subject": subject, "subject_category": MMLU_SUBJECTS[subject].upper(),
            "question": f"  Frage {i} ({lang}) über {subject}: Welche Antwort stimmt?\n", "option_a": f"Alpha {i}",
            "option_b": f"Beta {i}", "option_c": f"Gamma {i}", "option_d": f"Delta {i}", "answer": "ABCD"[i % 4],
            "required_knowledge": "[]", "time_sensitive": "[]", "reference": "[]", "culture": "[]", "region": "[]",
            "country": "[]", "cultural_sensitivity_label": "CA", "is_annotated": False}


def _write_global_mmlu_fixture(root) -> None:
    for lang in ("de", "ja"):
        folder = root / "CohereForAI" / "Global-MMLU" / lang
        folder.mkdir(parents=True, exist_ok=True)
        for split, n in (("test", 9), ("dev", 4)):
            rows = [_gm_row(i, subject, lang) for i in range(n) for subject in ("anatomy", "astronomy", "virology")]
            (folder / f"{split}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


@pytest.mark.parametrize("num_fewshot", [0, 2])
def test_global_mmlu_requests_and_acc_equal_lm_eval(manager, tmp_path_factory, num_fewshot):
    data_dir = fixture_mirror(tmp_path_factory)
    names = list(GLOBAL_MMLU_FIXTURE_TASKS)
    out, ours, (theirs_model, ours_model) = _evaluate_both(manager, names, None, num_fewshot, {}, data_dir=data_dir)
    assert sorted(theirs_model.loglikelihood_requests) == sorted(ours_model.loglikelihood_requests)
    for name in names:
        task = lm_eval_task(manager, name)
        docs, _ = load_task_docs(get_task(name), None, data_dir=data_dir)
        assert len(docs) == len(list(task.test_docs())) == 9  # the subject's rows only
        assert [d["subject"] for d in docs] == [name.split("_", 4)[-1]] * 9
        assert ours[name].scores["acc"] == out["results"][f"mirror_{name}"]["acc,none"]
        assert [r.metrics["acc"] for r in ours[name].records] == [s["acc"] for s in _samples(out, name)]
    if num_fewshot:  # first_n from the subject's dev rows, in order
        prompt = ours_model.loglikelihood_requests[0][0]
        assert prompt.startswith("Frage 0 (de) über anatomy: Welche Antwort stimmt?\nA. Alpha 0\n") and "\nAnswer: A\n\n" in prompt


def test_global_mmlu_covers_the_papers_languages_with_lm_evals_template():
    root = LM_EVAL_TASKS / "global_mmlu" / "full"
    assert set(GLOBAL_MMLU_LANGUAGES) == {"en", "de", "fr", "es", "ru", "zh", "ja", "ar", "sw", "bn", "te", "pt"}
    for lang in GLOBAL_MMLU_LANGUAGES:
        template = yaml.safe_load((root / lang / f"_{lang}_template_yaml").read_text())
        spec = get_task(f"global_mmlu_full_{lang}_anatomy")
        assert (spec.dataset.id, spec.dataset.config, spec.dataset.split) == (
            template["dataset_path"], template["dataset_name"], template["test_split"])
        assert (spec.fewshot_split, spec.fewshot_sampler) == (template["fewshot_split"], template["fewshot_config"]["sampler"])
        assert spec.description == "" and "description" not in template


# --- (b) the same model outputs, the same scores -----------------------------------------------------

def _mgsm_answers() -> dict[str, tuple[int, str, str]]:
    """Test prompt ending -> (gold number, strict pattern, question cue), every language."""
    table = {}
    for lang, (cue, _, strict) in MGSM_LANGUAGES.items():
        spec = get_task(f"mgsm_native_cot_{lang}")
        for row in load_rows("juletxara/mgsm", lang, "test").rows[:N_DOCS]:
            table[spec.doc_to_text(row)] = (int(row["answer_number"]), strict, cue)
    return table


def _mgsm_generation(table: dict[str, tuple[int, str, str]]):
    """Varied answers: right or wrong, in the language's strict form or not, with $, commas, dots,
    a minus sign, a stop string mid-text, nothing at all."""
    def generate(prompt: str) -> str:
        gold, strict, cue = next(v for k, v in table.items() if prompt.endswith(k))

        def says(n) -> str:
            return strict.replace(NUMBER, str(n))

        variants = [
            f"First 3 + 4 = 7, then more steps. {says(gold)}",
            f"Adding up gives the wrong total. {says(gold + 1)}",
            f"So the total is ${gold:,}.",
            "I cannot work this out.",
            f"{says(gold)} Check: {gold} + 7 = {gold + 7}",
            f"{says(-gold)}",
            f"{says(gold)}\n\n{cue} 5 + 5 = 10 and 12345",
            f"Result: {gold}.0",
            "",
            f"{gold:,}".replace(",", "."),
            f"{says(f'{gold:,}')} ",
        ]
        return variants[int(unit_hash(prompt) * len(variants))]

    return generate


@pytest.mark.parametrize("num_fewshot", [0, 3])
def test_mgsm_same_generations_give_identical_scores(manager, num_fewshot):
    names = [f"mgsm_native_cot_{lang}" for lang in ("de", "ja", "zh", "fr", "ru", "bn", "sw", "th")]
    out, ours, (theirs_model, ours_model) = _evaluate_both(manager, names, N_DOCS, num_fewshot,
                                                           {"generate": _mgsm_generation(_mgsm_answers())})
    # the same prompts (few-shot exemplars drawn by lm-eval's seeded sampler) and stop strings
    assert [(p, k["until"]) for p, k in ours_model.generation_requests] == [
        (p, k["until"]) for p, k in theirs_model.generation_requests]
    flips = set()
    for name in names:
        result, res = ours[name], out["results"][f"mirror_{name}"]
        for filter_name in ("strict-match", "flexible-extract"):
            metric = f"exact_match,{filter_name}"
            assert result.scores[metric] == res[metric], (name, metric)
            for rec, sample in zip(result.records, _samples(out, name, filter_name), strict=True):
                assert rec.generation == sample["resps"][0][0]
                assert rec.prediction[filter_name] == sample["filtered_resps"][0], (name, rec.item_id)
                assert rec.metrics[metric] == sample["exact_match"], (name, rec.item_id, rec.generation)
        flips |= {(r.metrics["exact_match,strict-match"], r.metrics["exact_match,flexible-extract"]) for r in result.records}
    assert flips == {(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)}  # the variants exercise every case


@pytest.mark.parametrize("num_fewshot", [0, 2])
def test_xcopa_same_loglikelihoods_give_identical_scores(manager, num_fewshot):
    names = [f"xcopa_{lang}" for lang in ("it", "qu", "zh", "ta")]
    out, ours, (theirs_model, ours_model) = _evaluate_both(manager, names, 40, num_fewshot, {})
    assert ours_model.loglikelihood_requests == theirs_model.loglikelihood_requests
    for name in names:
        assert ours[name].scores["acc"] == out["results"][f"mirror_{name}"]["acc,none"]
        assert [r.metrics["acc"] for r in ours[name].records] == [s["acc"] for s in _samples(out, name)]
    assert len({ours[n].scores["acc"] for n in names}) > 1


# --- end to end with a real (tiny) model -------------------------------------------------------------

def test_tiny_model_scores_equal_lm_eval_running_the_same_engine(manager):
    """3 documents each: lm-eval (its prompts and scoring) and unicomp on one real engine."""
    from lm_eval import simple_evaluate

    from tiny_models import tiny_llama, tiny_tokenizer
    from unicomp.evaluate.lm import LanguageModel

    # RoPE has no hard length limit; MGSM prompts in a 320-token byte vocabulary exceed the config's 256.
    # 32 new tokens instead of 256 keeps it fast: lm-eval's MGSM requests carry no max_gen_toks, so
    # the engine's default applies to them, and our spec is set to the same.
    engine = LanguageModel(tiny_llama(), tiny_tokenizer(), batch_size=4, max_length=2048, max_gen_toks=32)
    names = ["xcopa_it", "mgsm_native_cot_de"]
    out = simple_evaluate(model=UnicompLMEval(engine), tasks=[lm_eval_task(manager, n) for n in names], limit=3,
                          log_samples=True, bootstrap_iters=0, task_manager=manager)
    for name in names:
        spec = replace(get_task(name), max_gen_toks=32)
        docs, resolved = load_task_docs(spec, 3)
        ours = evaluate_task(engine, spec, docs, resolved, limit=3)
        assert ours.n_items == 3 and ours.category == "multilingual"
        for metric in spec.metrics:
            assert ours.scores[metric] == out["results"][f"mirror_{name}"][metric if "," in metric else f"{metric},none"]
        if spec.output_type == "multiple_choice":
            for rec, sample in zip(ours.records, _samples(out, name), strict=True):
                assert rec.loglikelihoods == pytest.approx([float(r[0]) for r in sample["filtered_resps"]], abs=1e-5)
    generations = [s["resps"][0][0] for s in _samples(out, "mgsm_native_cot_de", "strict-match")]
    assert [r.generation for r in ours.records] == generations and any(generations)
