"""A run report as one self-contained HTML file: no script, no CDN, no external file; figures are
inline SVG. Every text that comes from a model, a dataset or a config goes through `html.escape`,
so a model output holding `<script>` or `<img onerror=...>` is shown, never run.

Sections: what ran (provenance), retention per category (bars), the 13 metrics per variant
(radar), Pareto views of retained performance vs speed and vs memory, the reliability dimensions,
measured runtime, distances, and example outputs of generative tasks.
"""

from __future__ import annotations

import html
import math
from typing import Any

from unicomp.outputs import HTML_MARKER as GENERATOR  # how outputs.py recognises its own file
from unicomp.report.scores import METRICS13, pareto_front, scores13

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, spec: str = ".1f") -> str:
    return "–" if value is None else format(value, spec)


def _table(headers: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# ------------------------------------------------------------------------------------ figures
def retention_bars(categories: list[dict[str, Any]]) -> str:
    """Grouped bars: mean retention per category, one bar per variant; a line at 100%."""
    cats = list(dict.fromkeys(c["category"] for c in categories))
    models = list(dict.fromkeys(c["model"] for c in categories))
    values = {(c["model"], c["category"]): c["mean_retained_pct"] for c in categories}
    if not cats or not models:
        return ""
    top = max([100.0] + [v for v in values.values() if v is not None]) * 1.1
    w, h, pad = 120 * len(cats) + 80 + 160, 260, 40
    bar = (100 / max(1, len(models)))
    parts = [f'<svg class="figure" id="fig-retention" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">']
    y100 = h - pad - (h - 2 * pad) * 100 / top
    parts.append(f'<line x1="{pad}" x2="{w - 10}" y1="{y100:.1f}" y2="{y100:.1f}" stroke="#999" stroke-dasharray="4"/>')
    parts.append(f'<text x="4" y="{y100 + 4:.1f}" font-size="10">100%</text>')
    for i, cat in enumerate(cats):
        x0 = pad + 120 * i + 10
        for j, model in enumerate(models):
            v = values.get((model, cat))
            if v is None:
                continue
            bh = (h - 2 * pad) * max(0.0, v) / top
            parts.append(f'<rect x="{x0 + j * bar:.1f}" y="{h - pad - bh:.1f}" width="{bar - 2:.1f}" height="{bh:.1f}" '
                         f'fill="{COLORS[j % len(COLORS)]}"><title>{e(model)} {e(cat)}: {v:.1f}%</title></rect>')
        parts.append(f'<text x="{x0}" y="{h - pad + 14}" font-size="11">{e(cat)}</text>')
    parts.append(_legend(models, pad + 120 * len(cats) + 20, 10))
    parts.append("</svg>")
    return "".join(parts)


def _legend(models: list[str], x: float, y: float) -> str:
    return "".join(f'<rect x="{x}" y="{y + 14 * i}" width="10" height="10" fill="{COLORS[i % len(COLORS)]}"/>'
                   f'<text x="{x + 14}" y="{y + 9 + 14 * i}" font-size="10">{e(m)}</text>' for i, m in enumerate(models))


def radar(row: dict[str, Any], index: int) -> str:
    """The 13 metrics of one variant on 13 axes (0..150% of the base; the dashed ring is 100%)."""
    size, r = 340, 110
    cx = cy = size / 2
    n = len(METRICS13)
    parts = [f'<svg class="figure radar" width="{size + 160}" height="{size}" viewBox="0 0 {size + 160} {size}" '
             f'role="img"><title>{e(row["model"])}</title>']
    ring = " ".join(f"{cx + r * 100 / 150 * math.sin(2 * math.pi * k / n):.1f},"
                    f"{cy - r * 100 / 150 * math.cos(2 * math.pi * k / n):.1f}" for k in range(n))
    parts.append(f'<polygon points="{ring}" fill="none" stroke="#999" stroke-dasharray="4"/>')
    pts = []
    for k, metric in enumerate(METRICS13):
        ang = 2 * math.pi * k / n
        ax, ay = cx + r * math.sin(ang), cy - r * math.cos(ang)
        parts.append(f'<line x1="{cx}" y1="{cy}" x2="{ax:.1f}" y2="{ay:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{cx + (r + 12) * math.sin(ang):.1f}" y="{cy - (r + 12) * math.cos(ang):.1f}" '
                     f'font-size="9" text-anchor="middle">{e(metric)}</text>')
        v = row.get(metric)
        if v is not None:
            rr = r * min(max(v, 0.0), 150.0) / 150
            pts.append((cx + rr * math.sin(ang), cy - rr * math.cos(ang), metric, v))
    if len(pts) >= 2:
        parts.append('<polygon points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in pts)
                     + f'" fill="{COLORS[index % len(COLORS)]}" fill-opacity="0.3" stroke="{COLORS[index % len(COLORS)]}"/>')
    for x, y, metric, v in pts:
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLORS[index % len(COLORS)]}">'
                     f'<title>{e(metric)}: {v:.1f}</title></circle>')
    parts.append(f'<text x="{size + 10}" y="20" font-size="12">{e(row["model"])}</text>')
    parts.append(f'<text x="{size + 10}" y="36" font-size="10">{sum(1 for p in pts)} of {n} measured</text>')
    parts.append("</svg>")
    return "".join(parts)


