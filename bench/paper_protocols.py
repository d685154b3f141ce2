"""unicomp's paper reasoning tasks against lighteval 0.13 itself: prompts, scores, generations.

Runs in a separate venv that has lighteval (it is not a unicomp dependency):

    python3.11 -m venv /tmp/lighteval-venv
    /tmp/lighteval-venv/bin/pip install torch==2.13.0 'lighteval==0.13.*' 'math-verify[antlr4_13_2]==0.5.2'
    PYTHONPATH=src UNICOMP_DATA_DIR=../shared/data /tmp/lighteval-venv/bin/python bench/paper_protocols.py

1. Prompts. lighteval's documents come from its real `Pipeline` set-up (random.seed(1234), task
   registry, `get_docs`: Random(42) evaluation order, few-shot selection), its prompts from its
   `PromptManager` (chat messages, and plain text). Ours from `load_task_docs` + the task's
   few-shot selection + `build_context`. Compared document by document (all of them by default).
   GPQA is gated on the hub, so both sides get the same synthetic rows made here (GPQA's columns,
   placeholder text): that checks option order, exemplar choice and assembly, not GPQA's text.
2. Scores. lighteval's metric objects (after its default <think> removal) and our
   `process_results` on the same generations: tests/evaluate/paper_reasoning_cases.py's hand
   cases (`--check-cases` fails if their recorded lighteval values are wrong), and answers made
   from each document's reference answer in several formats (boxed, "ANSWER:", thousands
   separators, "$", wrong by one, ...).
3. Generation (`--generate K`): lighteval's transformers backend and unicomp's engine greedily
   generate for the first K documents of lighteval's evaluation order with SmolLM2-135M-Instruct
   on the CPU; texts and scores are compared. (The paper used lighteval's vLLM backend; vLLM has
   no CPU build on PyPI, so that backend cannot run here.) `--repeats N` (default 1: one run is
   minutes) times each side's generation N times, alternating (lighteval's including its model
   load, as in one run, with a fresh response cache each time); `*_seconds` are medians,
   `*_seconds_runs` every run and `*_seconds_stats` their min/median/max (n=1 without repeats).

lighteval 0.13 does not start offline as installed: building its task registry imports every
task module, and `tiny_benchmarks.py` downloads a file at import while `mt_bench` calls
`HfApi.list_models(model_name=...)`, an argument huggingface_hub 1.0 removed. This script answers
the download with an HTTP error (lighteval ignores it) and gives `list_models` a stand-in; both
only matter to those two tasks. Datasets are read from the mirror instead of the hub.
"""

from __future__ import annotations

from _machine import machine, spread  # the CPU / GPU, threads and versions the numbers came from
import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "evaluate"))

LIGHTEVAL_TASKS = {"gsm8k_paper": "gsm8k|4", "math_500": "math_500|4", "gpqa_diamond": "gpqa:diamond|5"}
HASHED_ROWS = 20  # rows (file order) whose lighteval prompts --write-hashes records for the tests
HASHES = ROOT / "tests" / "evaluate" / "lighteval_prompt_hashes.json"


def synthetic_gpqa() -> list[dict]:
    from paper_reasoning_cases import synthetic_gpqa as rows

    return rows()


def offline_lighteval() -> None:
    """Let lighteval's registry import without the network (see the module docstring)."""
    import huggingface_hub
    import requests

    def refuse(url, *args, **kwargs):
        response = requests.Response()
        response.status_code, response.url = 503, url
        return response

    requests.get = refuse
    huggingface_hub.HfApi.list_models = lambda self, *a, **k: ["offline stand-in"]


def prompt_hash(prompt: str | list[dict[str, str]]) -> str:
    """sha256 of a prompt (chat messages as compact JSON): the tests compare these, no dataset text."""
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def mirror_files(data_dir: Path, dataset_id: str, config: str | None) -> dict[str, str]:
    folder = data_dir / dataset_id / (config or "default")
    return {p.stem: str(p) for p in sorted(folder.glob("*.jsonl"))}


def lighteval_docs(task: str, data_dir: Path, max_samples: int | None = None):
    """lighteval's evaluated Docs (with exemplars) from its own Pipeline set-up, mirror data."""
    from datasets import Dataset, DatasetDict, load_dataset
    from lighteval.logging.evaluation_tracker import EvaluationTracker
    from lighteval.models.dummy.dummy_model import DummyModelConfig
    from lighteval.pipeline import ParallelismManager, Pipeline, PipelineParameters
    from lighteval.tasks.lighteval_task import LightevalTask

    def load(task_obj):
        if task_obj.dataset_path == "Idavidrein/gpqa":
            return DatasetDict({"train": Dataset.from_list(synthetic_gpqa())})
        return load_dataset("json", data_files=mirror_files(data_dir, task_obj.dataset_path, task_obj.dataset_config_name))

    LightevalTask.download_dataset_worker = staticmethod(load)
    tracker = EvaluationTracker(output_dir=str(Path(tempfile.gettempdir()) / "lighteval-bench"), save_details=False)
    params = PipelineParameters(launcher_type=ParallelismManager.NONE, max_samples=max_samples)
    pipeline = Pipeline(tasks=task, pipeline_parameters=params, evaluation_tracker=tracker, model_config=DummyModelConfig())
    (docs,) = pipeline.documents_dict.values()
    return docs


