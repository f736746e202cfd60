"""Transaction fraud score: noisy-OR evidence, the takeover rule, reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greencredit.models.features import AmountStats, DeviceState, TransactionFeatures, WindowCounts
from greencredit.models.fraud import (
    FRAUD_WEIGHTS,
    alert_severity,
    transaction_fraud_score,
    transaction_lr_features,
)

TZ = "Asia/Shanghai"
NOON_SHANGHAI = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
THREE_AM_SHANGHAI = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)


def features(**changes) -> TransactionFeatures:
    base = {
        "event_id": "e1",
        "card": WindowCounts(1, 2),
        "amount_history": AmountStats(n=20, mean=10_000.0, std=2_000.0),
        "is_new_merchant": False,
        "geo_mismatch": False,
        "device_state": None,
    }
    base.update(changes)
    return TransactionFeatures(**base)


def test_an_ordinary_payment_scores_only_the_lr_evidence():
    result = transaction_fraud_score(features(), 10_500, NOON_SHANGHAI, 0.02, TZ)
    assert result.score == pytest.approx(FRAUD_WEIGHTS["ONLINE_LR"] * 0.02)
    assert [code for code, _ in result.reasons] == ["ONLINE_LR"]


def test_a_large_night_purchase_at_a_new_merchant_is_alert_worthy():
    result = transaction_fraud_score(
        features(is_new_merchant=True), 5_000_000, THREE_AM_SHANGHAI, 0.02, TZ
    )
    codes = [code for code, _ in result.reasons]
    assert codes[:2] == ["AMOUNT_ANOMALY", "NIGHT_TIME_NEW_MERCHANT"]
    expected = 1 - (1 - 0.6) * (1 - 0.4) * (1 - 0.5 * 0.02)
    assert result.score == pytest.approx(expected)
    assert result.score >= 0.7  # the default lender alert threshold


def test_sim_swap_before_a_large_amount_is_the_takeover_rule():
    swapped = DeviceState(
        device_ref="device_" + "a" * 32, sim_changed_at=THREE_AM_SHANGHAI - timedelta(hours=2)
    )
    result = transaction_fraud_score(
        features(device_state=swapped), 5_000_000, THREE_AM_SHANGHAI, 0.02, TZ
    )
    codes = dict(result.reasons)
    assert codes["SIM_SWAP_LARGE_AMOUNT"] == pytest.approx(0.9)
    small = transaction_fraud_score(
        features(device_state=swapped), 10_000, THREE_AM_SHANGHAI, 0.02, TZ
    )
    assert "SIM_SWAP_LARGE_AMOUNT" not in dict(small.reasons)
    assert result.score > 0.95 and alert_severity(result.score) == "CRITICAL"


def test_cold_start_accounts_do_not_alert_on_amount():
    result = transaction_fraud_score(
        features(amount_history=AmountStats(n=2, mean=100.0, std=1.0)),
        9_000_000,
        NOON_SHANGHAI,
        0.02,
        TZ,
    )
    assert "AMOUNT_ANOMALY" not in dict(result.reasons)


@given(st.floats(0, 1), st.booleans(), st.booleans(), st.integers(0, 10**8))
def test_score_is_a_probability_and_more_evidence_never_lowers_it(lr, new, geo, amount):
    base = transaction_fraud_score(features(), amount, THREE_AM_SHANGHAI, lr, TZ)
    more = transaction_fraud_score(
        features(is_new_merchant=new, geo_mismatch=geo), amount, THREE_AM_SHANGHAI, lr, TZ
    )
    assert 0.0 <= base.score <= more.score <= 1.0
    contributions = [c for _, c in more.reasons]
    assert contributions == sorted(contributions, reverse=True)


def test_lr_features_carry_no_identifiers():
    x = transaction_lr_features(features(is_new_merchant=True), 123_456, THREE_AM_SHANGHAI, TZ)
    assert set(x) == {
        "log_amount",
        "amount_z",
        "card_txn_1h",
        "card_txn_24h",
        "new_merchant",
        "night_time",
        "geo_mismatch",
        "has_device",
    }
    assert x["night_time"] == 1.0 and x["new_merchant"] == 1.0
    assert all(isinstance(v, float) for v in x.values())
