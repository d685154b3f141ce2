"""Hand-made scoring cases for the paper's reasoning tasks, with lighteval 0.13's own scores.

Each case: (task, gold, generation, score lighteval 0.13 gives). `gold` is what lighteval's
Doc holds: gsm8k " <solution ending '#### N'>", math_500 "ANSWER: <solution>", gpqa the letter.
The expected scores were produced by lighteval's real metric objects (Metrics.expr_gold_metric,
Metrics.pass_at_k_math(k=1, n=1), Metrics.gpqa_instruct_pass_at_k(k=1)) after its default
<think> removal, by

    PYTHONPATH=src /tmp/lighteval-venv/bin/python bench/paper_protocols.py --check-cases

which fails if any expected value here differs from lighteval's. tests/evaluate/test_paper_reasoning.py
asserts unicomp's scorers give the same values.
"""

from __future__ import annotations

G = " Half of 1 is 1/2.\n#### 0.5"  # gsm8k-style gold whose answer is one half
K = " She earns 500*2 = <<500*2=1000>>1000 dollars.\n#### 1000"
NEG = " 3 - 10 = <<3-10=-7>>-7\n#### -7"
PCT = " 20/100 = 0.2\n#### 20"
M = "ANSWER: The sum is $\\boxed{\\frac{1}{2}}$."  # math_500-style gold
ROOT = "ANSWER: So $x = \\boxed{2\\sqrt{3}}$."
INTERVAL = "ANSWER: The solution set is $\\boxed{[-2, 7]}$."
CM = "ANSWER: The side is $\\boxed{5\\text{ cm}}$."
MONEY = "ANSWER: It costs $\\boxed{\\$5}$."

CASES: list[tuple[str, str, str, float]] = [
    # fractions: 1/2 vs 0.5 vs \frac{1}{2}
    ("gsm8k_paper", G, "The answer is 0.5", 1.0),
    ("gsm8k_paper", G, "The answer is 1/2", 1.0),
    ("gsm8k_paper", G, "The answer is $\\frac{1}{2}$", 1.0),
    ("gsm8k_paper", G, "So the result is \\boxed{\\dfrac{1}{2}}.", 1.0),
    ("gsm8k_paper", G, "The answer is 0.51", 0.0),
    ("math_500", M, "ANSWER: 0.5", 1.0),
    ("math_500", M, "ANSWER: 1/2", 1.0),
    ("math_500", M, "ANSWER: $\\dfrac{1}{2}$", 1.0),
    ("math_500", M, "The final answer is $\\boxed{\\frac{2}{4}}$. I hope it is correct.", 1.0),
    ("math_500", M, "ANSWER: $\\frac{1}{3}$", 0.0),
    # LaTeX: \boxed{}, \sqrt
    ("math_500", ROOT, "ANSWER: $2\\sqrt{3}$", 1.0),
    ("math_500", ROOT, "ANSWER: $\\sqrt{12}$", 1.0),
    ("math_500", ROOT, "ANSWER: $3\\sqrt{2}$", 0.0),
    ("math_500", INTERVAL, "ANSWER: $[-2,7]$", 1.0),
    ("math_500", INTERVAL, "ANSWER: $(-2,7)$", 0.0),
    # units
    ("gsm8k_paper", K, "She earns 1000 dollars.", 1.0),
    ("gsm8k_paper", K, "She earns $1000.", 1.0),
    ("math_500", CM, "ANSWER: 5 cm", 1.0),
    ("math_500", CM, "ANSWER: $5$", 1.0),
    ("math_500", MONEY, "ANSWER: $\\$5$", 1.0),
    ("math_500", MONEY, "ANSWER: 5 dollars", 1.0),
    # thousands separators
    ("gsm8k_paper", K, "The answer is 1,000.", 1.0),
    ("gsm8k_paper", K, "The answer is 1 000", 1.0),
    ("gsm8k_paper", K, "The answer is 1,001", 0.0),
    # negatives
    ("gsm8k_paper", NEG, "The answer is -7.", 1.0),
    ("gsm8k_paper", NEG, "The answer is 7.", 0.0),
    # percent: math-verify accepts "20%" for a gold of 20 (it also compares the percentage's number)
    ("gsm8k_paper", PCT, "The answer is 20%.", 1.0),
    ("gsm8k_paper", PCT, "The answer is 20 percent", 1.0),
    ("gsm8k_paper", PCT, "The answer is 0.2", 0.0),
    ("gsm8k_paper", PCT, "So 20 percent of the students. The answer is 20", 1.0),
    # anchors and priorities
    ("gsm8k_paper", K, "Answer : 1000", 1.0),
    # lighteval allows a space before the colon of "Answer:", which ranks that match first (plain
    # math-verify 0.5.2 would take "the answer is 1000" and score 1.0)
    ("gsm8k_paper", K, "Answer : 7. Checking again, the answer is 1000", 0.0),
    ("gsm8k_paper", K, "First 999, then ANSWER: 1000", 1.0),
    ("gsm8k_paper", K, "The final answer is 1000. I hope it is correct. Later I found 7.", 1.0),
    ("gsm8k_paper", K, "<think>maybe 1000</think> The answer is 7", 0.0),
    ("gsm8k_paper", K, "<think>maybe 7</think> The answer is 1000", 1.0),
    # clear non-matches
    ("gsm8k_paper", K, "I do not know.", 0.0),
    ("gsm8k_paper", K, "", 0.0),
    ("math_500", M, "I cannot solve this.", 0.0),
    # gpqa letters
    ("gpqa_diamond", "B", "Answer: B", 1.0),
    ("gpqa_diamond", "B", "The correct option is (B).", 1.0),
    ("gpqa_diamond", "B", "**B**", 1.0),
    ("gpqa_diamond", "B", "A is wrong because of X.\nAnswer: B", 1.0),
    ("gpqa_diamond", "B", "answer: b", 0.0),
    ("gpqa_diamond", "B", "Answer: C", 0.0),
    ("gpqa_diamond", "B", "The final answer is B. I hope it is correct.", 1.0),
    ("gpqa_diamond", "B", "Between A and B, I pick A", 0.0),
    ("gpqa_diamond", "C", "Considering all the options, the answer is clearly C", 1.0),
    ("gpqa_diamond", "D", "None of the above.", 0.0),
    # lighteval's last resort takes any capital A-D, here the "A" of "Answer": scored correct
    ("gpqa_diamond", "A", "Answer: E", 1.0),
    ("gpqa_diamond", "C", "Answer: E", 0.0),
]


def synthetic_gpqa(n: int = 198) -> list[dict]:
    """Rows with GPQA's columns and placeholder text (GPQA itself is gated): both lighteval and
    unicomp build their prompts from these in bench/paper_protocols.py and the tests."""
    return [{"Question": f" Question {i}: which option is right? ", "Correct Answer": f"right {i} ",
             "Incorrect Answer 1": f"wrong one {i}", "Incorrect Answer 2": f" wrong two {i}",
             "Incorrect Answer 3": f"wrong three {i}"} for i in range(n)]