def scatter(fig_id: str, points: list[tuple[str, float, float]], xlabel: str, ylabel: str) -> str:
    """Points (label, x, y), the Pareto front (higher is better on both) joined by a line."""
    if not points:
        return f'<p class="empty" id="{fig_id}">not measured in this run</p>'
    w, h, pad = 460, 300, 50
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    x0, x1 = min(xs + [0.0]), max(xs) * 1.15 or 1.0
    y0, y1 = min(ys + [0.0]), max(ys) * 1.15 or 1.0

    def px(x: float) -> float:
        return pad + (w - 2 * pad) * (x - x0) / ((x1 - x0) or 1)

    def py(y: float) -> float:
        return h - pad - (h - 2 * pad) * (y - y0) / ((y1 - y0) or 1)

    front = set(pareto_front(points))
    parts = [f'<svg class="figure" id="{fig_id}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">',
             f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#333"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#333"/>',
             f'<text x="{w / 2}" y="{h - 12}" font-size="11" text-anchor="middle">{e(xlabel)}</text>',
             f'<text x="12" y="{h / 2}" font-size="11" transform="rotate(-90 12 {h / 2})" text-anchor="middle">'
             f'{e(ylabel)}</text>']
    line = sorted((p for p in points if p[0] in front), key=lambda p: p[1])
    if len(line) >= 2:
        parts.append('<polyline points="' + " ".join(f"{px(x):.1f},{py(y):.1f}" for _, x, y in line)
                     + '" fill="none" stroke="#d62728" stroke-width="1.5"/>')
    for i, (label, x, y) in enumerate(points):
        color = "#d62728" if label in front else "#1f77b4"
        parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="5" fill="{color}"><title>{e(label)}: '
                     f'{x:.2f}, {y:.1f}</title></circle><text x="{px(x) + 7:.1f}" y="{py(y) - 6:.1f}" '
                     f'font-size="10">{e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------------ page
def _mean_performance(row: dict[str, Any]) -> float | None:
    vals = [row[c] for c in ("knowledge", "reasoning", "instruction_following", "multilingual") if row.get(c) is not None]
    return sum(vals) / len(vals) if vals else None


