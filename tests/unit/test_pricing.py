"""Pricing and schedules: integer money that adds up, dates that exist."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from greencredit.models.pricing import due_dates, loan_schedule


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


def test_due_dates_clamp_to_month_end():
    assert due_dates(date(2026, 1, 31), 3) == [
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
    assert due_dates(date(2026, 11, 20), 2) == [date(2026, 12, 20), date(2027, 1, 20)]
