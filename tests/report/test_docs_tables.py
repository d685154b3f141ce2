"""scripts/docs_tables.py rewrites a docs page's run tables from the store, and --check notices a
number that no longer reproduces (a real tiny run; the script run as users run it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from unicomp.config import load_config
from unicomp.runs.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[2]


def script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "docs_tables.py"), *args], capture_output=True, check=False,
                          text=True, cwd=cwd, timeout=300)


def tiny_run(tmp_path: Path, tiny_model: Path, name: str, **overrides: object) -> tuple[Path, dict]:
    """(config path, result) of a real tiny run: the base and a magnitude-pruned variant, `overrides` on top."""
    raw = {"name": name, "model": str(tiny_model), "store": str(tmp_path / "s.sqlite"), "output_dir": str(tmp_path / "out"),
           "calibration": {"source": "c4", "n_samples": 2, "seq_len": 32}, "distance": {"enabled": False},
           "variants": [{"name": "magnitude-50", "method": "magnitude", "options": {"sparsity": 0.5}}], **overrides}
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config, run_experiment(load_config(config))


def render(tmp_path: Path, config: Path, kind: str) -> subprocess.CompletedProcess:
    """Run the script on a page holding one empty run table of `kind`; the page is tmp_path/page.md."""
    doc = tmp_path / "page.md"
    doc.write_text(f"<!-- run-table: {config} {kind} -->\n<!-- /run-table -->\n")
    return script(str(doc), cwd=tmp_path)


def rendered(tmp_path: Path, config: Path, kind: str) -> str:
    """The page after a successful `render`."""
    done = render(tmp_path, config, kind)
    assert done.returncode == 0, done.stderr
    return (tmp_path / "page.md").read_text()


def test_run_tables_come_from_the_store_and_check_catches_a_hand_edit(tmp_path: Path, tiny_model: Path) -> None:
    config, result = tiny_run(tmp_path, tiny_model, "doc", evaluation={"tasks": ["arc_easy"], "limit": 4, "batch_size": 4},
                              distance={"windows": 1, "seq_len": 32})
    doc = tmp_path / "page.md"
    doc.write_text(f"intro\n<!-- run-table: {config} -->\nold numbers\n<!-- /run-table -->\nend\n")

    assert script(str(doc), "--check", cwd=tmp_path).returncode == 1  # "old numbers" do not reproduce
    done = script(str(doc), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = doc.read_text()
    assert result["run_id"] in text and text.startswith("intro\n") and text.endswith("<!-- /run-table -->\nend\n")
    score = next(r["score"] for r in result["rows"] if r["model"] == "magnitude-50")
    assert f"| magnitude-50 | {score:.3f} |" in text
    assert script(str(doc), "--check", cwd=tmp_path).returncode == 0
    turned = rendered(tmp_path, config, "tasks")  # the same run, tasks down and models across
    row = next(r for r in result["rows"] if r["model"] == "magnitude-50" and r["task"] == "arc_easy")
    base = next(r["score"] for r in result["rows"] if r["model"] == "base" and r["task"] == "arc_easy")
    kept = "" if row["retained_pct"] is None else f" ({row['retained_pct']:.0f}%)"
    assert f"| arc_easy | {row['metric']} | {base:.3f} | {row['score']:.3f}{kept} |" in turned
    doc.write_text(text.replace(f"| magnitude-50 | {score:.3f} |", "| magnitude-50 | 0.999 |"))
    check = script(str(doc), "--check", cwd=tmp_path)
    assert check.returncode == 1 and "differs" in check.stdout


def test_efficiency_tables_come_from_the_runs_profiles_and_need_one(tmp_path: Path, tiny_model: Path) -> None:
    config, result = tiny_run(tmp_path, tiny_model, "eff", evaluation={"tasks": ["arc_easy"], "limit": 2, "batch_size": 2},
                              efficiency={"prompt_tokens": 16, "new_tokens": 4, "decode_tokens": 6, "batch_sizes": [1],
                                          "repeats": 1, "threads": 1, "dtypes": ["float32"], "devices": ["l4"]})
    text = rendered(tmp_path, config, "efficiency")
    report = json.loads((tmp_path / "out" / "eff-report.json").read_text())
    assert report["run_id"] == result["run_id"] and result["run_id"] in text
    for row in report["runtime"]:  # every measured profile is a row, with its own numbers
        assert f"| {row['model']}" in text and f"| {row['decode_tokens_per_s']:.1f} |" in text
    seconds = report["compression"]["magnitude-50"]["wall_seconds"]
    assert f"| {seconds:.0f} |" in text

    config, _ = tiny_run(tmp_path, tiny_model, "no_eff", evaluation={"tasks": ["arc_easy"], "limit": 2, "batch_size": 2})
    failed = render(tmp_path, config, "efficiency")
    assert failed.returncode != 0 and "measured no runtime" in failed.stderr


def test_bench_tables_are_what_the_bench_script_prints_for_its_results_file(tmp_path: Path) -> None:
    results = "bench/results/quant_efficiency_smollm2_512.json"  # a measured file kept in the repo
    doc = tmp_path / "page.md"
    doc.write_text(f"<!-- bench-table: bench/quant_efficiency.py {results} -->\nold\n<!-- /bench-table -->\n")
    assert script(str(doc), "--check", cwd=ROOT).returncode == 1
    assert script(str(doc), cwd=ROOT).returncode == 0
    printed = subprocess.run([sys.executable, "bench/quant_efficiency.py", "--table", results], capture_output=True,
                             text=True, cwd=ROOT, check=True).stdout.strip()
    text = doc.read_text()
    assert printed in text and "measured on" in text and "| w4a16 |" in text
    assert script(str(doc), "--check", cwd=ROOT).returncode == 0
    doc.write_text(text.replace("| w4a16 |", "| w4a16 (edited) |"))
    assert script(str(doc), "--check", cwd=ROOT).returncode == 1
    doc.write_text("<!-- bench-table: bench/quant_efficiency.py bench/results/missing.json -->\n<!-- /bench-table -->\n")
    missing = script(str(doc), cwd=ROOT)
    assert missing.returncode != 0 and "no file bench/results/missing.json" in missing.stderr


def test_dimension_tables_are_the_runs_reliability_scores_and_retention(tmp_path: Path, tiny_model: Path) -> None:
    config, _ = tiny_run(tmp_path, tiny_model, "rel", evaluation={
        "tasks": ["trustllm_privacy_privacy_awareness_confAIde", "trustllm_ethics_implicit_ETHICS"], "limit": 4,
        "batch_size": 4, "max_gen_toks": {"trustllm_privacy_privacy_awareness_confAIde": 8,
                                          "trustllm_ethics_implicit_ETHICS": 8}})
    text = rendered(tmp_path, config, "dimensions")
    report = json.loads((tmp_path / "out" / "rel-report.json").read_text())
    scored = list(dict.fromkeys(d["dimension"] for d in report["dimensions"]))  # a dimension needs a defined score
    assert "ethics" in scored and set(scored) <= {"privacy", "ethics"}
    assert "| model | " + " | ".join(scored) + " |" in text
    for d in report["dimensions"]:
        assert f"{d['score']:.3f}" in next(line for line in text.splitlines() if line.startswith(f"| {d['model']} |"))


def test_every_bench_table_in_the_benchmarks_page_reproduces_from_its_results_file() -> None:
    """The page's bench tables come from files kept in the repo, so they must match on any checkout."""
    done = script("docs/benchmarks.md", "--check", "--only", "bench", cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
