"""Hand a unicomp model (base or compressed) to lm-evaluation-harness.

lm-eval tasks call three methods on an `lm_eval.api.model.LM`; ours answer them with the same
engine our own tasks use, so any of lm-eval's hundreds of tasks runs on a compressed model:

    from lm_eval import simple_evaluate
    simple_evaluate(model=UnicompLMEval(LanguageModel(model, tokenizer)), tasks=["lambada_openai"])

lm-eval is an optional dependency (`pip install unicomp[dev]`); this module imports it lazily.
"""

from __future__ import annotations

from unicomp.errors import UnicompError
from unicomp.evaluate.lm import LanguageModel


def _lm_base():
    try:
        from lm_eval.api.model import LM
    except ImportError:
        raise UnicompError("lm-eval is not installed", "pip install 'lm-eval==0.4.13' (or unicomp[dev])") from None
    return LM


def UnicompLMEval(lm: LanguageModel):  # noqa: N802 - a class factory that reads like a class
    """An `lm_eval.api.model.LM` backed by `lm` (constructed lazily so lm-eval stays optional)."""
    base = _lm_base()

    class _Adapter(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.engine = lm

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return self.engine.loglikelihood([r.args for r in requests])

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            return [ll for ll, _ in self.engine.loglikelihood_rolling([r.args[0] for r in requests])]

        def generate_until(self, requests, disable_tqdm: bool = False):
            return self.engine.generate_until([(r.args[0], dict(r.args[1])) for r in requests])

        @property
        def tokenizer_name(self) -> str:
            return getattr(self.engine.tokenizer, "name_or_path", "unicomp").replace("/", "__")

        def apply_chat_template(self, chat_history, add_generation_prompt: bool = True) -> str:
            return self.engine.tokenizer.apply_chat_template(
                chat_history, tokenize=False, add_generation_prompt=add_generation_prompt)

    return _Adapter()
