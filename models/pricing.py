"""Repayment schedules in integer minor units (no float money).

The schedule is an annuity rounded to the minor unit per instalment; the last instalment
absorbs the rounding so principal and interest add up exactly. The rate comes from the
lender's pricing (models/green/pricing.py).

The schedules are defined by a 40-digit Decimal evaluation (kept as the fallback,
:func:`_decimal_schedule`); the hot path reproduces it with integer arithmetic:

- The monthly rate is ``bps / 120_000``. Interest ``balance * bps / 120_000`` is a fraction
  with denominator 120,000, so it is either exactly half-way between two integers or at least
  1/120,000 away from the half-way point. Decimal's error (the rate rounded to 40 digits, the
  product rounded to 40 digits) is below 1e-13 within the bounds below, so both round the
  same way except at an exact tie. At a tie, Decimal's rate is exact when 3 divides the bps
  (then both round half to even); otherwise the rate is a third of a digit off in its 40th
  digit, and whether the tie rounds up or down depends on that digit: only that instalment's
  interest is computed with Decimal.
- The payment ``P * r / (1 - (1 + r)^-n)`` is an exact fraction of integers (r = a / b in
  lowest terms). Its ceiling agrees with Decimal's unless the exact value lies within the
  Decimal error (below 1e-12 within the bounds below, the worst being the cancellation in
  ``1 - (1 + r)^-n`` for a small rate) of an integer; within 1e-6 of an integer the payment
  is computed with Decimal, which also covers payments that are exact integers.
- Outside ``principal <= 10**15`` and ``rate <= 10**6`` bps (both far beyond what an
  application may ask: models/application_checks.py), or for non-int arguments, the whole
  schedule is computed with Decimal, where the error bounds above were not worked out.

tests/unit/test_pricing.py holds the Decimal schedule as it was and compares the two.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, localcontext
from functools import lru_cache, partial
from math import gcd
from typing import NamedTuple, cast

__all__ = ["Instalment", "due_dates", "loan_schedule"]


class Instalment(NamedTuple):
    """One scheduled payment.

    A NamedTuple rather than a frozen dataclass: a schedule builds one per month on the
    decision's hot path, and tuple construction costs a fraction of the dataclass's.
    """

    number: int
    due_date: date
    amount_due_minor: int
    principal_minor: int
    interest_minor: int


# tuple.__new__ skips the generated Instalment.__new__ (its argument handling); safe because
# _integer_schedule always passes five fields in order.
_new_instalment = cast(
    "Callable[[tuple[int, date, int, int, int]], Instalment]", partial(tuple.__new__, Instalment)
)

# A rate in bps per year is bps / 10_000 / 12 per month.
_MONTHLY = 120_000
_HALF = _MONTHLY // 2
# Where the integer path is proven to reproduce the Decimal schedule (module docstring).
_EXACT_PRINCIPAL_MAX = 10**15
_EXACT_RATE_MAX_BPS = 10**6
# A payment within 1 / _PAYMENT_MARGIN of an integer is left to Decimal.
_PAYMENT_MARGIN = 10**6
_DECIMAL_DIGITS = 40


def due_dates(start: date, term_months: int) -> list[date]:
    """Monthly due dates after `start`, same day of month, clamped to the month's end."""
    return list(_due_dates(start, term_months))


@lru_cache(maxsize=4096)
def _due_dates(start: date, term_months: int) -> tuple[date, ...]:
    # Cached: the loans of one day share their start, and terms are few (6, 12, 24, ...).
    dates = []
    day = start.day
    for k in range(1, term_months + 1):
        years, month_index = divmod(start.month - 1 + k, 12)
        year, month = start.year + years, month_index + 1
        # Every month has 28 days; only later days may need clamping to the month's end.
        clamped = day if day <= 28 else min(day, _month_length(year, month))
        dates.append(date(year, month, clamped))
    return tuple(dates)


_MONTH_LENGTHS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _month_length(year: int, month: int) -> int:
    if month == 2 and calendar.isleap(year):
        return 29
    return _MONTH_LENGTHS[month]


