"""Pending features: kept until the label, expired after the TTL, bounded in count, JSON state."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greencredit.models.label_buffer import DEFAULT_TTL, PendingFeatures

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
FEATURES = {"repayment_ratio": 0.4, "monthly_income": 8200.0}


def test_take_returns_what_was_scored_once() -> None:
    buffer = PendingFeatures()
    buffer.remember("evt-1", FEATURES, T0, 0.27, bp_prob=0.31)
    entry = buffer.take("evt-1")
    assert entry is not None
    assert entry.features == FEATURES
    assert (entry.scored_at, entry.risk, entry.bp_prob) == (T0, 0.27, 0.31)
    assert buffer.take("evt-1") is None
    assert buffer.take("never-scored") is None
    assert len(buffer) == 0


def test_entries_expire_after_the_default_ttl_of_30_days() -> None:
    buffer = PendingFeatures()
    assert buffer.ttl == DEFAULT_TTL == timedelta(days=30)
    buffer.remember("old", FEATURES, T0, 0.1)
    buffer.remember("new", FEATURES, T0 + timedelta(days=1), 0.2)
    assert buffer.expire(T0 + timedelta(days=30) - timedelta(seconds=1)) == []
    assert buffer.expire(T0 + timedelta(days=30)) == ["old"]
    assert "old" not in buffer and "new" in buffer
    assert buffer.take("old") is None
    assert buffer.expired == 1


def test_expiry_is_exact_even_when_scoring_clock_steps_back() -> None:
    buffer = PendingFeatures(ttl=timedelta(hours=1))
    buffer.remember("late-stamped", FEATURES, T0 + timedelta(minutes=30), 0.1)
    buffer.remember("early-stamped", FEATURES, T0, 0.1)
    assert buffer.expire(T0 + timedelta(hours=1)) == ["early-stamped"]
    assert buffer.expire(T0 + timedelta(hours=2)) == ["late-stamped"]


def test_size_is_bounded_by_dropping_the_oldest() -> None:
    buffer = PendingFeatures(max_entries=3)
    dropped = [
        buffer.remember(f"evt-{i}", FEATURES, T0 + timedelta(seconds=i), 0.1) for i in range(5)
    ]
    assert dropped == [[], [], [], ["evt-0"], ["evt-1"]]
    assert len(buffer) == 3 and buffer.dropped == 2
    kept = [i for i in range(5) if buffer.take(f"evt-{i}") is not None]
    assert kept == [2, 3, 4]


def test_remembering_again_replaces_and_renews_the_entry() -> None:
    buffer = PendingFeatures(max_entries=2)
    buffer.remember("a", FEATURES, T0, 0.1)
    buffer.remember("b", FEATURES, T0, 0.2)
    buffer.remember("a", {"x": 1.0}, T0 + timedelta(seconds=1), 0.3)
    assert buffer.remember("c", FEATURES, T0 + timedelta(seconds=2), 0.4) == ["b"]
    entry = buffer.take("a")
    assert entry is not None and entry.features == {"x": 1.0} and entry.risk == 0.3


def test_naive_datetimes_are_rejected() -> None:
    buffer = PendingFeatures()
    naive = datetime(2025, 3, 1, 9, 0)  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        buffer.remember("evt", FEATURES, naive, 0.1)
    with pytest.raises(ValueError, match="naive"):
        buffer.expire(naive)
    assert len(buffer) == 0


def test_aware_timestamps_are_normalised_to_utc() -> None:
    buffer = PendingFeatures()
    beijing = timezone(timedelta(hours=8))
    buffer.remember("evt", FEATURES, datetime(2025, 3, 1, 17, 0, tzinfo=beijing), 0.1)
    entry = buffer.take("evt")
    assert entry is not None and entry.scored_at == T0 and entry.scored_at.tzinfo is UTC


@pytest.mark.parametrize("risk", [-0.1, 1.5, float("nan")])
def test_probabilities_outside_zero_one_are_rejected(risk: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        PendingFeatures().remember("evt", FEATURES, T0, risk)


def test_invalid_bounds_are_rejected() -> None:
    with pytest.raises(ValueError, match="ttl"):
        PendingFeatures(ttl=timedelta(0))
    with pytest.raises(ValueError, match="max_entries"):
        PendingFeatures(max_entries=0)


def test_state_round_trips_through_json_in_order() -> None:
    buffer = PendingFeatures(ttl=timedelta(days=7), max_entries=3)
    for i in range(4):
        buffer.remember(f"evt-{i}", {"f": float(i)}, T0 + timedelta(hours=i), 0.1 * i)
    buffer.expire(T0 + timedelta(days=7, hours=1))
    state = orjson.loads(orjson.dumps(buffer.to_state()))
    restored = PendingFeatures.from_state(state)
    assert restored.to_state() == buffer.to_state()
    assert (restored.dropped, restored.expired, len(restored)) == (1, 1, 2)
    # The drop order survives: the next overflow drops the oldest remaining entry.
    restored.remember("x", {}, T0 + timedelta(days=8), 0.5)
    assert restored.remember("y", {}, T0 + timedelta(days=8), 0.5) == ["evt-2"]


def test_unknown_state_version_is_rejected() -> None:
    state = {**PendingFeatures().to_state(), "format_version": 99}
    with pytest.raises(ValueError, match="format version 99"):
        PendingFeatures.from_state(state)


operations = st.lists(
    st.tuples(
        st.sampled_from(["remember", "take", "expire"]),
        st.integers(min_value=0, max_value=9),  # event id
        st.integers(min_value=0, max_value=5),  # minutes to advance the clock
    ),
    max_size=60,
)


@settings(max_examples=100, deadline=None)
@given(ops=operations, max_entries=st.integers(min_value=1, max_value=5))
def test_matches_a_reference_model(ops: list[tuple[str, int, int]], max_entries: int) -> None:
    ttl = timedelta(minutes=10)
    buffer = PendingFeatures(ttl=ttl, max_entries=max_entries)
    reference: OrderedDict[str, datetime] = OrderedDict()
    now = T0
    for op, key, advance in ops:
        now += timedelta(minutes=advance)
        eid = f"evt-{key}"
        if op == "remember":
            buffer.remember(eid, {"k": float(key)}, now, 0.5)
            reference.pop(eid, None)
            reference[eid] = now
            while len(reference) > max_entries:
                reference.popitem(last=False)
        elif op == "take":
            entry = buffer.take(eid)
            assert (entry is not None) == (reference.pop(eid, None) is not None)
        else:
            expected = [k for k, t in reference.items() if t <= now - ttl]
            assert buffer.expire(now) == expected
            for k in expected:
                del reference[k]
        assert len(buffer) == len(reference) <= max_entries
        assert all(k in buffer for k in reference)
