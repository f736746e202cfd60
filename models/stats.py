"""Order statistics shared by the demo's summary and the benchmarks (pure, no I/O)."""

from __future__ import annotations

import math

__all__ = ["percentile", "rank_auc"]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every reported value was observed)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def rank_auc(scores: list[float], positives: list[bool]) -> float | None:
    """ROC AUC by the rank-sum formula, ties counted half; None without both classes."""
    pos = sum(positives)
    neg = len(positives) - pos
    if pos == 0 or neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, p in zip(ranks, positives, strict=True) if p)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
