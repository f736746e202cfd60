"""Pricing and schedules: integer money that adds up, dates that exist.

The schedule used to be computed with Decimal only; models/pricing.py now reproduces it with
integer arithmetic. `_decimal_reference` is that earlier implementation, verbatim but for
returning plain tuples, so the comparison below holds the new code to every old result.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, localcontext

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from greencredit.models.pricing import due_dates, loan_schedule

Row = tuple[int, date, int, int, int]


def _reference_due_dates(start: date, term_months: int) -> list[date]:
    dates = []
    for k in range(1, term_months + 1):
        month_index = start.month - 1 + k
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        dates.append(date(year, month, day))
    return dates


def _decimal_reference(
    principal_minor: int, annual_rate_bps: int, term_months: int, start: date
) -> list[Row]:
    with localcontext() as ctx:
        ctx.prec = 40
        rate = Decimal(annual_rate_bps) / Decimal(10_000) / Decimal(12)
        principal = Decimal(principal_minor)
        if rate == 0:
            payment = (principal / term_months).to_integral_value(ROUND_CEILING)
        else:
            factor = rate / (1 - (1 + rate) ** -term_months)
            payment = (principal * factor).to_integral_value(ROUND_CEILING)
        balance = principal
        schedule = []
        for number, due in enumerate(_reference_due_dates(start, term_months), start=1):
            interest = (balance * rate).to_integral_value(ROUND_HALF_EVEN)
            repaid = payment - interest if number < term_months else balance
            repaid = min(repaid, balance)
            balance -= repaid
            schedule.append((number, due, int(repaid + interest), int(repaid), int(interest)))
    return schedule


def _rows(principal: int, rate: int, term: int, start: date) -> list[Row]:
    rows = [
        (i.number, i.due_date, i.amount_due_minor, i.principal_minor, i.interest_minor)
        for i in loan_schedule(principal, rate, term, start)
    ]
    # Money is int, not an integral Decimal that a fallback let through (== would not tell).
    assert all(type(v) is int for row in rows for v in (row[0], *row[2:]))
    return rows


@st.composite
def _start_dates(draw: st.DrawFn) -> date:
    """Any day, or the days where clamping matters: month ends, 29 February, the 29th-31st."""
    year = draw(st.integers(1901, 2199))
    month = draw(st.integers(1, 12))
    last = calendar.monthrange(year, month)[1]
    kind = draw(st.sampled_from(["any", "end", "late"]))
    if kind == "end":
        return date(year, month, last)
    if kind == "late":
        return date(year, month, min(draw(st.integers(28, 31)), last))
    return date(year, month, draw(st.integers(1, last)))


_RATES = st.one_of(
    st.integers(0, 12_000),
    st.integers(0, 100_000),
    st.sampled_from([0, 1, 2, 3, 100, 999, 1_000, 1_200, 3_600, 10_000, 12_000, 120_000]),
)

# Found by search: inputs where rounding the exact value would disagree with Decimal, so the
# integer path must take its Decimal fallback to be identical.
# A first month's interest exactly half-way, Decimal rounding it up (30,000 x 2 / 120,000).
_TIE_UP = (30_000, 2, 12, date(2026, 1, 31))
# ... and one it rounds down although half to even would round up (26,250 x 16 / 120,000).
_TIE_DOWN = (26_250, 16, 12, date(2024, 2, 29))
# A payment that is exactly 1,600,080,001: Decimal's rounded value lies just above it.
_INTEGER_PAYMENT = (3_200_040_000, 3, 2, date(2026, 11, 20))


@settings(max_examples=400, deadline=None)
@given(
    st.integers(1, 10**10),
    _RATES,
    st.integers(1, 360),
    _start_dates(),
)
@example(*_TIE_UP)
@example(*_TIE_DOWN)
@example(*_INTEGER_PAYMENT)
@example(1_200_000, 1_200, 12, date(2026, 1, 15))
@example(10**10, 120_000, 360, date(2000, 2, 29))
def test_integer_schedule_is_the_decimal_schedule(principal, rate, term, start):
    assert _rows(principal, rate, term, start) == _decimal_reference(principal, rate, term, start)


def test_the_examples_need_the_decimal_fallback():
    """Plain rounding of the exact values gets these wrong: the fallback makes them equal."""
    for principal, rate, term, start in (_TIE_UP, _TIE_DOWN):
        interest, remainder = divmod(principal * rate, 120_000)
        assert remainder == 60_000
        half_to_even = interest + interest % 2
        first = _decimal_reference(principal, rate, term, start)[0]
        assert first[4] != half_to_even
        assert _rows(principal, rate, term, start)[0] == first
    principal, rate, term, start = _INTEGER_PAYMENT
    a, b = rate, 120_000
    exact_payment, remainder = divmod(principal * a * (a + b) ** 2, b * ((a + b) ** 2 - b**2))
    assert remainder == 0
    reference = _decimal_reference(principal, rate, term, start)
    assert reference[0][2] == exact_payment + 1  # Decimal's ceiling is one above
    assert _rows(principal, rate, term, start) == reference


@pytest.mark.parametrize(
    "args",
    [
        (10**12, 3_600, 600, date(2026, 1, 31)),  # the largest accepted loan
        (10**16, 1_500, 24, date(2026, 1, 31)),  # beyond the integer path's bounds
        (5_000, 2 * 10**6, 6, date(2026, 3, 31)),
        (True, 1_500, 3, date(2026, 3, 31)),  # not an int: the Decimal path
    ],
)
def test_outside_the_tested_ranges_the_schedule_is_still_the_decimal_one(args):
    assert _rows(*args) == _decimal_reference(*args)


@given(
    st.integers(1_000, 10**10),
    st.integers(0, 3000),
    st.integers(1, 120),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
)
def test_schedule_repays_the_principal_exactly(principal, rate, term, start):
    schedule = loan_schedule(principal, rate, term, start)
    assert len(schedule) == term
    assert sum(i.principal_minor for i in schedule) == principal
    assert all(i.amount_due_minor == i.principal_minor + i.interest_minor for i in schedule)
    assert all(isinstance(i.amount_due_minor, int) and i.principal_minor >= 0 for i in schedule)
    assert [i.number for i in schedule] == list(range(1, term + 1))


def test_known_annuity():
    schedule = loan_schedule(1_200_000, 1200, 12, date(2026, 1, 15))
    assert schedule[0].amount_due_minor == 106_619  # 1.2M at 1 %/month, 12 months
    assert schedule[0].interest_minor == 12_000
    total_interest = sum(i.interest_minor for i in schedule)
    assert 79_000 < total_interest < 80_000


def test_invalid_loans_are_refused():
    for args in ((0, 100, 12), (1_000, -1, 12), (1_000, 100, 0)):
        with pytest.raises(ValueError):
            loan_schedule(*args, date(2026, 1, 1))


def test_due_dates_clamp_to_month_end():
    assert due_dates(date(2026, 1, 31), 3) == [
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
    assert due_dates(date(2026, 11, 20), 2) == [date(2026, 12, 20), date(2027, 1, 20)]
    assert due_dates(date(2024, 1, 31), 2) == [date(2024, 2, 29), date(2024, 3, 31)]
    # The cached dates are handed out as a new list: a caller's change stays its own.
    dates = due_dates(date(2026, 1, 31), 3)
    dates.clear()
    assert len(due_dates(date(2026, 1, 31), 3)) == 3


@pytest.mark.parametrize(
    "first, last", [(date(1999, 1, 1), date(2001, 1, 1)), (date(2096, 1, 1), date(2101, 1, 1))]
)
def test_due_dates_follow_the_calendar_from_every_start_day(first, last):
    # Every start day across leap years, the leap century 2000 and the non-leap 2100.
    day = first
    while day < last:
        assert due_dates(day, 14) == _reference_due_dates(day, 14), day
        day += timedelta(days=1)