def loan_schedule(
    principal_minor: int, annual_rate_bps: int, term_months: int, start: date
) -> list[Instalment]:
    """Annuity schedule; instalments sum exactly to principal + interest."""
    if principal_minor <= 0 or term_months <= 0 or annual_rate_bps < 0:
        raise ValueError("principal and term must be positive, the rate non-negative")
    dates = _due_dates(start, term_months)
    if (
        type(principal_minor) is int
        and type(annual_rate_bps) is int
        and type(term_months) is int
        and principal_minor <= _EXACT_PRINCIPAL_MAX
        and annual_rate_bps <= _EXACT_RATE_MAX_BPS
    ):
        return _integer_schedule(principal_minor, annual_rate_bps, term_months, dates)
    return _decimal_schedule(principal_minor, annual_rate_bps, term_months, dates)


def _integer_schedule(
    principal: int, bps: int, term: int, dates: tuple[date, ...]
) -> list[Instalment]:
    payment = _payment(principal, bps, term) if term > 1 else 0  # unused for one instalment
    balance = principal
    schedule = []
    last = term
    for number, due in enumerate(dates, start=1):
        interest, remainder = divmod(balance * bps, _MONTHLY)
        if remainder > _HALF:
            interest += 1
        elif remainder == _HALF:
            interest = _tie_interest(balance, bps, interest)
        repaid = payment - interest if number < last else balance
        if repaid > balance:
            repaid = balance
        balance -= repaid
        schedule.append(_new_instalment((number, due, repaid + interest, repaid, interest)))
    return schedule


def _tie_interest(balance: int, bps: int, floor: int) -> int:
    """Interest exactly half-way between `floor` and `floor + 1`, rounded as Decimal does."""
    if bps % 3 == 0:
        return floor + (floor & 1)  # the Decimal rate is exact: half to even
    with localcontext() as ctx:
        ctx.prec = _DECIMAL_DIGITS
        return int((Decimal(balance) * _decimal_rate(bps)).to_integral_value(ROUND_HALF_EVEN))


def _payment(principal: int, bps: int, term: int) -> int:
    """The annuity instalment, rounded up (the Decimal one when it is close to an integer)."""
    if bps == 0:
        return -(-principal // term)
    # r = a / b: P * r / (1 - (1 + r)^-n) = P * a * (a + b)^n / (b * ((a + b)^n - b^n)).
    common = gcd(bps, _MONTHLY)
    a, b = bps // common, _MONTHLY // common
    grown = (a + b) ** term
    numerator = principal * a * grown
    denominator = b * (grown - b**term)
    quotient, remainder = divmod(numerator, denominator)
    if min(remainder, denominator - remainder) * _PAYMENT_MARGIN < denominator:
        return int(_decimal_payment(principal, bps, term))  # integral: int() is exact
    return quotient + 1


def _decimal_rate(bps: int | Decimal) -> Decimal:
    """The monthly rate as the Decimal schedule computes it (inside its 40-digit context)."""
    return Decimal(bps) / Decimal(10_000) / Decimal(12)


def _decimal_payment(principal: int | Decimal, bps: int | Decimal, term: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = _DECIMAL_DIGITS
        rate = _decimal_rate(bps)
        if rate == 0:
            return (Decimal(principal) / term).to_integral_value(ROUND_CEILING)
        factor = rate / (1 - (1 + rate) ** -term)
        return (Decimal(principal) * factor).to_integral_value(ROUND_CEILING)


def _decimal_schedule(
    principal_minor: int, annual_rate_bps: int, term_months: int, dates: tuple[date, ...]
) -> list[Instalment]:
    """The schedule in 40-digit Decimal arithmetic (the definition the integer path follows)."""
    payment = _decimal_payment(principal_minor, annual_rate_bps, term_months)
    with localcontext() as ctx:
        ctx.prec = _DECIMAL_DIGITS
        rate = _decimal_rate(annual_rate_bps)
        balance = Decimal(principal_minor)
        schedule = []
        for number, due in enumerate(dates, start=1):
            interest = (balance * rate).to_integral_value(ROUND_HALF_EVEN)
            repaid = payment - interest if number < term_months else balance
            repaid = min(repaid, balance)
            balance -= repaid
            schedule.append(
                Instalment(number, due, int(repaid + interest), int(repaid), int(interest))
            )
    return schedule
