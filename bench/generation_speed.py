"""Generation speed and exactness: unicomp's continuous-batching engine vs `transformers.generate`
and vs lm-eval 0.4.13's HFLM `generate_until`, on the same GSM8K prompts, model, batch size and threads.

    UNICOMP_DATA_DIR=../shared/data python bench/generation_speed.py --limit 48 --limit-bs1 12 \
        --json bench/results/generation_speed.json

Prompts: lm-eval's `gsm8k` (5-shot, exemplars sampled as lm-eval samples them), greedy, fp32,
stop at "Question:", 256 new tokens at most. Reports per engine and batch size: wall seconds (prefill included), tokens/s of answer tokens
(counted by our engine: up to and including the token that completes a stop string or ends the
sequence; every engine produces the same answers, so the same work), and whether the texts
equal ours (and ours equal ours at the other batch size).
`--repeats N` (default 3) runs every engine N times per batch size, in interleaved rounds (the
machine's drift hits all engines alike); `seconds` and `tokens_per_s` are medians, `seconds_runs`
every run and `seconds_stats` their min/median/max. Texts are compared from the first round.
`--table JSON` prints the markdown table of a stored --json file (docs/benchmarks.md quotes it) and exits.
Needs the dev extra (lm-eval).
"""

from __future__ import annotations

from _machine import machine, spread  # the CPU / GPU, threads and versions the numbers came from
import argparse
import json
import time
from pathlib import Path

import torch


def gsm8k_prompts(limit: int) -> tuple[list[str], dict]:
    from unicomp.evaluate.prompts import contexts
    from unicomp.evaluate.runner import load_task_docs
    from unicomp.evaluate.tasks import get_task

    spec = get_task("gsm8k")
    docs, resolved = load_task_docs(spec, limit)
    return contexts(spec, docs, resolved.fewshot_rows, spec.num_fewshot), spec.generation_kwargs()


def run_ours(model, tok, prompts, kwargs, batch_size):
    from unicomp.evaluate.lm import LanguageModel

    lm = LanguageModel(model, tok, batch_size=batch_size)
    start = time.perf_counter()
    out = lm.generate([(p, kwargs) for p in prompts])
    return [g.text for g in out], time.perf_counter() - start, sum(g.completion_tokens for g in out)


def run_transformers(model, tok, prompts, kwargs, batch_size):
    """`generate` on static batches sorted by length, stop strings via its `stop_strings`."""
    from unicomp.evaluate.generation import cut_at_stop
    from unicomp.evaluate.lm import LanguageModel

    lm = LanguageModel(model, tok, batch_size=batch_size)
    eos = lm.eos_token_ids()
    enc = [lm.tok_encode(p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(enc[i]))
    texts: list[str] = [""] * len(prompts)
    start = time.perf_counter()
    for s in range(0, len(order), batch_size):
        chunk = order[s:s + batch_size]
        width = max(len(enc[i]) for i in chunk)
        ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        att = torch.zeros_like(ids)
        for b, i in enumerate(chunk):
            ids[b, width - len(enc[i]):] = torch.tensor(enc[i])
            att[b, width - len(enc[i]):] = 1
        out = model.generate(input_ids=ids, attention_mask=att, max_new_tokens=kwargs["max_gen_toks"], do_sample=False,
                             temperature=None, top_p=None, top_k=None, pad_token_id=tok.pad_token_id, eos_token_id=eos,
                             stop_strings=kwargs["until"], tokenizer=tok)
        for b, i in enumerate(chunk):
            texts[i] = cut_at_stop(tok.decode(out[b, width:].tolist(), skip_special_tokens=True), kwargs["until"])
    return texts, time.perf_counter() - start


def run_lm_eval(model, tok, prompts, kwargs, batch_size):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    hflm = HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size)
    reqs = [Instance("generate_until", {}, (p, dict(kwargs)), i) for i, p in enumerate(prompts)]
    start = time.perf_counter()
    texts = hflm.generate_until(reqs, disable_tqdm=True)
    return texts, time.perf_counter() - start


ENGINE_NAMES = {"ours": "unicomp", "transformers": "transformers.generate", "lm_eval": "lm-eval HFLM"}


