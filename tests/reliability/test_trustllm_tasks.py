"""TrustLLM's 24 subtasks as tasks: every file read and validated, a limit that keeps every
stratum and whole scoring units, TrustLLM's prompt and decoding, and scores end to end."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

from unicomp.evaluate.runner import evaluate_task, load_task_docs
from unicomp.evaluate.tasks import expand_task_names, get_task
from unicomp.evaluate.tasks.trustllm import SEED, stratified_order
from unicomp.reliability.judges.refusal import is_refusal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripted_lm import ScriptedModel, unit_hash  # noqa: E402
from test_cli import assert_one_line_error, runs_in, unicomp  # noqa: E402

MIRROR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
TRUSTLLM = MIRROR / "TrustLLM" / "TrustLLM-dataset"
pytestmark = pytest.mark.skipif(not TRUSTLLM.is_dir(), reason="no TrustLLM files in the local mirror")


def _canon(rows):
    return Counter(json.dumps(r, sort_keys=True) for r in rows)


def test_24_subtasks_in_six_dimension_groups_each_reading_every_row_of_its_file():
    names = expand_task_names(["trustllm"])
    assert len(names) == 24
    per_dimension = Counter(get_task(n).category for n in names)
    assert per_dimension == {"truthfulness": 5, "safety": 3, "fairness": 5, "robustness": 4, "privacy": 3, "ethics": 4}
    for name in names:
        spec = get_task(name)
        assert expand_task_names([f"trustllm_{spec.category}"]).count(name) == 1
        docs, resolved = load_task_docs(spec, None)
        raw = json.loads((TRUSTLLM / spec.dataset.config / f"{spec.dataset.split}.json").read_text(encoding="utf-8"))
        assert _canon(docs) == _canon(raw), name  # reordered, never dropped or changed
        assert spec.max_gen_toks == 128 and spec.chat_template and spec.until == ()


def test_a_limit_keeps_every_stratum_and_whole_units():
    internal, _ = load_task_docs(get_task("trustllm_truthfulness_internal"), 8)
    assert Counter(d["source"] for d in internal) == {"squad": 2, "codah": 2, "hotpot": 2, "adversarial": 2}
    disparagement, _ = load_task_docs(get_task("trustllm_fairness_disparagement"), 6)
    assert len({(d["sex"], d["race"]) for d in disparagement}) == 6
    advglue, _ = load_task_docs(get_task("trustllm_robustness_AdvGLUE"), 8)
    pairs = Counter((d["task"], d["index"]) for d in advglue)
    assert len({t for t, _ in pairs}) == 4 and set(pairs.values()) == {2}
    instructions, _ = load_task_docs(get_task("trustllm_robustness_AdvInstruction"), 24)
    assert Counter(d["index"] for d in instructions) == {0: 12, 1: 12}
    assert instructions[0]["type"] == "original"
    jailbreak, _ = load_task_docs(get_task("trustllm_safety_jailbreak"), 14)
    assert len({d["label"][0] for d in jailbreak}) == 14  # one of each attack


def test_sycophancy_preference_pairs_survive_the_reordering():
    spec = get_task("trustllm_truthfulness_sycophancy")
    docs, resolved = load_task_docs(spec, None)
    ordered = [d for d in docs if d["source"] == "preference"]
    in_file = [d for d in resolved.rows if d["source"] == "preference"]
    assert ordered == in_file  # the pairs TrustLLM scores are consecutive preference rows of the file
    head, _ = load_task_docs(spec, 10)
    assert Counter(d["source"] for d in head) == {"persona": 4, "preference": 6}


def test_stratified_order_is_a_permutation_that_deals_units_round_robin():
    docs = [{"s": s, "u": u, "i": i} for i, (s, u) in enumerate([("a", 0), ("a", 0), ("a", 1), ("b", 2), ("b", 3), ("c", 4)])]
    out = stratified_order(docs, lambda d: d["s"], lambda ds: [d["u"] for d in ds])
    assert [d["i"] for d in out] == [0, 1, 3, 5, 2, 4]
    assert stratified_order(docs, None, None) == docs


def _refuse_half(context) -> str:
    (message,) = context  # one user turn: the record's prompt, no system message added by the task
    assert message["role"] == "user"
    return "I'm sorry, but I can't help with that." if unit_hash(message["content"]) < 0.5 else "Sure! Step one: ..."


def test_misuse_end_to_end_prompt_decoding_and_refusal_rate():
    spec = get_task("trustllm_safety_misuse")
    docs, resolved = load_task_docs(spec, 30)
    model = ScriptedModel(generate=_refuse_half)
    result = evaluate_task(model, spec, docs, resolved)
    contexts = [c for c, _ in model.generation_requests]
    assert [c[0]["content"] for c in contexts] == [d["prompt"] for d in docs]
    kwargs = [kw for _, kw in model.generation_requests]
    assert all(kw["max_gen_toks"] == 128 and kw["temperature"] == 1.0 for kw in kwargs)
    assert [kw["seed"] for kw in kwargs] == [SEED + i for i in range(30)]  # one seed per item
    refused = [is_refusal(_refuse_half([{"role": "user", "content": d["prompt"]}])) for d in docs]
    assert 0 < sum(refused) < 30
    assert result.scores["rta"] == pytest.approx(sum(refused) / 30)
    assert result.n_items == 30 and all(r.generation for r in result.records)


GOLD_WORD = {("qqp", 0): "no", ("qqp", 1): "yes", ("sst2", 0): "negative", ("sst2", 1): "positive",
             ("qnli", 0): "yes", ("qnli", 1): "no", ("mnli", 0): "yes", ("mnli", 1): "maybe", ("mnli", 2): "no"}
AFFIRMATIVE = {"qqp": "yes", "sst2": "positive", "qnli": "yes", "mnli": "yes"}


def test_greedy_subtask_and_a_paired_metric_end_to_end():
    """AdvGLUE: right on every original, the affirmative word on every modified item, so an attack
    succeeds exactly where the gold is not affirmative; RS = adversarial accuracy - attack success."""
    spec = get_task("trustllm_robustness_AdvGLUE")
    docs, resolved = load_task_docs(spec, 16)
    by_prompt = {d["prompt"]: d for d in docs}

    def answer(context) -> str:
        doc = by_prompt[context[0]["content"]]
        return GOLD_WORD[(doc["task"], doc["label"])] if doc["type"] == "original" else AFFIRMATIVE[doc["task"]]

    model = ScriptedModel(generate=answer)
    result = evaluate_task(model, spec, docs, resolved)
    assert all("temperature" not in kw for _, kw in model.generation_requests)  # greedy
    adv_acc, asr = {}, {}
    for task in AFFIRMATIVE:
        modified = [d for d in docs if d["task"] == task and d["type"] == "modified"]
        right = sum(GOLD_WORD[(task, d["label"])] == AFFIRMATIVE[task] for d in modified)
        adv_acc[task], asr[task] = right / len(modified), (len(modified) - right) / len(modified)
    assert result.scores["avg_acc"] == 1.0
    assert result.scores["avg_adv_acc"] == pytest.approx(sum(adv_acc.values()) / 4)
    assert result.scores["avg_asr"] == pytest.approx(sum(asr.values()) / 4)
    assert 0 < result.scores["avg_asr"] < 1
    assert result.scores["rs"] == pytest.approx(result.scores["avg_adv_acc"] - result.scores["avg_asr"])


def test_a_record_without_a_field_names_the_file_and_line_and_writes_nothing(tmp_path):
    mirror = tmp_path / "mirror"
    folder = mirror / "TrustLLM" / "TrustLLM-dataset" / "safety"
    folder.mkdir(parents=True)
    shutil.copy(TRUSTLLM / "safety" / "misuse.json", folder / "misuse.json")
    rows = json.loads((folder / "misuse.json").read_text())
    del rows[2]["prompt"]
    (folder / "misuse.json").write_text(json.dumps(rows, indent=2))
    store = tmp_path / "s.sqlite"
    proc = unicomp("eval", "--model", "smollm2-135m-instruct", "--tasks", "trustllm_safety_misuse", "--limit", "2",
                   "--store", str(store), "--data-dir", str(mirror))
    starts = [n for n, text in enumerate((folder / "misuse.json").read_text().split("\n"), start=1) if text == "  {"]
    line = starts[2]  # where record 2 opens
    assert_one_line_error(proc, f"misuse.json line {line}", "no field 'prompt'")
    assert runs_in(store) == 0


def test_an_unknown_subtask_names_close_matches(tmp_path):
    proc = unicomp("eval", "--model", "smollm2-135m-instruct", "--tasks", "trustllm_safety_misus", "--store",
                   str(tmp_path / "s.sqlite"))
    assert_one_line_error(proc, "unknown task 'trustllm_safety_misus'", "trustllm_safety_misuse")
    assert runs_in(tmp_path / "s.sqlite") == 0
