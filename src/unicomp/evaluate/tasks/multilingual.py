"""Multilingual benchmarks, as lm-eval 0.4.13 defines them: Global-MMLU, MGSM (native CoT), XCOPA.

* `global_mmlu_full_<lang>_<subject>`: lm-eval's `global_mmlu/full/<lang>` tasks, the MMLU prompt
  on Global-MMLU's option_a..d fields (no description line), 0-shot by default, exemplars from
  the `dev` split in order (first_n). The paper's 12 languages; group `global_mmlu_full_<lang>`
  (the per-language score), subgroups MMLU's four categories. Hub only: the offline mirror has
  no copy of CohereForAI/Global-MMLU.
* `mgsm_native_cot_<lang>`: lm-eval's `mgsm/native_cot`: question and step-by-step answer cue in
  the language, greedy generation stopped at the next question cue, strict (the language's "The
  answer is N") and flexible (last number) extraction, exact match ignoring case and punctuation.
  0-shot by default; `--num-fewshot` draws from the `train` split (the 8 translated exemplars)
  with lm-eval's default random sampler.
* `xcopa_<lang>`: lm-eval's `xcopa`: premise without its final period, the language's
  cause/effect connector, choices with a lower-cased first letter, log-likelihood accuracy.

MGSM and XCOPA are offline substitutes for Global-MMLU; their `note` says so for the report.
"""

from __future__ import annotations

import string

from unicomp.evaluate.extraction import regex_extractor
from unicomp.evaluate.tasks.mmlu_subjects import MMLU_SUBJECTS, MMLU_TEST_ROWS
from unicomp.evaluate.tasks.spec import DatasetRef, Doc, TaskSpec

CATEGORY = "multilingual"
SUBSTITUTE_NOTE = "offline substitute for Global-MMLU (hub only)"

# --- Global-MMLU ------------------------------------------------------------------------------

GLOBAL_MMLU_ID = "CohereForAI/Global-MMLU"  # lm-eval's dataset_path
GLOBAL_MMLU_LANGUAGES = ("en", "de", "fr", "es", "ru", "zh", "ja", "ar", "sw", "bn", "te", "pt")  # the paper's set
LETTERS = ("A", "B", "C", "D")


def _global_mmlu_text(d: Doc) -> str:
    return (f"{d['question'].strip()}\nA. {d['option_a']}\nB. {d['option_b']}\n"
            f"C. {d['option_c']}\nD. {d['option_d']}\nAnswer:")


def _global_mmlu(lang: str, subject: str) -> TaskSpec:
    return TaskSpec(
        name=f"global_mmlu_full_{lang}_{subject}", category=CATEGORY, output_type="multiple_choice",
        dataset=DatasetRef(GLOBAL_MMLU_ID, lang, "test", documented_rows=MMLU_TEST_ROWS[subject]),
        # One split per language holds every subject; lm-eval filters it (and the dev exemplars) by subject.
        process_docs=lambda docs: [d for d in docs if d["subject"] == subject],
        doc_to_text=_global_mmlu_text,
        doc_to_choice=lambda d: list(LETTERS),
        doc_to_target=lambda d: LETTERS.index(d["answer"]),
        fewshot_split="dev", fewshot_sampler="first_n",
        metrics=("acc",), group=f"global_mmlu_full_{lang}", subgroup=MMLU_SUBJECTS[subject], version="0.0",
        reference=f"lm-eval 0.4.13 global_mmlu/full/{lang}/global_mmlu_full_{lang}_{subject}.yaml",
        fields=("question", "option_a", "option_b", "option_c", "option_d", "answer", "subject"),
    )


# --- MGSM, native chain of thought ------------------------------------------------------------

# language -> (question cue, answer cue, strict "the answer is N" pattern): lm-eval's mgsm/utils.py
# LANGUAGES (Bengali's answer pattern is English there too).
MGSM_LANGUAGES: dict[str, tuple[str, str, str]] = {
    "bn": ("প্রশ্ন:", "ধাপে ধাপে উত্তর:", r"The answer is (\-?[0-9\.\,]+)"),
    "de": ("Frage:", "Schritt-für-Schritt-Antwort:", r"Die Antwort lautet (\-?[0-9\.\,]+)"),
    "en": ("Question:", "Step-by-Step Answer:", r"The answer is (\-?[0-9\.\,]+)"),
    "es": ("Pregunta:", "Respuesta paso a paso:", r"La respuesta es (\-?[0-9\.\,]+)"),
    "fr": ("Question :", "Réponse étape par étape :", r"La réponse est (\-?[0-9\.\,]+)"),
    "ja": ("問題：", "ステップごとの答え:", r"答えは(\-?[0-9\.\,]+)です。"),
    "ru": ("Задача:", "Пошаговоерешение:", r"Ответ — (\-?[0-9\.\,]+)"),
    "sw": ("Swali:", "Jibu la Hatua kwa Hatua:", r"Jibu ni (\-?[0-9\.\,]+)"),
    "te": ("ప్రశ్న:", "దశలవారీగా సమాధానం:", r"సమాధానం (\-?[0-9\.\,]+)"),
    "th": ("โจทย์:", "คำตอบทีละขั้นตอน:", r"คำตอบคือ (\-?[0-9\.\,]+)"),
    "zh": ("问题：", "逐步解答:", r"答案是 (\-?[0-9\.\,]+)。"),
}
MGSM_FLEXIBLE = regex_extractor(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1)
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def mgsm_normalize(text: str) -> str:
    """lm-eval's exact_match with ignore_case and ignore_punctuation: "$1,000." and "1000" match."""
    return text.lower().translate(_PUNCTUATION)


