"""Score generations with TrustLLM 0.3.0's OWN scorer functions (the reference side of trustllm_parity.py).

Runs in a separate venv, never in unicomp's:

    python3 -m venv /tmp/trustllm-venv
    /tmp/trustllm-venv/bin/pip install --no-deps trustllm==0.3.0
    /tmp/trustllm-venv/bin/pip install numpy scipy pandas scikit-learn tqdm

    /tmp/trustllm-venv/bin/python bench/trustllm_reference.py IN.json OUT.json

IN.json: {subtask: {"items": [TrustLLM record + "res" (+ pre-filled "eval_res" / "embedding")],
"get_res": {judge prompt: reply}, "embeddings": {text: vector}}}. OUT.json: {subtask: {metric: value}} under
unicomp's metric names, or {"error": "..."} where TrustLLM's code raises; plus "_task_prompt" (TrustLLM's
judge prompts, for the template check). What is stubbed, and why (TrustLLM would need torch, GPUs and APIs):
- `trustllm.utils.longformer`: the Longformer refusal classifier; items must carry the refusal label
  (`eval_res` = LABEL_0/LABEL_1) from unicomp's rule judge — the stub raises if one is missing.
- `gpt_auto_eval.get_res`: GPT-4; replies come from `get_res` (unicomp's rule verdicts keyed by the exact
  prompt TrustLLM builds) — a prompt we did not anticipate raises. Items TrustLLM sends to AutoEvaluator carry
  pre-filled `eval_res`, which AutoEvaluator honours.
- `embedder.DataEmbedder.get_embeddings`: ada-002; vectors come from `embeddings` (unicomp's TF-IDF).
- openai / tenacity / googleapiclient modules (imported at module level, unused here).
Everything else — extraction rules, judging of rule-decided items, aggregation — is TrustLLM's code.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import tempfile
import types


class _Stub(types.ModuleType):
    def __getattr__(self, k):
        if k.startswith("__"):
            raise AttributeError(k)
        return lambda *a, **kw: (lambda f: f)


for _name in ("openai", "tenacity", "googleapiclient", "googleapiclient.discovery"):
    if _name not in sys.modules:
        sys.modules[_name] = _Stub(_name)

_lf = types.ModuleType("trustllm.utils.longformer")


class HuggingFaceEvaluator:
    def __init__(self, *a, **k):
        pass

    def evaluate(self, data, resume=False, progress_filename=None):
        data = [el for el in data if el["res"] is not None and el != ""]  # TrustLLM's own filter
        for el in data:
            if "eval_res" not in el:
                raise KeyError("item without a pre-filled refusal label reached the Longformer stub")
        return data


_lf.HuggingFaceEvaluator = HuggingFaceEvaluator
sys.modules["trustllm.utils.longformer"] = _lf
import trustllm.utils  # noqa: E402

trustllm.utils.longformer = _lf
from trustllm.utils import embedder, gpt_auto_eval, metrics  # noqa: E402

GET_RES: dict[str, str] = {}
EMB: dict[str, list[float]] = {}


def _get_res(string, *a, **k):
    if string not in GET_RES:
        raise KeyError(f"judge prompt without a pre-computed reply: {string[:120]!r}")
    return GET_RES[string]


gpt_auto_eval.get_res = _get_res
embedder.DataEmbedder.get_embeddings = lambda self, s, *a, **k: EMB[s]

from trustllm.task import ethics, fairness, privacy, robustness, safety, truthfulness  # noqa: E402

T, S, F = truthfulness.TruthfulnessEval(), safety.SafetyEval(), fairness.FairnessEval()
R, P, E = robustness.RobustnessEval(), privacy.PrivacyEval(), ethics.EthicsEval()


def _slug(text):
    import re
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _jailbreak(d):
    out = {"rta": S.jailbreak_eval(copy.deepcopy(d), eval_type="total")}
    groups = {}
    for el in d:  # eval_type='single' groups by the list label and raises; group by its one element instead
        groups.setdefault(el["label"][0], []).append(el)
    for label, items in groups.items():
        out[f"rta_{_slug(label)}"] = S.jailbreak_eval(copy.deepcopy(items), eval_type="total")
    return out


def _advglue(d):
    res = R.advglue_eval(d)
    return {("rs" if k == "RS" else k): v for k, v in res.items()}


def _awareness(d):
    out = {}
    for dim in ("mission", "perspective", "capability"):
        if any(x["dimension"] == dim for x in d):
            out[dim] = E.other_awareness_eval(copy.deepcopy(d), specific_dimension=dim)[dim]
    emo = [x for x in d if x["dimension"] == "emotion"]
    if emo:
        out["emotion"] = E.emotional_awareness_eval(emo)
    vals = list(out.values())
    out["avg"] = sum(vals) / len(vals)
    return out


SCORERS = {
    "trustllm_truthfulness_internal": T.internal_eval,
    "trustllm_truthfulness_external": T.external_eval,
    "trustllm_truthfulness_hallucination": T.hallucination_eval,
    "trustllm_truthfulness_sycophancy": lambda d: {"persona": T.sycophancy_eval(copy.deepcopy(d), "persona"),
                                                   "preference": T.sycophancy_eval(copy.deepcopy(d), "preference")},
    "trustllm_truthfulness_golden_advfactuality": lambda d: {"corrected": T.advfact_eval(d)},
    "trustllm_safety_jailbreak": _jailbreak,
    "trustllm_safety_exaggerated_safety": lambda d: {"non_refusal": S.exaggerated_eval(d)},
    "trustllm_safety_misuse": lambda d: {"rta": S.misuse_eval(d)},
    "trustllm_fairness_stereotype_recognition": lambda d: {"accuracy": F.stereotype_recognition_eval(d)},
    "trustllm_fairness_stereotype_agreement": lambda d: {"agreement": F.stereotype_agreement_eval(d)},
    "trustllm_fairness_stereotype_query_test": lambda d: {"rta": F.stereotype_query_eval(d)},
    "trustllm_fairness_disparagement": lambda d: {f"p_value_{k}": v for k, v in F.disparagement_eval(d).items()},
    "trustllm_fairness_preference": F.preference_eval,
    "trustllm_robustness_AdvGLUE": _advglue,
    # advinstruction_eval embeds in thread-completion order; the spec'd parity call is its metric in file order
    "trustllm_robustness_AdvInstruction": lambda d: {"trustllm_similarity": metrics.average_cosine_similarity(d)},
    "trustllm_robustness_ood_detection": lambda d: {"rta": R.ood_detection(d)},
    "trustllm_robustness_ood_generalization": R.ood_generalization,
    "trustllm_privacy_privacy_awareness_confAIde": lambda d: {"pearson": P.ConfAIDe_eval(d)},
    "trustllm_privacy_privacy_awareness_query": lambda d: {
        "rta_normal": P.awareness_query_eval(copy.deepcopy(d), "normal"),
        "rta_aug": P.awareness_query_eval(copy.deepcopy(d), "aug")},
    "trustllm_privacy_privacy_leakage": lambda d: {k.lower(): v for k, v in P.leakage_eval(d).items()},
    "trustllm_ethics_explicit_moralchoice": lambda d: {"low_accuracy": E.explicit_ethics_eval(copy.deepcopy(d), "low"),
                                                       "high_rta": E.explicit_ethics_eval(copy.deepcopy(d), "high")},
    "trustllm_ethics_implicit_ETHICS": lambda d: E.implicit_ethics_eval(d, "ETHICS"),
    "trustllm_ethics_implicit_SocialChemistry101": lambda d: E.implicit_ethics_eval(d, "social_norm"),
    "trustllm_ethics_awareness": _awareness,
}


def _num(v):
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return str(v)


def main() -> None:
    payload = json.load(open(sys.argv[1]))
    out = {"_task_prompt": trustllm.config.task_prompt}
    for name, spec in payload.items():
        GET_RES.clear(), EMB.clear()
        GET_RES.update(spec.get("get_res", {}))
        EMB.update(spec.get("embeddings", {}))
        with tempfile.TemporaryDirectory() as cwd:  # TrustLLM writes progress/log files (and reloads them)
            here = os.getcwd()
            os.chdir(cwd)
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    res = SCORERS[name](copy.deepcopy(spec["items"]))
                out[name] = {k: _num(v) for k, v in res.items()}
            except Exception as e:  # report TrustLLM's own failure instead of a number
                out[name] = {"error": f"{type(e).__name__}: {e}"}
            finally:
                os.chdir(here)
    json.dump(out, open(sys.argv[2], "w"), indent=1)


if __name__ == "__main__":
    main()
