"""Transaction fraud score: noisy-OR evidence, the takeover rule, reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greencredit.models.features import AmountStats, DeviceState, TransactionFeatures, WindowCounts
from greencredit.models.fraud import (
    FRAUD_WEIGHTS,
    alert_severity,
    score_transactions,
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


_DEVICE = st.one_of(
    st.none(),
    st.builds(
        DeviceState,
        device_ref=st.just("device_" + "0" * 32),
        is_emulator=st.booleans(),
        is_rooted=st.booleans(),
        vpn_active=st.booleans(),
        sim_changed_at=st.one_of(
            st.none(),
            st.just(NOON_SHANGHAI - timedelta(hours=5)),
            st.just(datetime(2020, 1, 1, tzinfo=UTC)),
        ),
        geo_country=st.sampled_from([None, "CN", "US"]),
        distinct_fingerprints_30d=st.integers(0, 3),
        distinct_customers_30d=st.integers(0, 4),
    ),
)
_ROW = st.tuples(
    st.builds(
        TransactionFeatures,
        event_id=st.just("e"),
        card=st.builds(WindowCounts, st.integers(1, 30), st.integers(30, 150)),
        amount_history=st.builds(
            AmountStats,
            n=st.integers(0, 50),
            mean=st.floats(0, 1e6),
            std=st.one_of(st.just(0.0), st.floats(0, 1e5)),
        ),
        is_new_merchant=st.booleans(),
        geo_mismatch=st.booleans(),
        device_state=_DEVICE,
    ),
    st.integers(-50_000, 5_000_000),  # refunds are negative
    st.sampled_from([NOON_SHANGHAI, THREE_AM_SHANGHAI, NOON_SHANGHAI + timedelta(days=400)]),
    st.floats(0, 1),  # the LR's risk
)


@given(st.lists(_ROW, min_size=1, max_size=20))
def test_a_batch_scores_as_one_transaction_at_a_time(rows):
    """Columnar scoring gives each row the numbers of the per-transaction functions."""
    features, amounts, times, lr = (list(column) for column in zip(*rows, strict=True))
    batch = score_transactions(features, amounts, times, TZ).with_lr(np.array(lr))
    for i, (f, amount, at, risk) in enumerate(rows):
        x = transaction_lr_features(f, amount, at, TZ)
        assert batch.lr_row(i) == pytest.approx(x, rel=1e-12, abs=1e-12)
        one = transaction_fraud_score(f, amount, at, risk, TZ)
        assert batch.scores[i] == pytest.approx(one.score, rel=1e-12, abs=1e-15)
        assert [code for code, _ in batch.reasons(i)] == [code for code, _ in one.reasons]
        assert [c for _, c in batch.reasons(i)] == pytest.approx([c for _, c in one.reasons])


def test_a_batch_of_n_scores_as_n_batches_of_one():
    rows = [
        (features(), 10_500, NOON_SHANGHAI),
        (features(is_new_merchant=True, card=WindowCounts(12, 80)), 90_000, THREE_AM_SHANGHAI),
        (features(amount_history=AmountStats(n=3, mean=5.0, std=0.0)), -300, NOON_SHANGHAI),
    ]
    together = score_transactions(*(list(c) for c in zip(*rows, strict=True)), TZ)
    apart = [score_transactions([f], [a], [t], TZ) for f, a, t in rows]
    np.testing.assert_array_equal(together.scores, [b.scores[0] for b in apart])
    np.testing.assert_array_equal(together.lr_features, np.vstack([b.lr_features for b in apart]))
