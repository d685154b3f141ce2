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


# lm-eval task -> (its YAML under lm_eval/tasks, mirror file, split). lm-eval's own prompts and
# scoring, only re-pointed at the local mirror so it runs without the hub.
LM_EVAL_MIRROR_TASKS: dict[str, tuple[str, str, str]] = {
    "arc_easy": ("arc/arc_easy.yaml", "allenai/ai2_arc/ARC-Easy/test.jsonl", "test"),
    "arc_challenge": ("arc/arc_challenge.yaml", "allenai/ai2_arc/ARC-Challenge/test.jsonl", "test"),
    "hellaswag": ("hellaswag/hellaswag.yaml", "Rowan/hellaswag/default/validation.jsonl", "validation"),
    "piqa": ("piqa/piqa.yaml", "ybisk/piqa/default/validation.jsonl", "validation"),
    "winogrande": ("winogrande/default.yaml", "allenai/winogrande/winogrande_xl/validation.jsonl", "validation"),
    "bbq": ("bbq/bbq_multiple_choice.yaml", "oskarvanderwal/bbq/All/test.jsonl", "test"),
}
# lm-eval task -> {its few-shot split key ("training_split", "validation_split", "fewshot_split"): split};
# that split's file sits next to the test file.
LM_EVAL_MIRROR_FEWSHOT: dict[str, dict[str, str]] = {}
LM_EVAL_MIRROR_TASKS["gsm8k"] = ("gsm8k/gsm8k.yaml", "openai/gsm8k/main/test.jsonl", "test")
LM_EVAL_MIRROR_FEWSHOT["gsm8k"] = {"training_split": "train", "fewshot_split": "train"}


def _add_multilingual_mirror_tasks() -> None:
    """xcopa_*, mgsm_native_cot_* and global_mmlu_full_*_* by language. Global-MMLU is not in the
    shared mirror; a folder laid out like the hub (a test fixture, a user's copy) serves it."""
    from unicomp.evaluate.tasks.mmlu_subjects import MMLU_SUBJECTS
    from unicomp.evaluate.tasks.multilingual import GLOBAL_MMLU_LANGUAGES, MGSM_LANGUAGES, XCOPA_CONNECTORS

    entries = [(f"xcopa_{lang}", f"xcopa/default_{lang}.yaml", f"cambridgeltl/xcopa/{lang}", {"validation_split": "validation"})
               for lang in XCOPA_CONNECTORS]
    entries += [(f"mgsm_native_cot_{lang}", f"mgsm/native_cot/mgsm_native_cot_{lang}.yaml", f"juletxara/mgsm/{lang}",
                 {"training_split": "train"}) for lang in MGSM_LANGUAGES]
    entries += [(f"global_mmlu_full_{lang}_{s}", f"global_mmlu/full/{lang}/global_mmlu_full_{lang}_{s}.yaml",
                 f"CohereForAI/Global-MMLU/{lang}", {"fewshot_split": "dev"}) for lang in GLOBAL_MMLU_LANGUAGES for s in MMLU_SUBJECTS]
    for name, yaml_rel, data_dir, fewshot in entries:
        LM_EVAL_MIRROR_TASKS[name] = (yaml_rel, f"{data_dir}/test.jsonl", "test")
        LM_EVAL_MIRROR_FEWSHOT[name] = fewshot


_add_multilingual_mirror_tasks()


def write_lm_eval_mirror_tasks(folder, names, mirror) -> list[str]:
    """Write lm-eval task YAMLs (named `mirror_<task>`) that include lm-eval's originals but read
    the mirror's JSONL files; pass `folder` to `lm_eval.tasks.TaskManager(include_path=...)`."""
    from pathlib import Path

    import lm_eval

    tasks_root = Path(lm_eval.__file__).parent / "tasks"
    folder, mirror = Path(folder), Path(mirror)
    out = []
    for name in names:
        if name not in LM_EVAL_MIRROR_TASKS:
            raise UnicompError(f"no mirror mapping for lm-eval task {name!r}",
                               f"use a task of LM_EVAL_MIRROR_TASKS, e.g. {', '.join(list(LM_EVAL_MIRROR_TASKS)[:6])}")
        yaml_rel, data_rel, split = LM_EVAL_MIRROR_TASKS[name]
        fewshot = LM_EVAL_MIRROR_FEWSHOT.get(name, {})
        splits = {"validation_split": None, "test_split": None, "training_split": None, "fewshot_split": None,
                  f"{split}_split": split, **fewshot}
        # Few-shot files first: `datasets` infers the columns' types from the first file, and MGSM's
        # test rows have only nulls where the exemplars have text.
        files = {**{s: (mirror / data_rel).with_name(f"{s}.jsonl") for s in fewshot.values()}, split: mirror / data_rel}
        folder.joinpath(f"mirror_{name}.yaml").write_text(
            f"include: {tasks_root / yaml_rel}\ntask: mirror_{name}\ntag: []\ndataset_path: json\ndataset_name: null\n"
            "dataset_kwargs:\n  data_files:\n" + "".join(f"    {s}: {f}\n" for s, f in files.items())
            + "".join(f"{key}: {value or 'null'}\n" for key, value in splits.items()))
        out.append(f"mirror_{name}")
    return out


def write_lm_eval_wikitext_task(folder, pages_file) -> str:
    """lm-eval's `wikitext` task reading document-level pages from a local JSONL file."""
    from pathlib import Path

    import lm_eval

    base = Path(lm_eval.__file__).parent / "tasks" / "wikitext" / "wikitext.yaml"
    Path(folder).joinpath("mirror_wikitext.yaml").write_text(
        f"include: {base}\ntask: mirror_wikitext\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n    test: {pages_file}\n"
        "test_split: test\nvalidation_split: null\ntraining_split: null\n")
    return "mirror_wikitext"