def markdown(report: dict) -> str:
    """One row per engine and batch size; with --repeats, the spread of the seconds too. Reads files of
    older versions of this script (no `seconds_stats`) as well."""
    runs = report.get("runs") or []
    spread_col = any((r.get("seconds_stats") or {}).get("n", 1) > 1 for r in runs)
    head = ["engine", "batch", "prompts", "seconds", *(["seconds min-max"] if spread_col else []), "answer tokens/s",
            "texts equal to ours"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        stats = r.get("seconds_stats") or {}
        same = r.get("same_text_as_ours") or "-"
        if r.get("same_text_as_ours_at_other_batch_sizes"):
            same += f" ({r['same_text_as_ours_at_other_batch_sizes']} = ours at the other batch size)"
        cells = [ENGINE_NAMES.get(r.get("engine"), str(r.get("engine"))), str(r.get("batch_size", "-")),
                 str(r.get("prompts", "-")), "-" if r.get("seconds") is None else f"{r['seconds']:.2f}",
                 *([f"{stats['min']:.2f}-{stats['max']:.2f}" if "min" in stats else "-"] if spread_col else []),
                 "-" if r.get("tokens_per_s") is None else f"{r['tokens_per_s']:.1f}", same]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_from_json(path: str) -> str:
    """The markdown table of a results file written by --json."""
    return markdown(json.loads(Path(path).read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--limit", type=int, default=32)
    ap.add_argument("--batch-sizes", default="1,16")
    ap.add_argument("--engines", default="ours,transformers,lm_eval")
    ap.add_argument("--json", default=None)
    ap.add_argument("--limit-bs1", type=int, default=None, help="prompts for batch size 1 (default: --limit)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per engine and batch size (min/median/max)")
    ap.add_argument("--table", default=None, metavar="JSON", help="print the markdown table of a stored --json file")
    args = ap.parse_args()
    if args.table:
        print(table_from_json(args.table))
        return
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    from unicomp.models.loading import load_model

    loaded = load_model(args.model, dtype="float32")
    model, tok = loaded.model, loaded.tokenizer
    prompts, kwargs = gsm8k_prompts(args.limit)
    report = {"machine": machine(), "model": args.model, "limit": args.limit, "threads": torch.get_num_threads(), "kwargs": kwargs,
              "prompt_tokens_mean": sum(len(tok(p)["input_ids"]) for p in prompts) / len(prompts),
              "repeats": args.repeats, "runs": []}
    ours_by_prompt: dict[str, str] = {}
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        subset = prompts[:args.limit_bs1] if bs == 1 and args.limit_bs1 else prompts
        engines = args.engines.split(",")
        texts_of: dict[str, list[str]] = {}
        seconds_of: dict[str, list[float]] = {engine: [] for engine in engines}
        tokens = None
        for round_ in range(args.repeats):  # interleaved rounds: the machine's drift hits every engine alike
            for engine in engines:
                if engine == "ours":
                    texts, seconds, tokens = run_ours(model, tok, subset, kwargs, bs)
                elif engine == "transformers":
                    texts, seconds = run_transformers(model, tok, subset, kwargs, bs)
                else:
                    texts, seconds = run_lm_eval(model, tok, subset, kwargs, bs)
                texts_of.setdefault(engine, texts)  # greedy: every round writes the same texts
                seconds_of[engine].append(seconds)
                print(f"batch size {bs}, {engine}, round {round_ + 1}/{args.repeats}: {seconds:.2f} s", flush=True)
        reference = texts_of.get("ours")
        if reference is not None:
            same_other_bs = sum(ours_by_prompt.get(p, t) == t for p, t in zip(subset, reference))
            ours_by_prompt.update(zip(subset, reference))
        for engine in engines:
            texts, stats = texts_of[engine], spread(seconds_of[engine])
            seconds = stats["median"]
            row = {"engine": engine, "batch_size": bs, "prompts": len(subset), "seconds": round(seconds, 2),
                   # our count of answer tokens, the same work for every engine (they stop at the same places)
                   "tokens_per_s": round(tokens / seconds, 1) if tokens else None,
                   "seconds_runs": seconds_of[engine], "seconds_stats": stats,
                   "same_text_as_ours": None if reference is None else f"{sum(a == b for a, b in zip(texts, reference))}/{len(subset)}"}
            if engine == "ours":
                row["generated_tokens"] = tokens
                row["same_text_as_ours_at_other_batch_sizes"] = f"{same_other_bs}/{len(subset)}"
            report["runs"].append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