def our_docs(name: str):
    """Our documents (all rows, file order) and each one's exemplars, as the runner computes them."""
    from unicomp.data.resolver import ResolvedDataset
    from unicomp.evaluate.prompts import select_fewshot
    from unicomp.evaluate.runner import load_task_docs
    from unicomp.evaluate.tasks.registry import get_task

    spec = get_task(name)
    if name == "gpqa_diamond":
        docs = spec.process_docs(synthetic_gpqa())
        pool = spec.process_docs(synthetic_gpqa())
    else:
        docs, resolved = load_task_docs(spec, None)
        pool = resolved.fewshot_rows
        assert isinstance(resolved, ResolvedDataset)
    return spec, docs, select_fewshot(spec, docs, pool, spec.num_fewshot)


def compare_prompts(name: str, data_dir: Path, limit: int | None, hashes: dict | None = None) -> dict:
    from lighteval.tasks.prompt_manager import PromptManager

    from unicomp.evaluate.lighteval_protocol import renderer
    from unicomp.evaluate.prompts import build_context
    from unicomp.evaluate.tasks import paper_reasoning

    theirs = lighteval_docs(LIGHTEVAL_TASKS[name], data_dir, limit)
    spec, docs, shots = our_docs(name)
    prompt = {"gsm8k_paper": paper_reasoning.GSM8K, "math_500": paper_reasoning.MATH, "gpqa_diamond": paper_reasoning.GPQA}[name]
    as_text = renderer(prompt, chat=False)
    chat_pm, text_pm = PromptManager(use_chat_template=True), PromptManager(use_chat_template=False)
    out = {"task": name, "lighteval": LIGHTEVAL_TASKS[name], "docs": len(theirs), "chat_equal": 0, "text_equal": 0,
           "gold_equal": 0, "generation_size": theirs[0].generation_size, "stop_sequences": list(theirs[0].stop_sequences),
           "mismatches": []}
    for doc in theirs:
        row = int(doc.id)
        ours_chat = build_context(spec, docs[row], shots[row])
        ours_text = as_text(docs[row], shots[row])
        chat_ok = ours_chat == chat_pm._prepare_chat_template(doc, tokenize=False)
        text_ok = ours_text == text_pm.prepare_prompt(doc)
        gold_ok = prompt.gold(docs[row]) == doc.get_golds()[0]
        out["chat_equal"] += chat_ok
        out["text_equal"] += text_ok
        out["gold_equal"] += gold_ok
        if not (chat_ok and text_ok and gold_ok) and len(out["mismatches"]) < 5:
            out["mismatches"].append(row)
        if hashes is not None and row < HASHED_ROWS:
            hashes.setdefault(name, {})[str(row)] = {
                "chat": prompt_hash(chat_pm._prepare_chat_template(doc, tokenize=False)),
                "text": prompt_hash(text_pm.prepare_prompt(doc)),
                "exemplar_rows": [int(s.id) for s in doc.fewshot_samples]}
    out["first_rows"] = [int(d.id) for d in theirs[:5]]
    out["first_exemplars"] = [int(s.id) for s in theirs[0].fewshot_samples]
    return out


def lighteval_metrics():
    from lighteval.metrics.metrics import Metrics

    return {"gsm8k_paper": Metrics.expr_gold_metric.value,
            "math_500": Metrics.pass_at_k_math(sample_params={"k": 1, "n": 1}),
            "gpqa_diamond": Metrics.gpqa_instruct_pass_at_k(sample_params={"k": 1})}


def lighteval_score(metric, gold: str, choices: list[str], gold_index: int, generation: str) -> float:
    """One generation scored as lighteval's pipeline does: reasoning tags removed, then the metric."""
    from lighteval.models.model_output import ModelResponse
    from lighteval.tasks.requests import Doc
    from lighteval.utils.utils import remove_reasoning_tags

    doc = Doc(query="", choices=choices, gold_index=gold_index)
    response = ModelResponse(text=[generation])
    response.text_post_processed = [remove_reasoning_tags(generation, [("<think>", "</think>")])]
    return float(metric.sample_level_fn.compute(doc=doc, model_response=response))