def _mgsm(lang: str) -> TaskSpec:
    question, answer, strict = MGSM_LANGUAGES[lang]
    skip = len(answer) + 1  # train answers start with the answer cue and a space

    # Train rows (the exemplars) carry their question cue and a worked answer; test rows have
    # answer None and only the number. lm-eval's templates branch on that.
    def text(d: Doc) -> str:
        return f"{d['question']}\n{answer}" if d["answer"] is not None else f"{question} {d['question']}\n{answer}"

    def target(d: Doc) -> str:
        return d["answer"][skip:] if d["answer"] is not None else str(d["answer_number"])

    return TaskSpec(
        name=f"mgsm_native_cot_{lang}", category=CATEGORY, output_type="generate_until",
        dataset=DatasetRef("juletxara/mgsm", lang, "test"),
        doc_to_text=text, doc_to_target=target,
        fewshot_split="train", fewshot_sampler="random",
        until=(question, "</s>", "<|im_end|>"), max_gen_toks=256,
        answer_extractors={"strict-match": regex_extractor(strict), "flexible-extract": MGSM_FLEXIBLE},
        metrics=("exact_match,strict-match", "exact_match,flexible-extract"),
        primary_metric="exact_match,flexible-extract", normalize=mgsm_normalize,
        group="mgsm_cot_native", report_members=True, version="4.0", note=SUBSTITUTE_NOTE,
        reference=f"lm-eval 0.4.13 mgsm/native_cot/mgsm_native_cot_{lang}.yaml",
        fields=("question", "answer", "answer_number"),
    )


# --- XCOPA ------------------------------------------------------------------------------------

# language -> (cause, effect) connector: lm-eval's xcopa/utils.py
XCOPA_CONNECTORS: dict[str, tuple[str, str]] = {
    "et": ("sest", "seetõttu"),
    "ht": ("poukisa", "donk sa"),
    "id": ("karena", "maka"),
    "it": ("perché", "quindi"),
    "qu": ("imataq", "chaymi"),
    "sw": ("kwa sababu", "kwa hiyo"),
    "ta": ("காரணமாக", "எனவே"),
    "th": ("เพราะ", "ดังนั้น"),
    "tr": ("çünkü", "bu yüzden"),
    "vi": ("bởi vì", "vì vậy"),
    "zh": ("因为", "所以"),
}


def _lower_first(choice: str) -> str:
    return choice[0].lower() + choice[1:]


def _xcopa(lang: str) -> TaskSpec:
    cause, effect = XCOPA_CONNECTORS[lang]
    connector = {"cause": cause, "effect": effect}
    return TaskSpec(
        name=f"xcopa_{lang}", category=CATEGORY, output_type="multiple_choice",
        dataset=DatasetRef("cambridgeltl/xcopa", lang, "test"),
        # The premise's final period is dropped so the connector continues the sentence.
        doc_to_text=lambda d: f"{d['premise'].strip()[:-1]} {connector[d['question']]}",
        doc_to_choice=lambda d: [_lower_first(d["choice1"]), _lower_first(d["choice2"])],
        doc_to_target=lambda d: int(d["label"]),
        # lm-eval has no train split here, so its exemplars come from validation.
        fewshot_split="validation", fewshot_sampler="random",
        metrics=("acc",), group="xcopa", report_members=True, version="1.0", note=SUBSTITUTE_NOTE,
        reference=f"lm-eval 0.4.13 xcopa/default_{lang}.yaml",
        fields=("premise", "choice1", "choice2", "question", "label"),
    )


TASKS: list[TaskSpec] = [
    *[_global_mmlu(lang, s) for lang in GLOBAL_MMLU_LANGUAGES for s in sorted(MMLU_SUBJECTS)],
    *[_mgsm(lang) for lang in MGSM_LANGUAGES],
    *[_xcopa(lang) for lang in XCOPA_CONNECTORS],
]
