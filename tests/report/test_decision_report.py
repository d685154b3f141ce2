"""The HTML report in headless Chromium: a real run's report (tiny model, efficiency on) opens
offline with every figure present and drawn, model outputs holding script and onerror payloads
stay text (no element is created, no script runs), and `unicomp report` renders a stored run
and refuses an unknown run id in one line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from unicomp.config import load_config
from unicomp.report.html import render
from unicomp.runs.experiment import run_experiment

PAYLOAD = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return found


def _browser(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'profile'}", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tiny_model, tmp_path_factory, mirror):
    tmp = tmp_path_factory.mktemp("html")
    raw = {"name": "html", "model": str(tiny_model), "store": str(tmp / "s.sqlite"), "output_dir": str(tmp / "out"),
           "evaluation": {"tasks": ["arc_easy", "gsm8k_cot"], "limit": 2, "batch_size": 2, "max_gen_toks": {"gsm8k_cot": 8}},
           "calibration": {"source": "c4", "n_samples": 2, "seq_len": 32}, "distance": {"windows": 1, "seq_len": 32},
           "efficiency": {"prompt_tokens": 8, "new_tokens": 2, "decode_tokens": 2, "batch_sizes": [1], "repeats": 1,
                          "threads": 1, "dtypes": ["float32", "bfloat16"], "devices": ["l4"]},
           "variants": [{"name": "magnitude-50", "method": "magnitude", "options": {"sparsity": 0.5}},
                        {"name": "rtn-w4", "method": "rtn", "options": {"bits": 4, "group_size": 32}},
                        {"name": "wanda-50-c4", "method": "wanda", "options": {"sparsity": 0.5}},
                        {"name": "wanda-50-reasoning", "method": "wanda", "options": {"sparsity": 0.5},
                         "calibration": {"source": "reasoning", "n_samples": 2, "seq_len": 32, "chat_template": False}}]}
    (tmp / "c.yaml").write_text(yaml.safe_dump(raw))
    result = run_experiment(load_config(tmp / "c.yaml"))
    return result, tmp


def test_the_run_report_renders_every_figure_in_headless_chromium(report, tmp_path):
    result, tmp = report
    page = tmp / "out" / "html-report.html"
    assert page.is_file() and result["outputs"]["html"] == str(page)
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text  # offline, no script
    dom = _browser(["--dump-dom", page.as_uri()], tmp_path).stdout
    assert "<title>unicomp run" in dom
    figures = re.findall(r'<svg class="figure[^"]*"(?: id="([^"]+)")?[^>]*>(.*?)</svg>', dom, re.S)
    ids = {fid for fid, _ in figures if fid}
    assert {"fig-retention", "fig-pareto-speed", "fig-pareto-memory"} <= ids
    radars = [body for fid, body in figures if not fid]
    assert len(radars) == 4  # one per variant
    # the calibration study (same method and options, different data) and the modeled device table are shown
    assert [(p["variant"], p["calibration"]) for p in result["calibration_pairs"]] == \
        [("wanda-50-c4", "c4"), ("wanda-50-reasoning", "reasoning")]
    assert "Calibration study" in dom and "modeled (roofline" in dom
    modeled = {(m["device"], m["model"]): m for m in result["modeled"]}
    assert modeled[("l4", "rtn-w4")]["format"] == "w4a16" and modeled[("l4", "base")]["label"] == "modeled"
    for _, body in figures:
        assert re.search(r"<(rect|circle|polygon|polyline)\b", body), "an empty figure"
    scores = {row["model"]: row for row in __import__("unicomp.report.scores", fromlist=["x"]).scores13(result)}
    assert scores["rtn-w4"]["footprint"] > 100 and scores["magnitude-50"]["footprint"] == pytest.approx(100.0)
    assert scores["rtn-w4"]["runtime_acceleration"] is not None and scores["rtn-w4"]["compute_cost"] is not None
    from unicomp.efficiency.machine import cpu_name

    assert cpu_name() in scores["rtn-w4"]["compression_device"]  # device-hours of a named device
    shot = tmp_path / "report.png"
    _browser([f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri()], tmp_path)
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_model_outputs_with_script_payloads_stay_inert(report, tmp_path):
    result, _ = report
    hostile = {**result, "examples": [{"task": "gsm8k_cot", "model": "rtn-w4", "output": PAYLOAD}],
               "run_id": result["run_id"] + '"><script>alert(1)</script>'}
    page = tmp_path / "hostile.html"
    page.write_text(render(hostile))
    dom = _browser(["--dump-dom", page.as_uri()], tmp_path).stdout
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)  # no script ran
    assert "<script" not in dom and "<img" not in dom  # no element was created from the payload
    assert "&lt;script&gt;document.title" in dom  # it is shown as text


def test_unicomp_report_renders_a_stored_run_and_refuses_unknown_ids(report, tmp_path):
    from test_cli import assert_one_line_error, unicomp

    result, tmp = report
    out = tmp_path / "again.html"
    proc = unicomp("report", result["run_id"], "--store", str(tmp / "s.sqlite"), "--html", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == (tmp / "out" / "html-report.html").read_text()
    missing = tmp_path / "never.html"
    assert_one_line_error(unicomp("report", "20990101-000000-abcdef", "--store", str(tmp / "s.sqlite"), "--html",
                                  str(missing)), "no run '20990101-000000-abcdef'")
    assert not missing.exists()


def test_scores13_by_hand():
    from unicomp.report.scores import pareto_front, scores13

    report = {
        "rows": [{"model": m} for m in ("base", "a", "b")],
        "categories": [{"model": "a", "category": "knowledge", "mean_retained_pct": 90.0}],
        "dimensions": [{"model": "a", "dimension": "safety", "retained_pct": 80.0}],
        "runtime": [{"model": "a", "dtype": d, "batch": 1, "prefill_speedup": p, "decode_speedup": s}
                    for d, p, s in (("float32", 0.5, 1.0), ("bfloat16", 1.0, 4.0))]
                   + [{"model": "b", "dtype": "float32", "skipped": "quantized"}],
        "footprint": {"base": {"decoder_linear_bytes": 400}, "a": {"decoder_linear_bytes": 100}},
        "compression": {"a": {"wall_seconds": 30.0}, "b": {"wall_seconds": 60.0}},
    }
    a, b = scores13(report)
    assert a["knowledge"] == 90.0 and a["safety"] == 80.0 and a["reasoning"] is None
    assert a["runtime_acceleration"] == pytest.approx(100 * (1.0 * 4.0) ** 0.5)  # each phase's faster dtype
    assert a["footprint"] == 400.0 and a["compute_cost"] == 100.0 and b["compute_cost"] == 50.0
    assert b["runtime_acceleration"] is None and b["footprint"] is None  # not measured: None, never 0
    assert a["compression_device_hours"] == pytest.approx(30 / 3600)
    assert pareto_front([("x", 1, 90), ("y", 2, 80), ("z", 1, 70), ("w", 2, 90)]) == ["w"]


def test_best_ranks_by_modeled_speed_under_constraints(report, tmp_path):
    from test_cli import assert_one_line_error, unicomp

    from unicomp.report.best import candidates

    result, tmp = report
    store = str(tmp / "s.sqlite")
    out = candidates(result, "l4", max_memory_gb=None, floors={"knowledge": 0})
    rows = {r["model"]: r for r in out["rows"]}
    assert rows["base"]["format"] == rows["magnitude-50"]["format"] == "dense"
    assert rows["rtn-w4"]["format"] == "w4a16" and rows["rtn-w4"]["kernel"] and rows["rtn-w4"]["kind"] == "modeled"
    assert out["best"] == "rtn-w4"  # smallest weights decode fastest on a bandwidth-bound device
    proc = unicomp("best", result["run_id"], "--store", store, "--device", "l4", "--min-retention", "knowledge=0")
    assert proc.returncode == 0 and "best: rtn-w4" in proc.stdout, proc.stderr
    tight = unicomp("best", result["run_id"], "--store", store, "--device", "l4", "--max-memory-gb", "0.000001")
    assert tight.returncode == 1 and "no variant meets the constraints" in tight.stdout
    measured = candidates(result, "measured", max_memory_gb=None, floors={})
    assert {r["kind"] for r in measured["rows"]} == {"measured"} and measured["best"] is not None
    assert_one_line_error(unicomp("best", result["run_id"], "--store", store, "--device", "h100"),
                          "unknown device profile 'h100'", "h100-sxm")
    assert_one_line_error(unicomp("best", result["run_id"], "--store", store, "--min-retention", "speed=90"),
                          "--min-retention 'speed=90'")
