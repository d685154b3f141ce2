"""MMLU group scores: size-weighted over subjects, which equals the plain mean over all items."""

from __future__ import annotations

import pytest

from unicomp.evaluate.scoring import mean_and_stderr
from unicomp.report.groups import group_scores


def test_mmlu_group_is_the_item_level_mean():
    per_subject = {"mmlu_anatomy": [1, 0, 1], "mmlu_astronomy": [0, 0, 1, 1, 1], "mmlu_philosophy": [1, 1]}
    units = []
    for task, items in per_subject.items():
        mean, se = mean_and_stderr([float(x) for x in items])
        units.append({"task": task, "n_items": len(items), "scores": {"acc": mean}, "stderr": {"acc": se}})
    rows = {r["task"]: r for r in group_scores(units)}
    every_item = [x for items in per_subject.values() for x in items]
    assert rows["mmlu"]["scores"]["acc"] == pytest.approx(sum(every_item) / len(every_item))
    assert rows["mmlu"]["n_items"] == 10 and rows["mmlu"]["subtasks"] == 3
    assert rows["mmlu_stem"]["scores"]["acc"] == pytest.approx(5 / 8)  # anatomy + astronomy are STEM
    assert rows["mmlu_humanities"]["scores"]["acc"] == pytest.approx(1.0)
