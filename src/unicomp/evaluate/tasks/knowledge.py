"""Knowledge benchmarks, 0-shot log-likelihood multiple choice, as lm-eval scores them.

Prompts, choices and targets reproduce lm-eval 0.4.13's `arc_easy`, `arc_challenge`,
`hellaswag`, `piqa`, `winogrande` and `mmlu` task YAMLs. Splits: the ones lm-eval evaluates.
"""

from __future__ import annotations

import re

from unicomp.evaluate.tasks.mmlu_subjects import MMLU_SUBJECTS
from unicomp.evaluate.tasks.spec import DatasetRef, Doc, TaskSpec

ACC_BOTH = ("acc", "acc_norm")


def _arc(name: str, config: str) -> TaskSpec:
    return TaskSpec(
        name=name, category="knowledge", output_type="multiple_choice",
        dataset=DatasetRef("allenai/ai2_arc", config, "test", fallback_splits=("validation",)),
        doc_to_text=lambda d: f"Question: {d['question']}\nAnswer:",
        doc_to_choice=lambda d: list(d["choices"]["text"]),
        doc_to_target=lambda d: d["choices"]["label"].index(d["answerKey"]),
        metrics=ACC_BOTH, primary_metric="acc_norm", reference="lm-eval 0.4.13 arc/arc_easy.yaml",
        fields=("question", "choices.text", "choices.label", "answerKey"),
    )


def _hellaswag_clean(text: str) -> str:
    # Brackets are WikiHow artefacts; lm-eval strips them the same way.
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def _hellaswag_docs(docs: list[Doc]) -> list[Doc]:
    out = []
    for d in docs:
        ctx = d["ctx_a"] + " " + d["ctx_b"].capitalize()
        out.append({**d, "query": _hellaswag_clean(d["activity_label"] + ": " + ctx),
                    "choices": [_hellaswag_clean(e) for e in d["endings"]], "gold": int(d["label"])})
    return out


def _winogrande_choices(d: Doc) -> list[str]:
    idx = d["sentence"].index("_")
    return [d["sentence"][:idx] + opt for opt in (d["option1"], d["option2"])]


def _mmlu(subject: str) -> TaskSpec:
    pretty = subject.replace("_", " ")
    return TaskSpec(
        name=f"mmlu_{subject}", category="knowledge", output_type="multiple_choice",
        dataset=DatasetRef("cais/mmlu", subject, "test"),
        description=f"The following are multiple choice questions (with answers) about {pretty}.\n\n",
        doc_to_text=lambda d: (
            f"{d['question'].strip()}\nA. {d['choices'][0]}\nB. {d['choices'][1]}\n"
            f"C. {d['choices'][2]}\nD. {d['choices'][3]}\nAnswer:"
        ),
        doc_to_choice=lambda d: ["A", "B", "C", "D"],
        doc_to_target=lambda d: int(d["answer"]),
        metrics=("acc",), group="mmlu", subgroup=MMLU_SUBJECTS[subject],
        reference="lm-eval 0.4.13 mmlu/default", fields=("question", "choices", "answer"),
    )


TASKS: list[TaskSpec] = [
    _arc("arc_easy", "ARC-Easy"),
    _arc("arc_challenge", "ARC-Challenge"),
    TaskSpec(
        name="hellaswag", category="knowledge", output_type="multiple_choice",
        dataset=DatasetRef("Rowan/hellaswag", None, "validation"),
        process_docs=_hellaswag_docs,
        doc_to_text=lambda d: d["query"], doc_to_choice=lambda d: d["choices"],
        doc_to_target=lambda d: d["gold"], metrics=ACC_BOTH, primary_metric="acc_norm",
        reference="lm-eval 0.4.13 hellaswag/hellaswag.yaml",
        fields=("activity_label", "ctx_a", "ctx_b", "endings", "label"),
    ),
    TaskSpec(
        name="piqa", category="knowledge", output_type="multiple_choice",
        dataset=DatasetRef("ybisk/piqa", None, "validation"),
        doc_to_text=lambda d: f"Question: {d['goal']}\nAnswer:",
        doc_to_choice=lambda d: [d["sol1"], d["sol2"]],
        doc_to_target=lambda d: int(d["label"]), metrics=ACC_BOTH, primary_metric="acc_norm",
        reference="lm-eval 0.4.13 piqa/piqa.yaml (dataset baber/piqa = ybisk/piqa fields)",
        fields=("goal", "sol1", "sol2", "label"),
    ),
    TaskSpec(
        name="winogrande", category="knowledge", output_type="multiple_choice",
        dataset=DatasetRef("allenai/winogrande", "winogrande_xl", "validation"),
        doc_to_text=lambda d: {"1": 0, "2": 1}[d["answer"]],
        doc_to_choice=_winogrande_choices,
        doc_to_target=lambda d: d["sentence"][d["sentence"].index("_") + 1:].strip(),
        metrics=("acc",), reference="lm-eval 0.4.13 winogrande/default.yaml (partial scoring)",
        fields=("sentence", "option1", "option2", "answer"),
    ),
    *[_mmlu(s) for s in sorted(MMLU_SUBJECTS)],
]
