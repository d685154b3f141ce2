"""Judge agreement: Cohen's kappa against scikit-learn and a hand computation, bootstrap intervals,
stratified samples, label files, the labeller, and the commands' bad input."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from unicomp.errors import UnicompError
from unicomp.reliability.agreement import agreement, cohen_kappa, compare_files, stratified_sample
from unicomp.reliability.labeller import label_file
from unicomp.reliability.labels import LabelRow, read_labels, write_labels

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_cli import assert_one_line_error, unicomp  # noqa: E402


def test_kappa_by_hand_and_against_scikit_learn():
    a = ["r", "r", "c", "c", "c", "r", "c", "c", "r", "c"]
    b = ["r", "c", "c", "c", "c", "r", "r", "c", "r", "c"]
    # p_o = 8/10; p_A(r) = 4/10, p_B(r) = 4/10 -> p_e = .16 + .36 = .52; kappa = (.8 - .52) / .48
    assert cohen_kappa(a, b) == pytest.approx((0.8 - 0.52) / 0.48)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    three = (["x", "y", "z", "x", "y", "z", "x"], ["x", "y", "y", "x", "z", "z", "y"])
    assert cohen_kappa(*three) == pytest.approx(cohen_kappa_score(*three))
    assert cohen_kappa(["r", "r"], ["r", "r"]) is None  # one label everywhere: undefined (sklearn: NaN)


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible():
    a = ["r"] * 30 + ["c"] * 70
    b = ["r"] * 25 + ["c"] * 5 + ["c"] * 60 + ["r"] * 10
    out = agreement(a, b, seed=3)
    assert out["items"] == 100 and out["resamples"] == 2000
    assert out["accuracy"] == pytest.approx(0.85)
    lo, hi = out["kappa_interval"]
    assert lo < out["kappa"] < hi and hi - lo < 0.4
    assert agreement(a, b, seed=3) == out and agreement(a, b, seed=4)["kappa_interval"] != out["kappa_interval"]


def test_stratified_sample_spreads_over_strata():
    items = [{"s": "big", "i": i} for i in range(90)] + [{"s": "small", "i": i} for i in range(10)]
    picked = stratified_sample(items, 20, lambda d: d["s"], seed=1)
    assert Counter(d["s"] for d in picked) == {"big": 10, "small": 10}
    tiny = stratified_sample(items[:95], 20, lambda d: d["s"], seed=1)
    assert Counter(d["s"] for d in tiny) == {"big": 15, "small": 5}  # a stratum short of its share gives it up
    assert stratified_sample(items, 200, lambda d: d["s"]) == items


def _write(path: Path, labels: dict[str, str | None], **extra) -> Path:
    write_labels(path, [LabelRow(i, f"prompt {i}", f"answer {i}", lab, dict(extra)) for i, lab in labels.items()])
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_label_files_round_trip_in_both_formats(tmp_path, suffix):
    path = _write(tmp_path / f"l{suffix}", {"1": "refused", "2": None, "3": "complied"}, task="t")
    rows = read_labels(path)
    assert [(r.item_id, r.label, r.extra) for r in rows] == [("1", "refused", {"task": "t"}), ("2", None, {"task": "t"}),
                                                             ("3", "complied", {"task": "t"})]


def test_bad_label_files_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"item_id": "1", "prompt": "p", "answer": "a", "label": "x"}) + "\n"
                    + json.dumps({"item_id": "2", "prompt": "p", "answer": "a"}) + "\n")
    with pytest.raises(UnicompError, match=r"bad.jsonl line 2: no label"):
        read_labels(path)
    path.write_text(json.dumps({"item_id": "1", "prompt": "p", "answer": "a", "label": "x"}) + "\n" * 2
                    + json.dumps({"item_id": "1", "prompt": "p", "answer": "a", "label": "y"}) + "\n")
    with pytest.raises(UnicompError, match=r"line 3: item_id '1' repeats line 1"):
        read_labels(path)


def test_compare_files_joins_on_ids_and_refuses_unknown_ids(tmp_path):
    judge = _write(tmp_path / "judge.jsonl", {str(i): ("r" if i % 3 else "c") for i in range(30)})
    human = _write(tmp_path / "human.csv", {str(i): ("r" if i % 3 or i == 0 else "c") for i in range(20)} | {"25": None})
    out = compare_files(judge, human)
    assert out["items"] == 20 and out["labelled_in_both"] == 20
    assert out["accuracy"] == pytest.approx(19 / 20)
    # per stratum (A's label here): "r" items all agree; of the 7 "c" items one was labelled "r"
    assert {k: (v["items"], v["accuracy"]) for k, v in out["by_stratum"].items()} == \
        {"r": (13, 1.0), "c": (7, pytest.approx(6 / 7))}
    stray = _write(tmp_path / "stray.jsonl", {"1": "r", "999": "c"})
    with pytest.raises(UnicompError, match=r"1 item id\(s\) match no item of .*judge.jsonl: '999'"):
        compare_files(judge, stray)


def test_labeller_saves_after_every_label_and_stops_on_q(tmp_path):
    path = _write(tmp_path / "todo.jsonl", {"a": None, "b": "refused", "c": None, "d": None})
    replies = iter(["7", "2", "s", "q"])  # 7 is not a choice: asked again
    counts = label_file(path, ["refused", "complied"], ask=lambda prompt: next(replies), show=lambda text: None)
    assert counts == {"labelled": 1, "skipped": 1, "left": 1}
    assert {r.item_id: r.label for r in read_labels(path)} == {"a": "complied", "b": "refused", "c": None, "d": None}


def test_commands_end_to_end_and_bad_input(tmp_path):
    judge = _write(tmp_path / "judge.jsonl", {str(i): ("r" if i % 3 else "c") for i in range(30)})
    human = _write(tmp_path / "human.jsonl", {str(i): ("r" if i % 4 else "c") for i in range(30)})
    out = tmp_path / "agreement.json"
    proc = unicomp("judge-agreement", str(judge), str(human), "--sample", "12", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["items"] == 12 and result["strata"] == {"r": 6, "c": 6} and "Cohen's kappa" in proc.stdout
    again = unicomp("judge-agreement", str(judge), str(human), "--sample", "12", "--seed", "1", "--json", str(out))
    assert again.returncode == 0, again.stderr  # its own JSON is overwritten; a stranger's file never is
    assert json.loads(out.read_text())["seed"] == 1
    stray = _write(tmp_path / "stray.jsonl", {"1": "r", "x9": "c"})
    out2 = tmp_path / "never.json"
    assert_one_line_error(unicomp("judge-agreement", str(judge), str(stray), "--json", str(out2)), "match no item", "'x9'")
    assert not out2.exists()
    labelled = unicomp("label", str(human), "--choices", "r,c")  # nothing to label: says so and changes nothing
    assert labelled.returncode == 0 and "labelled 0" in labelled.stdout
