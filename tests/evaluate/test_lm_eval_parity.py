"""CI-sized version of bench/lm_eval_parity.py: our engine equals lm-eval's HFLM on SmolLM2.

lm-eval runs its OWN task definitions (only re-pointed at the mirror files) on the same model
object; we compare per-item log-likelihoods of every choice and the per-item acc / acc_norm.
"""

from __future__ import annotations

import json

import pytest

from unicomp.data.resolver import load_rows
from unicomp.evaluate.lm import LanguageModel
from unicomp.evaluate.runner import evaluate_task, load_task_docs
from unicomp.evaluate.tasks import get_task
from unicomp.evaluate.tasks.language_modelling import wikitext_pages

lm_eval = pytest.importorskip("lm_eval")
pytestmark = pytest.mark.slow
LIMIT = 12


@pytest.fixture(scope="module")
def smollm2():
    from unicomp.models import load_model

    return load_model("smollm2-135m-instruct", dtype="float32")


def test_multiple_choice_equals_lm_eval(smollm2, mirror, tmp_path):
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from unicomp.evaluate.lm_eval_adapter import write_lm_eval_mirror_tasks

    names = ["arc_easy", "hellaswag", "piqa", "winogrande"]
    lm_names = write_lm_eval_mirror_tasks(tmp_path, names, mirror)
    hflm = HFLM(pretrained=smollm2.model, tokenizer=smollm2.tokenizer, batch_size=8)
    theirs = simple_evaluate(model=hflm, tasks=lm_names, limit=LIMIT, task_manager=TaskManager(include_path=str(tmp_path)),
                             log_samples=True, bootstrap_iters=0, num_fewshot=0)
    ours_lm = LanguageModel(smollm2.model, smollm2.tokenizer, batch_size=5)  # a different batch size on purpose
    for name, lm_name in zip(names, lm_names):
        spec = get_task(name)
        docs, resolved = load_task_docs(spec, LIMIT)
        ours = evaluate_task(ours_lm, spec, docs, resolved, limit=LIMIT)
        samples = sorted(theirs["samples"][lm_name], key=lambda s: s["doc_id"])
        assert len(samples) == len(ours.records) == LIMIT
        for rec, sample in zip(ours.records, samples):
            ref = [float(r[0]) for r in sample["filtered_resps"]]
            assert rec.loglikelihoods == pytest.approx(ref, abs=1e-3), (name, rec.item_id)
            for metric in rec.metrics:
                assert rec.metrics[metric] == sample[metric], (name, rec.item_id, metric)


def test_wikitext_word_perplexity_equals_lm_eval(smollm2, mirror, tmp_path):
    """Two pages with a short window (so several rolling windows each), both engines."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from unicomp.evaluate.lm_eval_adapter import write_lm_eval_wikitext_task

    pages = wikitext_pages(load_rows("Salesforce/wikitext", "wikitext-2-raw-v1", "test").rows)[:2]
    pages_file = tmp_path / "pages.jsonl"
    pages_file.write_text("".join(json.dumps(p) + "\n" for p in pages))
    lm_name = write_lm_eval_wikitext_task(tmp_path, pages_file)
    hflm = HFLM(pretrained=smollm2.model, tokenizer=smollm2.tokenizer, batch_size=4, max_length=256)
    theirs = simple_evaluate(model=hflm, tasks=[lm_name], task_manager=TaskManager(include_path=str(tmp_path)),
                             bootstrap_iters=0)["results"][lm_name]
    spec = get_task("wikitext")
    docs, resolved = load_task_docs(spec, 2)
    ours = evaluate_task(LanguageModel(smollm2.model, smollm2.tokenizer, batch_size=3, max_length=256), spec, docs, resolved,
                         limit=2)
    for metric in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
        assert ours.scores[metric] == pytest.approx(theirs[f"{metric},none"], rel=1e-5), metric


def test_smollm2_loglikelihoods_do_not_depend_on_batch_size(smollm2, mirror):
    """Batch 1 vs 16, packed or not, within 1e-4 in fp32 on the real model."""
    spec = get_task("hellaswag")
    docs, resolved = load_task_docs(spec, 8)
    runs = []
    for batch_size, pack in ((1, False), (16, True), (16, False)):
        lm = LanguageModel(smollm2.model, smollm2.tokenizer, batch_size=batch_size, pack_choices=pack)
        runs.append(evaluate_task(lm, spec, docs, resolved, limit=8).records)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert a.loglikelihoods == pytest.approx(b.loglikelihoods, abs=1e-4)
            assert a.metrics == b.metrics
