"""Scoring kernel: feature vectors -> BP (ONNX) + online LR + AHP fusion + reason codes.

Target (issue): >= 50,000 events/s on one core in batches of 256, and <= 100 us for a
single event. Pinned to one core (sched_setaffinity) and one ONNX thread, as a worker runs.
The timed kernel starts from feature matrices: decoding and Redis are measured elsewhere.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np

from bench.results_io import write_result
from greencredit.models.bp import BpCreditModel
from greencredit.models.bp_features import BP_FEATURE_NAMES, load_german_credit
from greencredit.models.fusion import INDICATORS, FusionPolicy, fuse_batch
from greencredit.models.lender_config import default_lender_config
from greencredit.models.online_lr import OnlineRiskModel

RESULTS = Path(__file__).parent / "results" / "scoring.json"
BATCH = 256


def _kernel(bp, snapshot, policy, bp_x, lr_x, other):
    """The hot path the application agent runs per batch."""
    indicators = other.copy()
    indicators[:, INDICATORS.index("bp_default_risk")] = bp.predict_default_proba(bp_x)
    indicators[:, INDICATORS.index("online_lr_risk")] = snapshot.predict_matrix(lr_x)
    return fuse_batch(indicators, policy)


def _setup():
    features, labels = load_german_credit()
    bp = BpCreditModel.load()
    lr = OnlineRiskModel()
    for row, label in zip(features[:800], labels[:800], strict=True):  # a model with weights
        lr.learn_one(dict(zip(BP_FEATURE_NAMES, map(float, row), strict=True)), bool(label))
    snapshot = lr.snapshot(BP_FEATURE_NAMES)
    config = default_lender_config("bench")
    policy = FusionPolicy(
        dict(config.leaf_weights), config.approve_below, config.decline_at_or_above, config.version
    )
    rng = np.random.default_rng(0)
    rows = features[rng.integers(0, len(features), size=BATCH * 40)].astype(np.float32)
    other = rng.random((len(rows), len(INDICATORS)))
    other[:, INDICATORS.index("face_risk")] = np.nan  # not provided, as today
    return bp, snapshot, policy, rows, other


def main() -> dict:
    """Measure and write bench/results/scoring.json."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    bp, snapshot, policy, rows, other = _setup()
    lr_rows = rows.astype(np.float64)
    for _ in range(20):  # warm up
        _kernel(bp, snapshot, policy, rows[:BATCH], lr_rows[:BATCH], other[:BATCH])
    batch_rates = []
    for _ in range(5):
        start = time.perf_counter()
        for b in range(0, len(rows), BATCH):
            _kernel(
                bp,
                snapshot,
                policy,
                rows[b : b + BATCH],
                lr_rows[b : b + BATCH],
                other[b : b + BATCH],
            )
        batch_rates.append(len(rows) / (time.perf_counter() - start))
    singles = []
    for i in range(3000):
        j = i % len(rows)
        start = time.perf_counter()
        _kernel(bp, snapshot, policy, rows[j : j + 1], lr_rows[j : j + 1], other[j : j + 1])
        singles.append(time.perf_counter() - start)
    singles_us = sorted(s * 1e6 for s in singles)
    result = {
        "benchmark": "scoring_kernel",
        "batch_size": BATCH,
        "events_per_second_batched_median": round(statistics.median(batch_rates)),
        "events_per_second_batched_min": round(min(batch_rates)),
        "single_event_us_p50": round(singles_us[len(singles_us) // 2], 1),
        "single_event_us_p99": round(singles_us[int(len(singles_us) * 0.99)], 1),
        "targets": {"events_per_second_batched": 50_000, "single_event_us": 100},
        "cores": 1,
    }
    return write_result(RESULTS, result)


if __name__ == "__main__":
    main()
