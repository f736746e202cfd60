"""Transaction fraud score: rules over Redis features plus the online LR, as noisy-OR.

Each rule yields a risk in [0, 1] and has a weight (how much that evidence alone says);
they combine as independent evidence, 1 - prod(1 - w_i * r_i), so one strong signal is
enough to alert and adding a rule can only raise the score. The online LR is one more
piece of evidence: it starts near the fraud base rate and learns from analysts' labels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from .features import (
    CARD_VELOCITY,
    DeviceRule,
    TransactionFeatures,
    amount_anomaly,
    device_risk,
    device_rules,
    is_night_time,
    velocity_risk,
)

__all__ = [
    "FRAUD_WEIGHTS",
    "FraudScore",
    "alert_severity",
    "transaction_fraud_score",
    "transaction_lr_features",
]

# Weight of each piece of evidence alone. A large amount right after a SIM swap is the
# account-takeover pattern and nearly decisive; a new merchant at night alone is common.
FRAUD_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "SIM_SWAP_LARGE_AMOUNT": 0.9,
        "AMOUNT_ANOMALY": 0.6,
        "DEVICE_RISK": 0.6,
        "CARD_VELOCITY": 0.5,
        "GEO_MISMATCH": 0.5,
        "ONLINE_LR": 0.5,
        "NIGHT_TIME_NEW_MERCHANT": 0.4,
    }
)
# "Large" for the SIM-swap rule: an amount this anomalous for the account (risk from the
# z-score ramp) counts as large.
LARGE_AMOUNT_ANOMALY = 0.5


@dataclass(frozen=True)
class FraudScore:
    """Score and its reasons (rule code -> weighted contribution), largest first."""

    score: float
    reasons: tuple[tuple[str, float], ...]


def transaction_lr_features(
    features: TransactionFeatures, amount_minor: int, occurred_at: datetime, tz: str
) -> dict[str, float]:
    """Numeric features of the transaction fraud LR (no identifiers, no PII)."""
    history = features.amount_history
    z = (amount_minor - history.mean) / history.std if history.n >= 2 and history.std > 0 else 0.0
    return {
        "log_amount": math.log1p(max(amount_minor, 0) / 100),
        "amount_z": max(min(z, 20.0), -20.0),
        "card_txn_1h": float(features.card.last_1h),
        "card_txn_24h": float(features.card.last_24h),
        "new_merchant": float(features.is_new_merchant),
        "night_time": float(is_night_time(occurred_at, tz)),
        "geo_mismatch": float(features.geo_mismatch),
        "has_device": float(features.device_state is not None),
    }


def transaction_fraud_score(
    features: TransactionFeatures,
    amount_minor: int,
    occurred_at: datetime,
    lr_risk: float,
    tz: str,
) -> FraudScore:
    """Combine the rules and the LR risk (scored on :func:`transaction_lr_features`)."""
    history = features.amount_history
    anomaly = amount_anomaly(amount_minor, history.mean, history.std, history.n)
    night = is_night_time(occurred_at, tz)
    evidence: dict[str, float] = {
        "CARD_VELOCITY": velocity_risk(features.card, CARD_VELOCITY),
        "AMOUNT_ANOMALY": anomaly,
        "NIGHT_TIME_NEW_MERCHANT": 1.0 if (night and features.is_new_merchant) else 0.0,
        "GEO_MISMATCH": 1.0 if features.geo_mismatch else 0.0,
        "ONLINE_LR": lr_risk,
        "DEVICE_RISK": 0.0,
        "SIM_SWAP_LARGE_AMOUNT": 0.0,
    }
    if features.device_state is not None:
        evidence["DEVICE_RISK"] = device_risk(features.device_state, occurred_at)
        rules = device_rules(features.device_state, occurred_at)
        if DeviceRule.RECENT_SIM_SWAP in rules and anomaly >= LARGE_AMOUNT_ANOMALY:
            evidence["SIM_SWAP_LARGE_AMOUNT"] = 1.0
    contributions = {code: FRAUD_WEIGHTS[code] * risk for code, risk in evidence.items()}
    clean = 1.0
    for contribution in contributions.values():
        clean *= 1.0 - contribution
    reasons = tuple(
        sorted(((code, c) for code, c in contributions.items() if c > 0), key=lambda item: -item[1])
    )
    return FraudScore(1.0 - clean, reasons)


def alert_severity(score: float) -> str:
    """Urgency for fraud operations."""
    if score >= 0.9:
        return "CRITICAL"
    if score >= 0.8:
        return "HIGH"
    if score >= 0.6:
        return "MEDIUM"
    return "LOW"