def _doc_for_gold(name: str, gold: str) -> dict:
    """A document of our task whose lighteval gold is `gold` (for the hand cases)."""
    if name == "gsm8k_paper":
        return {"question": "", "answer": gold[1:]}
    if name == "math_500":
        return {"problem": "", "solution": gold.removeprefix("ANSWER: "), "answer": ""}
    return {"_gold": "ABCD".index(gold)}


def check_cases() -> dict:
    from paper_reasoning_cases import CASES

    from unicomp.evaluate.tasks.registry import get_task

    metrics = lighteval_metrics()
    wrong = []
    for name, gold, generation, expected in CASES:
        choices, index = (list("ABCD"), "ABCD".index(gold)) if name == "gpqa_diamond" else ([gold], 0)
        theirs = lighteval_score(metrics[name], gold, choices, index, generation)
        ours = next(iter(get_task(name).process_results(_doc_for_gold(name, gold), generation).values()))
        if not (theirs == expected == ours):
            wrong.append({"task": name, "gold": gold, "generation": generation, "recorded": expected,
                          "lighteval": theirs, "unicomp": ours})
    return {"cases": len(CASES), "wrong": wrong}


def _variants(name: str, doc: dict) -> list[str]:
    """Answers in the formats models write, made from the document's reference answer."""
    if name == "gsm8k_paper":
        ans = doc["answer"].split("####")[-1].strip().replace(",", "")
        n = int(ans) if ans.lstrip("-").isdigit() else None
        out = [f"So the answer is {ans}.", f"ANSWER: {ans}", f"The final answer is $\\boxed{{{ans}}}$.",
               f"Answer : {ans}", f"<think>{ans}</think> It is 0.", doc["answer"]]
        if n is not None:
            out += [f"The total is ${n:,}.", f"{n + 1}", f"That makes {n} dollars in total, {n - 1} before."]
        return out
    if name == "math_500":
        ans = doc["answer"]
        return [f"ANSWER: {ans}", f"ANSWER: ${ans}$", f"The final answer is $\\boxed{{{ans}}}$. I hope it is correct.",
                f"\\boxed{{{ans}}}", doc["solution"], "ANSWER: 0", f"Answer : ${ans}$", f"ANSWER: ${ans}+1$"]
    letter = "ABCD"[doc["_gold"]]
    other = "ABCD"[(doc["_gold"] + 1) % 4]
    return [f"Answer: {letter}", f"answer: ({letter})", f"**{letter}**", f"Answer: {other}", f"{other} or {letter}? Answer: {letter}.",
            "I am not sure.", f"The final answer is {other}. I hope it is correct."]


def compare_scores(name: str, docs_limit: int | None) -> dict:
    from unicomp.evaluate.tasks import paper_reasoning

    spec, docs, _ = our_docs(name)
    metric = lighteval_metrics()[name]
    prompt = {"gsm8k_paper": paper_reasoning.GSM8K, "math_500": paper_reasoning.MATH, "gpqa_diamond": paper_reasoning.GPQA}[name]
    n = equal = 0
    theirs_total = ours_total = 0.0
    mismatches = []
    for doc in docs[:docs_limit]:
        gold = prompt.gold(doc)
        choices, index = (list("ABCD"), doc["_gold"]) if name == "gpqa_diamond" else ([gold], 0)
        for generation in _variants(name, doc):
            theirs = lighteval_score(metric, gold, choices, index, generation)
            ours = spec.process_results(doc, generation)[spec.metrics[0]]
            n += 1
            equal += theirs == ours
            theirs_total += theirs
            ours_total += ours
            if theirs != ours and len(mismatches) < 10:
                mismatches.append({"row": doc["_row"], "generation": generation[:200], "lighteval": theirs, "unicomp": ours})
    return {"task": name, "scored": n, "equal": equal, "lighteval_mean": theirs_total / max(n, 1),
            "unicomp_mean": ours_total / max(n, 1), "mismatches": mismatches}


