"""IFEval scored with lm-eval 0.4.13's checkers (`lm_eval/tasks/ifeval`, Google's originals).

lm-eval is where IFEval's checkers are maintained (no standalone PyPI package has them), and
`lm-eval[ifeval]` installs cleanly; its one run-time download, `nltk.download("punkt_tab")` at
import when the data is missing, never happens because unicomp's shipped NLTK data is put on the
path first. langdetect (`language:response_language`) samples at random unless seeded; it is
seeded with 0 so a response is always judged the same way.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from unicomp.errors import UnicompError
from unicomp.evaluate.instructions.following import follow_instructions, item_metrics, keep_truthy
from unicomp.evaluate.instructions.nltk_resources import use_shipped_nltk_data

FIX = "pip install 'lm-eval[ifeval]==0.4.13' (it brings langdetect, immutabledict and nltk)"


@cache
def registry() -> dict[str, type]:
    """lm-eval's instruction id -> checker class (imported once, after the NLTK data is in place)."""
    use_shipped_nltk_data()
    try:
        import langdetect
        from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT
    except ImportError as exc:
        raise UnicompError(f"IFEval scoring needs lm-eval's IFEval checkers ({exc})", FIX) from None
    langdetect.DetectorFactory.seed = 0
    return dict(INSTRUCTION_DICT)


def process_results(doc: dict[str, Any], response: str) -> dict[str, float | list[float]]:
    """lm-eval's `ifeval` per-item metrics for one response."""
    strict, loose = follow_instructions(registry(), doc["instruction_id_list"], doc["kwargs"], doc["prompt"], response,
                                        keep=keep_truthy, item=str(doc.get("key", "")))
    return item_metrics(strict, loose)
