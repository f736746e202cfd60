"""Repayment schedules in integer minor units (no float money).

The schedule is an annuity computed with Decimal and rounded to the minor unit per
instalment; the last instalment absorbs the rounding so principal and interest add up
exactly. The rate comes from the lender's pricing (models/green/pricing.py).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, localcontext

__all__ = ["Instalment", "due_dates", "loan_schedule"]


@dataclass(frozen=True)
class Instalment:
    """One scheduled payment."""

    number: int
    due_date: date
    amount_due_minor: int
    principal_minor: int
    interest_minor: int


def due_dates(start: date, term_months: int) -> list[date]:
    """Monthly due dates after `start`, same day of month, clamped to the month's end."""
    dates = []
    for k in range(1, term_months + 1):
        month_index = start.month - 1 + k
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        dates.append(date(year, month, day))
    return dates


def loan_schedule(
    principal_minor: int, annual_rate_bps: int, term_months: int, start: date
) -> list[Instalment]:
    """Annuity schedule; instalments sum exactly to principal + interest."""
    if principal_minor <= 0 or term_months <= 0 or annual_rate_bps < 0:
        raise ValueError("principal and term must be positive, the rate non-negative")
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
        for number, due in enumerate(due_dates(start, term_months), start=1):
            interest = (balance * rate).to_integral_value(ROUND_HALF_EVEN)
            repaid = payment - interest if number < term_months else balance
            repaid = min(repaid, balance)
            balance -= repaid
            schedule.append(
                Instalment(number, due, int(repaid + interest), int(repaid), int(interest))
            )
    return schedule
