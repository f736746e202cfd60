"""The online LR's starting point: one pass over German Credit, shipped as pinned JSON.

Without it the online model predicts its prior (0.5) until enough labels arrive, and the
fusion would weigh a constant. One prequential pass over the 1,000 German Credit applicants
(shuffled with a fixed seed) gives it the same footing as the BP model; live labels then
move it towards the lender's own population. Rebuild with `greencredit train lr`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from .bp_features import BP_FEATURE_NAMES, load_german_credit
from .online_lr import OnlineRiskModel
from .pinned import read_pinned

__all__ = ["BOOTSTRAP_PATH", "build_bootstrap_state", "load_bootstrap_lr", "write_bootstrap"]

BOOTSTRAP_PATH = Path(__file__).resolve().parent / "artifacts" / "online_lr_bootstrap.json"


def build_bootstrap_state(seed: int = 0) -> tuple[dict[str, Any], dict[str, float]]:
    """Train one pass over the data; return the state and its prequential metrics."""
    from river import metrics

    features, labels = load_german_credit()
    order = np.random.default_rng(seed).permutation(len(labels))
    model = OnlineRiskModel()
    auc, loss = metrics.ROCAUC(), metrics.LogLoss()
    for index in order:
        x = dict(zip(BP_FEATURE_NAMES, map(float, features[index]), strict=True))
        y = bool(labels[index])
        p = model.predict_one(x)
        auc.update(y, p)
        loss.update(y, p)
        model.learn_one(x, y)
    state = model.to_state()
    # Timestamps would make every rebuild a different file; the bootstrap is data, not an event.
    state["created_at"] = state["updated_at"] = "2026-01-01T00:00:00+00:00"
    return state, {
        "prequential_auc": float(auc.get()),
        "prequential_log_loss": float(loss.get()),
        "n": len(labels),
    }


def write_bootstrap(path: Path = BOOTSTRAP_PATH, seed: int = 0) -> dict[str, Any]:
    """Rebuild the artifact and its .sha256; return the metrics."""
    state, report = build_bootstrap_state(seed)
    payload = json.dumps(state, indent=1, sort_keys=False).encode() + b"\n"
    path.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    path.with_name(path.name + ".sha256").write_text(digest + "\n")
    return {**report, "sha256": digest, "path": str(path)}


def load_bootstrap_lr(path: Path = BOOTSTRAP_PATH) -> OnlineRiskModel:
    """Load the shipped starting state, checking its pinned SHA-256."""
    payload, _ = read_pinned(path)
    return OnlineRiskModel.from_state(json.loads(payload))
