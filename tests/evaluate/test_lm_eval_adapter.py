"""Our engine inside lm-eval: lm-eval's own task, our model object, the same answers as our runner."""

from __future__ import annotations

import pytest

from tiny_models import tiny_llama, tiny_tokenizer
from unicomp.evaluate.lm import LanguageModel
from unicomp.evaluate.runner import evaluate_task, load_task_docs
from unicomp.evaluate.tasks import get_task

lm_eval = pytest.importorskip("lm_eval")


def test_lm_eval_runs_its_task_on_a_unicomp_model(mirror, tmp_path):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from unicomp.evaluate.lm_eval_adapter import UnicompLMEval, write_lm_eval_mirror_tasks

    engine = LanguageModel(tiny_llama(), tiny_tokenizer(), batch_size=4)
    names = write_lm_eval_mirror_tasks(tmp_path, ["arc_easy", "winogrande"], mirror)
    out = simple_evaluate(model=UnicompLMEval(engine), tasks=names, limit=6, log_samples=True, bootstrap_iters=0,
                          task_manager=TaskManager(include_path=str(tmp_path)), num_fewshot=0)
    for ours_name, lm_name in zip(["arc_easy", "winogrande"], names):
        spec = get_task(ours_name)
        docs, resolved = load_task_docs(spec, 6)
        ours = evaluate_task(engine, spec, docs, resolved, limit=6)
        samples = sorted(out["samples"][lm_name], key=lambda s: s["doc_id"])
        for rec, sample in zip(ours.records, samples):
            assert rec.loglikelihoods == pytest.approx([float(r[0]) for r in sample["filtered_resps"]], abs=1e-5)
        assert out["results"][lm_name]["acc,none"] == pytest.approx(ours.scores["acc"])
