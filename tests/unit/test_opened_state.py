"""opened_state_dict (the worker's loan opening) against open_loan(...).to_dict()."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greencredit.models.delinquency import (
    DelinquencyLevel,
    DelinquencyPolicy,
    DpdBucket,
    LoanEventError,
    LoanOpened,
    LoanState,
    open_loan,
    opened_state_dict,
)
from greencredit.models.pricing import loan_schedule

OPENED = date(2026, 1, 31)
POLICIES = (
    DelinquencyPolicy(),
    DelinquencyPolicy(
        buckets=(
            DpdBucket(1, 5, DelinquencyLevel.MILD),
            DpdBucket(6, None, DelinquencyLevel.SEVERE),
        ),
        grace_days=3,
        legal_after_days=10,
    ),
)


def _event(schedule: Any, principal: int = 1_000, **changes: Any) -> LoanOpened:
    fields = {
        "event_id": "open-1",
        "loan_id": "loan-1",
        "tenant_id": "bank-a",
        "customer_id": "cust-1",
        "currency": "CNY",
        "principal_minor": principal,
        "schedule": schedule,
        "opened_on": OPENED,
    }
    return LoanOpened(**{**fields, **changes})


def _same_outcome(event: LoanOpened, policy: DelinquencyPolicy) -> None:
    """Both give the same stored dict (and JSON bytes), or both raise the same error."""
    try:
        expected = open_loan(event, policy).to_dict()
    except LoanEventError as err:
        with pytest.raises(LoanEventError) as raised:
            opened_state_dict(event, policy)
        assert str(raised.value) == str(err)
        return
    got = opened_state_dict(event, policy)
    assert got == expected
    assert orjson.dumps(got) == orjson.dumps(expected)
    assert LoanState.from_dict(orjson.loads(orjson.dumps(got))) == open_loan(event, policy)


@settings(max_examples=300, deadline=None)
@given(
    principal=st.integers(1, 10**9),
    rate_bps=st.integers(0, 5_000),
    term=st.integers(1, 60),
    day=st.integers(0, 400),
    policy=st.sampled_from(POLICIES),
)
def test_engine_schedules_open_as_before(
    principal: int, rate_bps: int, term: int, day: int, policy: DelinquencyPolicy
) -> None:
    # The schedules the engine computes itself (tiny principals give zero-amount rows:
    # refused by both paths alike).
    start = date(2026, 1, 1) + timedelta(days=day)
    schedule = [
        (i.number, i.due_date, i.amount_due_minor)
        for i in loan_schedule(principal, rate_bps, term, start)
    ]
    _same_outcome(_event(schedule, principal, opened_on=start), policy)


_ROW_PART = st.one_of(
    st.integers(-2, 40),
    st.booleans(),
    st.just(1.5),
    st.just("2026-03-01"),
    st.just(datetime(2026, 3, 1, tzinfo=UTC)),
)


@st.composite
def _rows(draw: st.DrawFn) -> list[Any]:
    """Rows mostly valid (in or out of order, repeated numbers and days), some malformed."""
    rows: list[Any] = []
    for _ in range(draw(st.integers(0, 8))):
        number = draw(st.integers(0, 10) | _ROW_PART)
        due = OPENED + timedelta(days=draw(st.integers(-3, 300)))
        due = draw(st.just(due) | _ROW_PART)
        amount = draw(st.integers(0, 500) | _ROW_PART)
        rows.append(draw(st.sampled_from([(number, due, amount), (number, due)])))
    return rows


@settings(max_examples=500, deadline=None)
@given(
    rows=_rows(),
    principal=st.integers(-1, 2_000) | st.booleans(),
    currency=st.sampled_from(["CNY", "cny", "EURO"]),
    loan_id=st.sampled_from(["loan-1", ""]),
    policy=st.sampled_from(POLICIES),
)
def test_any_schedule_gives_the_same_state_or_the_same_error(
    rows: list[Any], principal: int, currency: str, loan_id: str, policy: DelinquencyPolicy
) -> None:
    event = _event(rows, principal, currency=currency, loan_id=loan_id)
    _same_outcome(event, policy)


def test_rows_out_of_order_are_sorted_as_before() -> None:
    rows = [(2, date(2026, 3, 31), 600), (1, date(2026, 2, 28), 600)]
    got = opened_state_dict(_event(rows), POLICIES[0])
    assert [row[0] for row in got["instalments"]] == [1, 2]
    assert got == open_loan(_event(rows), POLICIES[0]).to_dict()
