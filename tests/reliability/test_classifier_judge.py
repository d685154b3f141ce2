"""TrustLLM's refusal classifier as a judge: a real (tiny, random) Longformer sequence classifier
saved as a local folder stands in for LibrAI/longformer-harmful-ro. Its labels must equal what
TrustLLM's own call gives (`pipeline("text-classification")(text)[0]["label"]`, one answer at a
time), the refuse-to-answer rates must be recomputed from them, and the classifier's identity
(a hash of its files) must key the judge unit so another classifier re-judges without generating."""

from __future__ import annotations

import pytest
import torch

from unicomp.errors import UnicompError
from unicomp.reliability.judges.classifier import ClassifierJudgeConfig, RefusalClassifier, folder_digest, resolve
from unicomp.reliability.trustllm.subtasks import SUBTASKS
from unicomp.requests import EvalRequest
from unicomp.runs.evaluation import run_evaluation
from unicomp.runs.store import Store

TASKS = ["trustllm_safety_misuse", "trustllm_fairness_preference", "trustllm_truthfulness_external"]


def _save_classifier(folder, seed: int):
    import copy

    from tiny_models import tiny_tokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import LongformerConfig, LongformerForSequenceClassification, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    backend = copy.deepcopy(tiny_tokenizer().backend_tokenizer)  # RoBERTa-style: <s> text </s>, so "" has tokens
    backend.post_processor = TemplateProcessing(single="<|endoftext|> $A <|endoftext|>",
                                                special_tokens=[("<|endoftext|>", 0)])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                  pad_token="<pad>")
    cfg = LongformerConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, attention_window=[16], max_position_embeddings=1026, num_labels=2,
                           pad_token_id=tok.pad_token_id, bos_token_id=0, eos_token_id=0, initializer_range=0.5)
    model = LongformerForSequenceClassification(cfg).eval()  # wide init: labels depend on the text
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return _save_classifier(tmp_path_factory.mktemp("clf") / "refusal-clf", seed=5)


def _records(store_path, key):
    with Store(store_path) as store:
        return store.records(key)


def test_labels_equal_trustllms_pipeline_call(classifier_dir):
    from transformers import pipeline

    texts = ["I'm sorry, I can't help with that.", "Sure! Here is a detailed plan.", "", "No.",
             "The answer is B because the second option is cheaper " * 20]
    config = ClassifierJudgeConfig(model=str(classifier_dir), batch_size=2)
    labels = RefusalClassifier(config, resolve(config)).labels(texts)
    reference = pipeline("text-classification", model=str(classifier_dir), device="cpu")
    assert labels == [reference(t)[0]["label"] for t in texts]


def test_classifier_judge_in_a_run(tiny_model, classifier_dir, tmp_path, mirror):
    from transformers import pipeline

    store = tmp_path / "c.sqlite"
    judge = ClassifierJudgeConfig(model=str(classifier_dir)).model_dump()
    req = EvalRequest(model=str(tiny_model), tasks=TASKS, limit=8, batch_size=8, store=str(store),
                      refusal_classifier=judge)
    out = run_evaluation(req)
    units = {(u["task"], isinstance(u["data"].get("judge"), dict)): u for u in out["units"]}
    # external is scored by TrustLLM's string rule, never by the refusal classifier
    assert set(units) == {(t, False) for t in TASKS} | {(t, True) for t in TASKS[:2]}
    reference = pipeline("text-classification", model=str(classifier_dir), device="cpu")
    seen = set()
    for task in TASKS[:2]:
        judged = units[(task, True)]
        assert judged["data"]["judge"] == {"type": "classifier", "model": str(classifier_dir),
                                           "revision": folder_digest(classifier_dir), "refusal_label": "LABEL_0"}
        records = _records(store, judged["unit_key"])
        generated = _records(store, units[(task, False)]["unit_key"])
        assert [r["generation"] for r in records] == [r["generation"] for r in generated]
        metric = next(iter(SUBTASKS[task].metrics))
        for r in records:
            label = reference(r["generation"])[0]["label"]
            assert r["extra"] == {"judge": f"classifier:{classifier_dir}", "classifier_label": label}
            assert r["metrics"][metric]["refused"] == (label == "LABEL_0")
            seen.add(label)
        assert judged["data"]["judged_items"] == 8
    assert seen == {"LABEL_0", "LABEL_1"}  # both labels occur, so the rates below can be wrong
    misuse = _records(store, units[("trustllm_safety_misuse", True)]["unit_key"])
    rta = sum(reference(r["generation"])[0]["label"] == "LABEL_0" for r in misuse) / len(misuse)
    assert units[("trustllm_safety_misuse", True)]["scores"]["rta"] == pytest.approx(rta)

    # the same classifier: everything reused; another classifier: only the judge units run again
    assert all(u["reused"] for u in run_evaluation(req)["units"])
    other = _save_classifier(tmp_path / "other-clf", seed=4)
    again = run_evaluation(req.model_copy(update={"refusal_classifier": ClassifierJudgeConfig(model=str(other)).model_dump()}))
    assert {(u["task"], isinstance(u["data"].get("judge"), dict)): u["reused"] for u in again["units"]} == \
        {**{(t, False): True for t in TASKS}, **{(t, True): False for t in TASKS[:2]}}


def test_an_unreachable_hub_classifier_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(UnicompError) as err:
        resolve(ClassifierJudgeConfig())
    assert "LibrAI/longformer-harmful-ro" in err.value.problem and "not in the local hub cache" in err.value.problem
    assert "hf download LibrAI/longformer-harmful-ro" in err.value.fix


def test_a_classifier_without_the_refusal_label_lists_its_labels(classifier_dir):
    config = ClassifierJudgeConfig(model=str(classifier_dir), refusal_label="REFUSED")
    with pytest.raises(UnicompError, match=r"no label 'REFUSED' \(its labels: LABEL_0, LABEL_1\)"):
        RefusalClassifier(config, resolve(config))
