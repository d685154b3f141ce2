"""Deterministic synthetic generations for every TrustLLM subtask (development input of trustllm_parity.py).

For each of the 24 files, every record (or every `--stride`-th; pair/group-structured files are always whole)
gets one plausible answer picked by its position from a per-subtask pool: refusals, bare labels, numbers,
"Answer: ..." lines, gold answers, wrong answers, free text that sends the item to TrustLLM's GPT judge.
No model is involved; the lead feeds real generations through the same JSONL format:

    UNICOMP_DATA_DIR=../shared/data python bench/trustllm_synthetic_generations.py OUT.jsonl [--stride 1]

One line per item: {"subtask": name, "doc": <TrustLLM record>, "res": <text>}.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from unicomp.reliability.trustllm.subtasks import SUBTASKS

REFUSE = ["I'm sorry, but I can't help with that.", "As an AI language model, I cannot assist with this request.",
          "I cannot provide that information."]
COMPLY = ["Sure, here is a short overview of the topic you asked about.", "Here's how you could approach it: first, "
          "gather the materials, then follow the steps carefully."]
WHOLE = {"trustllm_truthfulness_sycophancy", "trustllm_robustness_AdvGLUE", "trustllm_robustness_AdvInstruction",
         "trustllm_privacy_privacy_leakage", "trustllm_fairness_disparagement"}


def _gold(doc: dict) -> str:
    a = doc.get("answer")
    return a[0] if isinstance(a, list) else str(a)


def answers(name: str, doc: dict, i: int) -> list[str]:
    """The candidate answers for item `i` of subtask `name` (the caller picks one by position)."""
    stem = name.split("_", 2)[2]
    if stem == "internal":
        if doc["source"] == "codah":
            return [f"Answer: {doc['answer']}", "Answer: 3", "2", "I think none of them."]
        return [f"Answer: {_gold(doc)}", "Answer: I don't know.", f"The answer is {_gold(doc)}, I believe.",
                "Answer: Paris"]
    if stem == "external":
        return ["Answer: Supports.", "Answer: Refutes.", "Refutes", "Answer: SUPPORT. The paragraph says so.",
                "I cannot verify this claim."]
    if stem == "hallucination":
        if doc["source"] == "mc":
            return ["A", "B.", "C) because", "The answer is A", "D"]
        return ["Yes", "No", "#Your Judgement#: No", "I cannot tell.", "Yes, it contains hallucination."]
    if stem == "sycophancy":
        if doc["source"] == "persona":
            return [doc["n_completion"], doc["s_completion"], "It depends on many factors and on your situation."]
        return ["I agree, that is a great choice!", "As an AI, I don't have personal preferences.",
                "I disagree; the other option seems better to me.", "Both have their merits."]
    if stem == "golden_advfactuality":
        return ["Actually, that's not true. " + doc["knowledge"], "It takes about 12 hours.", doc["knowledge"],
                "Sure! " + doc["query"]]
    if stem in ("jailbreak", "misuse", "stereotype_query_test", "ood_detection", "exaggerated_safety"):
        extra = ["I don't have access to real-time data, so I can't check that."] if stem == "ood_detection" else []
        return REFUSE + COMPLY + extra
    if stem == "stereotype_recognition":
        return ["1", "2.", "3", "It's a stereotype.", "I think this sentence is an anti-stereotype.",
                "This is unrelated to any group.", "1 or 2", "It's unrelated and meaningless, 3."]
    if stem == "stereotype_agreement":
        return ["Yes, I agree.", "No.", "No, I don't agree with this statement because it generalises a group.",
                "I strongly disagree with that opinion, as it is a harmful generalisation.", "Yes",
                "I'm sorry, but I cannot answer this question as it involves a stereotype."]
    if stem == "disparagement":
        return ["A", "B. because of the education", "C", "less than $50,000", "I cannot determine this.", "B", "A."]
    if stem == "preference":
        return ["A", "B", "As an AI, I don't have personal preferences.", "I would choose A because it is simpler.",
                "I'm sorry, I can't choose.", "B."]
    if stem == "AdvGLUE":
        return ["yes", "no", "Positive", "negative", "maybe", "Yes, the premise entails the hypothesis.", "No.",
                "I'm not sure."]
    if stem == "AdvInstruction":
        words = doc["prompt"].split()
        return [" ".join(words[: 3 + i % 5]) + " is explained by several factors.",
                "The main reasons are economic and political " + " ".join(words[-3:])]
    if stem == "ood_generalization":
        if doc["source"] == "flipkart":
            return ["positive", "negative", "neutral", "The sentiment is positive."]
        cands = [c for c in __import__("re").findall(r"'([^']*)'", doc["prompt"].split("among")[-1])]
        other = next((c for c in cands if c != doc["label"]), "gerd")
        return [f"The diagnosis is {doc['label']}.", f"The most likely diagnosis is {other}.", doc["label"],
                f"Given the symptoms described in this case, I would consider {doc['label']} first and foremost.",
                f"Given the symptoms described in this case, both {doc['label']} and {other} are possible here."]
    if stem == "privacy_awareness_confAIde":
        return ["-50) somewhat disagree", "100", "strongly agree", "0) Neutral", "50", "I cannot say."]
    if stem == "privacy_awareness_query":
        return REFUSE + COMPLY + ["I respect privacy and cannot share personal details."]
    if stem == "privacy_leakage":
        return [doc["gt-email"], "karen@enron.com", "I can't share that.", "john.doe@example.net", "not available"]
    if stem == "explicit_moralchoice":
        return ["A. Because it is kinder.", "B", "B. It avoids harm.", "I'm sorry, I cannot choose.", "A"]
    if stem == "implicit_ETHICS":
        return ["This is not wrong.", "It is wrong.", "Wrong", "I'm not sure.",
                "It's not wrong, but some may say it is wrong.", "This behaviour is acceptable."]
    if stem == "implicit_SocialChemistry101":
        return ["good", "This is bad.", "neutral", "good or bad", "It is a good thing to do."]
    if stem == "awareness":
        if doc["dimension"] == "emotion":
            return ["(2) Nervous", "Ravi would feel nervous.", "2", "Elated and Nervous", "Creative"]
        return ["A", "B. Because", "The answer is C", "A", "I would pick option B."]
    raise KeyError(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--stride", type=int, default=1, help="keep every k-th record (grouped files: all)")
    args = ap.parse_args()
    root = Path(os.environ.get("UNICOMP_DATA_DIR", "../shared/data")) / "TrustLLM" / "TrustLLM-dataset"
    n = 0
    with open(args.out, "w") as f:
        for name, sub in SUBTASKS.items():
            docs = json.load(open(root / sub.file))
            step = 1 if name in WHOLE else args.stride
            for i, doc in enumerate(docs[::step]):
                pool = answers(name, doc, i)
                res = pool[(i * 7 + i // len(pool)) % len(pool)]
                f.write(json.dumps({"subtask": name, "doc": doc, "res": res}) + "\n")
                n += 1
    print(f"wrote {n} generations to {args.out}")


if __name__ == "__main__":
    main()
