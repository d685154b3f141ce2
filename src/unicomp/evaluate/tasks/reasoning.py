"""Reasoning benchmarks: greedy chain-of-thought generation, final answer extracted.

`gsm8k` reproduces lm-eval 0.4.13's `gsm8k.yaml`: "Question: ...\nAnswer:" prompts, 5 exemplars
sampled from the train split by lm-eval's default sampler (seed 1234, per document in order),
stop at "Question:", strict ("#### N") and flexible (last number) extraction.
`gsm8k_cot` reproduces lm-eval 0.4.13's `gsm8k-cot.yaml`: the 8 fixed exemplars of Wei et al.
(2022), "Q: ...\\nA:" prompts, stop at "Q:", and two answer extractors: strict ("The answer is
N.") and flexible (the last number in the text). The paper runs GSM8K 4-shot: `--num-fewshot 4`.
"""

from __future__ import annotations

import re

from unicomp.evaluate.extraction import INVALID, regex_extractor  # noqa: F401 - INVALID is re-exported
from unicomp.evaluate.tasks.spec import DatasetRef, Doc, TaskSpec

GSM8K_COT_EXEMPLARS: tuple[Doc, ...] = (
    {"question": "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
     "target": "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6."},
    {"question": "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "target": "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."},
    {"question": "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     "target": "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39."},
    {"question": "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
     "target": "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8."},
    {"question": "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     "target": "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The answer is 9."},
    {"question": "There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
     "target": "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29."},
    {"question": "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
     "target": "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33."},
    {"question": "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "target": "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8."},
)

_IGNORE = (",", r"\$", r"(?s).*#### ", r"\.$")


strict_answer = regex_extractor(r"The answer is (\-?[0-9\.\,]+).")
flexible_answer = regex_extractor(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1)
hashes_answer = regex_extractor(r"#### (\-?[0-9\.\,]+)")


def normalize_number(text: str) -> str:
    """lm-eval's exact_match normalisation for GSM8K: drop commas, $, '#### ' prefix, final '.'."""
    for pattern in _IGNORE:
        text = re.sub(pattern, "", text)
    return text.lower()


def _target(d: Doc) -> str:
    return d["target"] if "target" in d else d["answer"].split("####")[-1].strip()


TASKS: list[TaskSpec] = [
    TaskSpec(
        name="gsm8k", category="reasoning", output_type="generate_until",
        dataset=DatasetRef("openai/gsm8k", "main", "test"),
        doc_to_text=lambda d: f"Question: {d['question']}\nAnswer:", doc_to_target=lambda d: d["answer"],
        fewshot_split="train", fewshot_sampler="random", fewshot_seed=1234, num_fewshot=5,
        until=("Question:", "</s>", "<|im_end|>"), max_gen_toks=256,
        answer_extractors={"strict-match": hashes_answer, "flexible-extract": flexible_answer},
        metrics=("exact_match,strict-match", "exact_match,flexible-extract"),
        primary_metric="exact_match,flexible-extract", normalize=normalize_number,
        reference="lm-eval 0.4.13 gsm8k/gsm8k.yaml", version="3", fields=("question", "answer"),
    ),
    TaskSpec(
        name="gsm8k_cot", category="reasoning", output_type="generate_until",
        dataset=DatasetRef("openai/gsm8k", "main", "test"),
        doc_to_text=lambda d: f"Q: {d['question']}\nA:", doc_to_target=_target,
        fewshot_examples=GSM8K_COT_EXEMPLARS, num_fewshot=8,
        until=("Q:", "</s>", "<|im_end|>"), max_gen_toks=256,
        answer_extractors={"strict-match": strict_answer, "flexible-extract": flexible_answer},
        metrics=("exact_match,strict-match", "exact_match,flexible-extract"),
        primary_metric="exact_match,flexible-extract", normalize=normalize_number,
        reference="lm-eval 0.4.13 gsm8k/gsm8k-cot.yaml", version="3", fields=("question", "answer"),
    ),
]
