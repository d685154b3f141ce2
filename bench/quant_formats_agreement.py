"""How close unicomp's loading of public GPTQ / AWQ checkpoints comes to the reference's own logits.

The fixtures in tests/fixtures/quant_formats were written by GPTQModel 7.6 on this CPU (its own
quantize, pack and save, and its own torch kernels for the reference logits, fp16; regenerate them with
`bench/quant_format_reference.py` in its own venv). This script loads each folder with unicomp, fp32
(the exact grid) and bf16 (packed execution), and records the largest logit difference against the
reference, beside one bf16 rounding step of the largest logit (the scale of "within bf16 rounding").

    python bench/quant_formats_agreement.py --json bench/results/quant_formats_agreement.json
    python bench/quant_formats_agreement.py --table bench/results/quant_formats_agreement.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from _cli import measure_or_render
from _machine import machine

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "quant_formats"
VARIANTS = {
    "gptq_w4_g32_sym_descact": "GPTQ 4-bit, act-order (g_idx scattered), symmetric",
    "gptq_w4_g32_asym": "GPTQ 4-bit, asymmetric, v1 zeros",
    "awq_gemm_w4_g32_zp": "AWQ GEMM 4-bit, zero point",
}


def measure() -> dict:
    import torch
    from safetensors.torch import load_file

    from unicomp.compress.quant.awq_format import load_awq
    from unicomp.compress.quant.gptq_format import load_gptq

    rows = []
    for variant, title in VARIANTS.items():
        ref = load_file(FIXTURES / f"{variant}.logits.safetensors")
        ids, expected = ref["input_ids"], ref["logits"].float()
        loader = load_awq if variant.startswith("awq") else load_gptq
        diffs, kinds = {}, {}
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            model = loader(FIXTURES / variant, dtype)
            with torch.no_grad():
                diffs[name] = float((model(ids).logits.float() - expected).abs().max())
            kinds[name] = dict(Counter(type(m).__name__ for n, m in model.named_modules()
                                       if n.startswith("model.layers") and n.endswith("_proj")))
        rows.append({"variant": variant, "title": title, "input_ids_shape": list(ids.shape),
                     "max_abs_logit_diff_fp32": diffs["fp32"], "max_abs_logit_diff_bf16": diffs["bf16"],
                     "modules_fp32": kinds["fp32"], "modules_bf16": kinds["bf16"],
                     "bf16_step_of_largest_logit": float(expected.abs().max()) * 2 ** -8,
                     "reference": json.loads((FIXTURES / f"{variant}.reference.json").read_text())["packed_by"]})
    return {"machine": machine(), "rows": rows}


def table_from_json(path: str) -> str:
    data = json.loads(Path(path).read_text())
    lines = ["| checkpoint | unicomp fp32 (exact grid) | unicomp bf16 | one bf16 step of the largest logit | bf16 modules |",
             "|---|---:|---:|---:|---|"]
    for r in data["rows"]:
        kinds = ", ".join(f"{k} x{v}" for k, v in r["modules_bf16"].items())
        lines.append(f"| {r['title']} | {r['max_abs_logit_diff_fp32']:.1e} | {r['max_abs_logit_diff_bf16']:.1e} "
                     f"| {r['bf16_step_of_largest_logit']:.1e} | {kinds} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    measure_or_render(ap, lambda a: measure(), table_from_json)


if __name__ == "__main__":
    main()
