"""The 1:N match threshold: the rule, the verification metrics, and the calibration file.

A selfie is compared with every blacklist entry, so an honest applicant is falsely hit when
*any* of N comparisons clears the threshold. With a per-comparison false-accept rate FAR,
P(false hit) = 1 - (1 - FAR)^N <= N * FAR, so a target false-hit rate R needs
FAR <= R / N (:func:`per_comparison_far`). The threshold is the lowest similarity whose FAR
on impostor pairs of the *calibration* identities is at most that (:func:`threshold_for_far`);
it is evaluated on other, held-out identities. Between the review threshold and the match
threshold a selfie is a near miss: it goes to review with its similarity, it is not declined.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from greencredit.models.pinned import ModelIntegrityError, read_pinned

__all__ = [
    "Calibration",
    "per_comparison_far",
    "roc_auc",
    "tar_at_far",
    "threshold_for_far",
    "verification_pairs",
]


def per_comparison_far(false_hit_rate: float, blacklist_size: int) -> float:
    """The per-comparison FAR that keeps P(false hit over N entries) <= ``false_hit_rate``."""
    if not 0.0 < false_hit_rate < 1.0 or blacklist_size < 1:
        raise ValueError("false_hit_rate in (0, 1) and blacklist_size >= 1 expected")
    return false_hit_rate / blacklist_size


def threshold_for_far(impostor: np.ndarray, far: float) -> float:
    """Lowest threshold t with (impostor scores >= t) / n <= ``far``.

    With k = floor(far * n) allowed false accepts, t sits just above the (k+1)-th highest
    impostor score. When far * n < 1 that is the highest impostor score: the data cannot
    show a smaller FAR than about 3 / n (rule of three, 95 %), which the card states.
    """
    scores = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise ValueError("no impostor scores")
    allowed = math.floor(far * scores.size)
    if allowed >= scores.size:
        return float(scores[-1])
    return float(np.nextafter(scores[allowed], np.inf))


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the lowest threshold whose impostor FAR is <= ``far``."""
    threshold = threshold_for_far(impostor, far)
    return float((np.asarray(genuine) >= threshold).mean()), threshold


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Area under the ROC curve = P(genuine score > impostor score), ties counted half."""
    pos = np.asarray(genuine, dtype=np.float64)
    neg = np.sort(np.asarray(impostor, dtype=np.float64))
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (pos.size * neg.size))


def verification_pairs(embeddings: np.ndarray, people: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of all genuine pairs (same person) and impostor pairs (different people)."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    scores = unit @ unit.T
    upper = np.triu(np.ones_like(scores, dtype=bool), k=1)
    same = np.asarray(people)[:, None] == np.asarray(people)[None, :]
    return scores[upper & same], scores[upper & ~same]


@dataclass(frozen=True)
class Calibration:
    """The shipped thresholds and where they came from (``<model>.calibration.json``)."""

    threshold: float
    review_threshold: float
    embedder_sha256: str
    detail: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """Read a SHA-256-pinned calibration file."""
        payload, _ = read_pinned(path)
        data = json.loads(payload)
        threshold, review = float(data["threshold"]), float(data["review_threshold"])
        if not -1.0 <= review <= threshold <= 1.0:
            raise ModelIntegrityError(f"{path.name}: need -1 <= review <= threshold <= 1")
        return cls(threshold, review, str(data["embedder_sha256"]), data)