def compare_generation(name: str, data_dir: Path, k: int, max_new_tokens: int, model_dir: Path,
                       repeats: int = 1) -> dict:
    """Greedy generations of lighteval's transformers backend and of unicomp's engine, same model."""
    from lighteval.models.transformers.transformers_model import (
        TransformersModel,
        TransformersModelConfig,
    )

    from unicomp.evaluate.lm import LanguageModel
    from unicomp.evaluate.prompts import build_context
    from unicomp.models.loading import load_model

    if not (model_dir / "config.json").exists():
        sys.exit(f"no model folder at {model_dir}; make it with unicomp's venv:\n  .venv/bin/python -c "
                 f"\"from unicomp.models.loading import load_model; m = load_model('smollm2-135m-instruct'); "
                 f"m.model.save_pretrained('{model_dir}'); m.tokenizer.save_pretrained('{model_dir}')\"")
    theirs_docs = lighteval_docs(LIGHTEVAL_TASKS[name], data_dir, k)
    for doc in theirs_docs:
        # Its transformers backend reads only the task's generation_size (math_500: 32768) on this
        # path; its vLLM backend uses `max_new_tokens or generation_size`. Give both sides the budget.
        doc.generation_size = max_new_tokens
    # Not `generation_parameters.max_new_tokens`: with it set, this backend also cuts every prompt to
    # its last max_new_tokens tokens (it sizes the tokenizer's truncation by it). vLLM does not.
    spec, docs, shots = our_docs(name)
    loaded = load_model(str(model_dir), dtype="float32")
    lm = LanguageModel(loaded.model, loaded.tokenizer, batch_size=1)
    rows = [int(d.id) for d in theirs_docs]
    kwargs = {**spec.generation_kwargs(), "max_gen_toks": max_new_tokens}
    their_runs: list[float] = []
    our_runs: list[float] = []
    for _ in range(repeats):  # the sides in turn, so the machine's drift hits both alike; greedy: same texts
        # a fresh cache folder each run: lighteval would otherwise answer from the previous run's responses
        config = TransformersModelConfig(model_name=str(model_dir), dtype="float32", device="cpu", batch_size=1,
                                         cache_dir=tempfile.mkdtemp(prefix="lighteval-cache-"))
        start = time.perf_counter()
        model = TransformersModel(config)
        theirs = [r.text[0] for r in model.greedy_until(theirs_docs)]
        their_runs.append(time.perf_counter() - start)
        del model
        start = time.perf_counter()
        ours = lm.generate_until([(build_context(spec, docs[r], shots[r]), kwargs) for r in rows])
        our_runs.append(time.perf_counter() - start)
    metric = lighteval_metrics()[name]
    items = []
    for doc, row, t, o in zip(theirs_docs, rows, theirs, ours):
        items.append({"row": row, "same_text": t == o,
                      "lighteval_score": lighteval_score(metric, doc.get_golds()[0], doc.choices, doc.gold_index, t),
                      "unicomp_score": spec.process_results(docs[row], o)[spec.metrics[0]],
                      "lighteval_text": t[:300], "unicomp_text": o[:300]})
    their_stats, our_stats = spread(their_runs), spread(our_runs)
    return {"task": name, "max_new_tokens": max_new_tokens, "lighteval_seconds": round(their_stats["median"], 1),
            "unicomp_seconds": round(our_stats["median"], 1), "lighteval_seconds_runs": their_runs,
            "lighteval_seconds_stats": their_stats, "unicomp_seconds_runs": our_runs, "unicomp_seconds_stats": our_stats,
            "items": items}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="gsm8k_paper,math_500,gpqa_diamond")
    ap.add_argument("--docs", type=int, default=None, help="documents compared per task (default: all)")
    ap.add_argument("--score-docs", type=int, default=200, help="documents whose answer variants are scored")
    ap.add_argument("--check-cases", action="store_true", help="only check the recorded hand cases")
    ap.add_argument("--generate", type=int, default=0, help="also generate for this many documents (CPU, slow)")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=1, help="timed generations per side and task (min/median/max)")
    ap.add_argument("--model-dir", type=Path, default=None,
                    help="a transformers folder of the model both tools generate with (needed by --generate)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--write-hashes", action="store_true", help=f"record lighteval's prompt hashes in {HASHES.name}")
    args = ap.parse_args()
    if args.generate and args.model_dir is None:
        ap.error("--generate needs --model-dir (a transformers folder lighteval can load)")
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    data_dir = Path(os.environ.get("UNICOMP_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
    os.environ["UNICOMP_DATA_DIR"] = str(data_dir)
    offline_lighteval()
    random.seed(0)
    report: dict = {"machine": machine(), "repeats": args.repeats, "cases": check_cases()}
    if not args.check_cases:
        names = [t for t in args.tasks.split(",") if t]
        hashes: dict | None = {} if args.write_hashes else None
        report["prompts"] = [compare_prompts(n, data_dir, args.docs, hashes) for n in names]
        if hashes is not None:
            ordered = {task: {row: rows[row] for row in sorted(rows, key=int)} for task, rows in hashes.items()}
            HASHES.write_text(json.dumps({"source": "lighteval 0.13.0 via bench/paper_protocols.py --write-hashes",
                                          **ordered}, indent=1) + "\n")
        report["scores"] = [compare_scores(n, args.score_docs) for n in names]
        if args.generate:
            report["generation"] = [compare_generation(n, data_dir, args.generate, args.max_new_tokens, args.model_dir,
                                                       args.repeats) for n in names if n != "gpqa_diamond"]
    text = json.dumps(report, indent=1, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text)
    if report["cases"]["wrong"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
