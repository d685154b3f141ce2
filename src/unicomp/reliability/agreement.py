"""Agreement between two judges, or a judge and human labels: accuracy (share of equal labels) and
Cohen's kappa, each with a percentile bootstrap interval, on a stratified sample.

    kappa = (p_o - p_e) / (1 - p_e),  p_o = share of items with equal labels,
    p_e = sum over labels l of p_A(l) * p_B(l)           (Cohen 1960)

When both judges give one and the same label to every item, p_e = 1 and kappa is undefined
(None), as in scikit-learn (which returns NaN). Intervals: 2,000 resamples of the items with
replacement (seeded), the 2.5th and 97.5th percentiles (numpy's default linear interpolation);
resamples where kappa is undefined are left out and counted.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

RESAMPLES = 2000


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    if len(a) != len(b) or not a:
        raise ValueError("two non-empty label lists of the same length are needed")
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[label] * cb[label] for label in ca) / (n * n)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def accuracy(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    return sum(x == y for x, y in zip(a, b)) / len(a)


def agreement(a: Sequence[Hashable], b: Sequence[Hashable], *, resamples: int = RESAMPLES, seed: int = 0,
              level: float = 0.95) -> dict[str, Any]:
    """Accuracy and kappa of paired labels, with bootstrap intervals."""
    n = len(a)
    rng = np.random.default_rng(seed)
    accs, kappas, undefined = [], [], 0
    pairs = list(zip(a, b))
    for _ in range(resamples):
        idx = rng.integers(0, n, size=n)
        sa, sb = [pairs[i][0] for i in idx], [pairs[i][1] for i in idx]
        accs.append(accuracy(sa, sb))
        k = cohen_kappa(sa, sb)
        if k is None:
            undefined += 1
        else:
            kappas.append(k)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2

    def interval(values: list[float]) -> list[float] | None:
        return [float(np.percentile(values, lo)), float(np.percentile(values, hi))] if values else None

    return {"items": n, "accuracy": accuracy(a, b), "accuracy_interval": interval(accs),
            "kappa": cohen_kappa(a, b), "kappa_interval": interval(kappas), "level": level, "resamples": resamples,
            "undefined_kappa_resamples": undefined, "seed": seed,
            "labels": sorted({str(x) for x in (*a, *b)})}


def stratified_sample(items: Sequence[dict], n: int, stratum: Callable[[dict], Hashable], *, seed: int = 0) -> list[dict]:
    """`n` items spread over strata as evenly as they allow (largest remainders to the biggest strata),
    drawn without replacement by a seeded shuffle; all items when there are at most `n`."""
    if n >= len(items):
        return list(items)
    groups: dict[Hashable, list[dict]] = {}
    for item in items:
        groups.setdefault(stratum(item), []).append(item)
    rng = random.Random(seed)
    for members in groups.values():
        rng.shuffle(members)
    quota = {k: 0 for k in groups}
    left = n
    while left:  # deal one at a time to strata that still have items, round-robin by size
        progressed = False
        for k in sorted(groups, key=lambda k: (-len(groups[k]), str(k))):
            if left and quota[k] < len(groups[k]):
                quota[k] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    return [item for k in groups for item in groups[k][:quota[k]]]


def compare_files(a_path, b_path, *, sample: int | None = None, stratify_by: str = "label", seed: int = 0,
                  resamples: int = RESAMPLES) -> dict[str, Any]:
    """Agreement of label file B with label file A on the items both labelled.

    Every id of B must be an item of A (B is typically a human's or a second judge's labels of a
    sample of A's items); A may hold more. `sample`: a stratified sample of that many items,
    stratified by A's label (or by another column of A)."""
    from unicomp.errors import UnicompError
    from unicomp.reliability.labels import read_labels

    rows_a, rows_b = read_labels(a_path), read_labels(b_path)
    by_id = {r.item_id: r for r in rows_a}
    unknown = [r.item_id for r in rows_b if r.item_id not in by_id]
    if unknown:
        shown = ", ".join(repr(i) for i in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise UnicompError(f"{b_path}: {len(unknown)} item id(s) match no item of {a_path}: {shown}",
                           f"label items exported from the same run as {a_path}, or pass the matching pair of files")
    both = [(by_id[r.item_id], r) for r in rows_b if r.label is not None and by_id[r.item_id].label is not None]
    if not both:
        raise UnicompError(f"no item is labelled in both {a_path} and {b_path}", "label some items first (`unicomp label`)")
    if stratify_by != "label" and stratify_by not in both[0][0].extra:
        raise UnicompError(f"{a_path} has no column {stratify_by!r} to stratify by",
                           f"use --stratify-by label or one of: {', '.join(both[0][0].extra) or '(no other columns)'}")
    key = (lambda p: p[0].label) if stratify_by == "label" else (lambda p: str(p[0].extra.get(stratify_by)))
    chosen = both if sample is None else stratified_sample([{"p": p} for p in both], sample, lambda d: key(d["p"]),
                                                           seed=seed)
    pairs = [c if isinstance(c, tuple) else c["p"] for c in chosen]
    out = agreement([a.label for a, _ in pairs], [b.label for _, b in pairs], resamples=resamples, seed=seed)
    out.update({"a": str(a_path), "b": str(b_path), "labelled_in_both": len(both), "stratified_by": stratify_by,
                "sample": sample, "strata": dict(Counter(key(p) for p in pairs))})
    # per stratum too: pooled kappa mixes label sets when strata are tasks with different labels
    out["by_stratum"] = {s: agreement([a.label for a, _ in ps], [b.label for _, b in ps], resamples=resamples, seed=seed)
                         for s in out["strata"] for ps in [[p for p in pairs if key(p) == s]]}
    return out