def render(report: dict[str, Any]) -> str:
    """The page, from a run report (runs/experiment.report; `examples` holds model outputs)."""
    export = report.get("export", {})
    config = export.get("config", {})
    env = export.get("environment", {})
    scores = scores13(report)
    units = export.get("units", [])
    reused = sum(1 for u in units if u.get("reused"))
    sections = [f"<h1>unicomp run {e(report.get('run_id'))}</h1>",
                "<h2>What ran</h2>",
                _table(["what", "value"], [
                    ["config", config.get("name")], ["base model", config.get("model")],
                    ["dtype / device", f"{config.get('dtype')} / {config.get('device')}"],
                    ["variants", ", ".join(v.get("name", "") for v in config.get("variants") or [])],
                    ["units", f"{len(units)} ({reused} reused from the store)"],
                    ["store", report.get("store")], ["unicomp", (env.get("packages") or {}).get("unicomp")],
                    ["git", env.get("git_revision")], ["machine", env.get("machine") or env.get("platform")],
                    ["data fallbacks", report.get("data_fallbacks") or "none"]], "provenance"),
                "<h2>Retention per category</h2>", retention_bars(report.get("categories", [])),
                "<h2>The 13 metrics per variant</h2>",
                "<p>Performance and reliability: retention vs the base (%). Efficiency: runtime acceleration, "
                "footprint and compute cost as ratios to the base (or to the cheapest compression), x100; "
                "formulas in docs/metrics.md. A dash is a metric this run did not measure.</p>",
                _table(["model", *METRICS13, "compression device-hours", "on"],
                       [[r["model"], *[_num(r.get(m)) for m in METRICS13], _num(r.get("compression_device_hours"), ".4f"),
                         r.get("compression_device") or "–"] for r in scores], "metrics13"),
                '<div class="radars">' + "".join(radar(r, i) for i, r in enumerate(scores)) + "</div>",
                "<h2>Trade-offs (Pareto front in red; measured on this machine)</h2>"]
    perf_speed = [(r["model"], r["runtime_acceleration"] / 100, _mean_performance(r)) for r in scores
                  if r.get("runtime_acceleration") is not None and _mean_performance(r) is not None]
    perf_mem = [(r["model"], r["footprint"] / 100, _mean_performance(r)) for r in scores
                if r.get("footprint") is not None and _mean_performance(r) is not None]
    sections.append(scatter("fig-pareto-speed", perf_speed, "speed-up vs base (x)", "performance retained (%)"))
    sections.append(scatter("fig-pareto-memory", perf_mem, "weights smaller than base (x)", "performance retained (%)"))
    dims = report.get("dimensions") or []
    sections.append("<h2>Reliability (TrustLLM dimensions)</h2>")
    sections.append(_table(["model", "dimension", "score", "retained %", "subtasks"],
                           [[d["model"], d["dimension"], _num(d["score"], ".3f"), _num(d["retained_pct"]), d["subtasks"]]
                            for d in dims], "reliability") if dims else "<p>not measured in this run</p>")
    runtime = [r for r in report.get("runtime") or [] if "skipped" not in r]
    sections.append("<h2>Efficiency: measured on this machine</h2>")
    sections.append(_table(["model", "dtype", "batch", "prefill tok/s", "x", "TTFT s", "decode tok/s", "x",
                            "peak MiB", "kernels", "measured on"],
                           [[r["model"], r["dtype"], r["batch"], _num(r["prefill_tokens_per_s"], ".0f"),
                             _num(r["prefill_speedup"], ".2f"), _num(r["ttft_s"], ".3f"), _num(r["decode_tokens_per_s"]),
                             _num(r["decode_speedup"], ".2f"), _num(r["peak_memory_bytes"] / 2**20, ".0f"),
                             ", ".join(f"{k} {v}" for k, v in r["kernels"].items()), r["measured_on"]]
                            for r in runtime], "runtime") if runtime else "<p>not measured in this run</p>")
    notes = sorted({f"{r['model']}: {n}" for r in runtime for n in r["notes"]})
    sections.append("".join(f"<p class=note>{e(n)}</p>" for n in notes))
    compression = report.get("compression") or {}
    if compression:
        targets = list(dict.fromkeys(d for c in compression.values() for d in c.get("modeled_device_hours") or {}))
        sections.append("<h2>Compute cost of each compression</h2>")
        sections.append("<p>Measured: wall time on the device named. Modeled: scaled by fp32 matmul throughput "
                        "(this device's measured / the target's datasheet peak), a lower bound.</p>")
        sections.append(_table(["variant", "method", "device-hours (measured)", "on", "peak MiB",
                                *[f"{d} h (modeled)" for d in targets]],
                               [[v, c.get("method"), _num(c.get("device_hours"), ".4f"), c.get("device") or "–",
                                 _num(None if c.get("peak_memory_bytes") is None else c["peak_memory_bytes"] / 2**20, ".0f"),
                                 *[_num((c.get("modeled_device_hours") or {}).get(d), ".2e") for d in targets]]
                                for v, c in compression.items()], "compute-cost"))
    if report.get("modeled"):
        sections.append("<h2>Efficiency: modeled (roofline, upper bounds; never mixed with measured)</h2>")
        sections.append(_table(["model", "device", "format", "kernel", "prefill tok/s", "decode tok/s", "memory GB"],
                               [[m["model"], m["device"], m["format"], m["kernel"], _num(m["prefill_tokens_per_s"], ".0f"),
                                 _num(m["decode_tokens_per_s"], ".0f"), _num(m["peak_memory_bytes"] / 1e9, ".2f")]
                                for m in report["modeled"]], "modeled"))
    pairs = report.get("calibration_pairs") or []
    if pairs:
        cats = sorted({c for p in pairs for c in p["retention"]})
        sections.append("<h2>Calibration study: the same method and options, different calibration data</h2>")
        sections.append(_table(["method", "variant", "calibration", "samples", *[f"{c} retained %" for c in cats]],
                               [[p["method"], p["variant"], p["calibration"], p["n_samples"],
                                 *[_num(p["retention"].get(c)) for c in cats]] for p in pairs], "calibration"))
    if report.get("distance"):
        sections.append("<h2>Distance to base (WikiText-2)</h2>")
        sections.append(_table(["model", "KL mean", "KL p99", "top-1 agreement"],
                               [[m, _num(d.get("kl_mean"), ".4f"), _num(d.get("kl_p99"), ".4f"),
                                 _num(d.get("top1_agreement"), ".3f")] for m, d in report["distance"].items()], "distance"))
    sections.append("<h2>Retention per task</h2>")
    sections.append(_table(["model", "task", "metric", "score", "retained %"],
                           [[r["model"], r["task"], r["metric"], _num(r["score"], ".4f"), _num(r["retained_pct"])]
                            for r in report.get("rows", [])], "retention"))
    examples = [[x["task"], x["model"], x["output"]] for x in report.get("examples") or []]
    if examples:
        sections.append("<h2>Example outputs (first item of each generative task; shown as text)</h2>")
        sections.append(_table(["task", "model", "output"], examples, "examples"))
    style = ("body{font-family:sans-serif;margin:24px;max-width:1200px}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px;text-align:left}"
             ".radars{display:flex;flex-wrap:wrap}.note{color:#555;font-size:12px}")
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{GENERATOR}'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            f"<title>unicomp run {e(report.get('run_id'))}</title><style>{style}</style></head><body>"
            + "".join(sections) + "</body></html>")
