"""`gsm8k` equals lm-eval 0.4.13's task: the same prompts (few-shot sampling included) and the
same scores for the same generations, through lm-eval's own filters and metric."""

from __future__ import annotations

import pytest

from unicomp.evaluate.prompts import contexts
from unicomp.evaluate.runner import load_task_docs
from unicomp.evaluate.tasks import get_task

lm_eval = pytest.importorskip("lm_eval")

LIMIT = 20


@pytest.fixture(scope="module")
def lm_eval_gsm8k(mirror, tmp_path_factory):
    from lm_eval.tasks import TaskManager

    from unicomp.evaluate.lm_eval_adapter import write_lm_eval_mirror_tasks

    folder = tmp_path_factory.mktemp("lm_eval_gsm8k")
    write_lm_eval_mirror_tasks(folder, ["gsm8k"], mirror)
    task = TaskManager(include_path=str(folder)).load("mirror_gsm8k")["tasks"]["mirror_gsm8k"]
    task.set_fewshot_seed(1234)  # simple_evaluate's default fewshot_random_seed
    task.build_all_requests(limit=LIMIT, rank=0, world_size=1)
    return task


@pytest.fixture(scope="module")
def ours(mirror):
    spec = get_task("gsm8k")
    docs, resolved = load_task_docs(spec, LIMIT)
    return spec, docs, contexts(spec, docs, resolved.fewshot_rows, spec.num_fewshot)


def test_prompts_equal_lm_eval_character_for_character(lm_eval_gsm8k, ours):
    spec, _, prompts = ours
    theirs = sorted(lm_eval_gsm8k.instances, key=lambda inst: inst.doc_id)
    assert len(theirs) == LIMIT
    for inst, prompt in zip(theirs, prompts):
        assert inst.args[0] == prompt
        assert inst.args[1]["until"] == list(spec.until)
    assert prompts[0].count("Question:") == 6  # 5 exemplars + the question


def _generations(doc: dict) -> list[str]:
    gold = doc["answer"].split("####")[-1].strip()
    return [doc["answer"], f" The answer is {gold}.", f" So she pays ${gold}.00 in total.", " #### 1,234",
            " I am not sure.", f" {gold} apples, then 3 more", " -7"]


def test_scores_equal_lm_eval_for_the_same_generations(lm_eval_gsm8k, ours):
    from unicomp.evaluate.runner import _generation

    spec, docs, _ = ours
    theirs = sorted(lm_eval_gsm8k.instances, key=lambda inst: inst.doc_id)
    for variant in range(len(_generations(docs[0]))):
        outputs = [_generations(d)[variant] for d in docs]

        class Fixed:  # the engine's contract: one answer per request, in order
            def generate_until(self, requests, progress=None):
                return outputs

        records, scores, _ = _generation(Fixed(), spec, docs, [[] for _ in docs], None, None)
        for inst, out in zip(theirs, outputs):
            inst.resps = [out]
        lm_eval_gsm8k.apply_filters()
        for inst, record in zip(theirs, records):
            for key in ("strict-match", "flexible-extract"):
                expected = lm_eval_gsm8k.process_results(inst.doc, [inst.filtered_resps[key]])["exact_match"]
                assert record.metrics[f"exact_match,{key}"] == expected, (variant, inst.doc_id, key, inst.filtered_resps[key])
