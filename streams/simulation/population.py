"""Simulated customers: real German Credit profiles with synthetic Chinese identities.

Each customer takes one row of the vendored German Credit data (so the BP model sees inputs
from its own distribution) and that row's good/bad outcome: a bad row becomes a borrower who
falls behind (first-payment default or gradual delinquency), a good one pays on time or a
few days late within the grace period. Amounts stay the row's own (the BP model learnt them
as major units, see its model card); the purpose is drawn to fit the amount, with green
purposes for about 45% of applicants, as in the seed's target portfolio mix.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from greencredit.models.bp_features import (
    GERMAN_CREDIT_CSV,
    german_row_is_bad,
    german_row_to_application,
)

from .events import Identity, valid_id_number

__all__ = ["Customer", "RepaymentHabit", "build_population", "german_rows"]

# Purposes that fit an amount (CNY): nobody finances an EV with 900 yuan or a metro pass
# with 15,000. Green first, then grey; each band keeps both kinds.
_BANDS: list[tuple[int, list[str], list[str]]] = [
    (1_500, ["PUBLIC_TRANSPORT_PASS", "E_BIKE"], ["ELECTRONICS", "TRAVEL"]),
    (4_000, ["E_BIKE", "ENERGY_EFFICIENT_APPLIANCE"], ["ELECTRONICS", "TRAVEL", "EDUCATION"]),
    (
        9_000,
        ["HEAT_PUMP", "HOME_INSULATION_RETROFIT", "ENERGY_EFFICIENT_APPLIANCE"],
        ["HOME_IMPROVEMENT", "EDUCATION", "DEBT_CONSOLIDATION"],
    ),
    (
        10**9,
        ["ELECTRIC_VEHICLE", "SOLAR_PV", "HOME_INSULATION_RETROFIT"],
        ["CAR", "HOME_IMPROVEMENT", "DEBT_CONSOLIDATION"],
    ),
]
GREEN_SHARE = 0.45


class RepaymentHabit:
    """How a borrower pays; the bad ones are risk typologies with ground truth."""

    ON_TIME = "on_time"
    LATE_IN_GRACE = "late_in_grace"  # 1-2 days late: inside the policy's grace, not delinquent
    FIRST_PAYMENT_DEFAULT = "first_payment_default"
    GRADUAL_DELINQUENCY_CURE = "gradual_delinquency_cure"


@dataclass(frozen=True)
class Customer:
    """One simulated applicant and everything the scenario needs to act for them."""

    index: int
    tenant: str
    customer_id: str
    identity: Identity
    device_id: str
    profile_row: dict[str, str]
    credit_bad: bool
    habit: str
    apply_day: int
    purpose: str
    grade: str | None
    monthly_income_minor: int
    has_guarantor: bool
    face: int | None  # index into FacePool.honest, or None: no selfie sent

    @property
    def card(self) -> str:
        """The customer's own bank card."""
        return self.identity.bank_card_number

    def application_fields(self) -> dict[str, Any]:
        """Amount, term and credit profile from the German Credit row."""
        return german_row_to_application(self.profile_row)


def german_rows() -> list[dict[str, str]]:
    """The vendored German Credit rows (1,000)."""
    with GERMAN_CREDIT_CSV.open(newline="", encoding="ascii") as handle:
        return list(csv.DictReader(handle))


def _purpose(rng: random.Random, amount_major: int) -> str:
    for ceiling, green, grey in _BANDS:
        if amount_major < ceiling:
            return rng.choice(green if rng.random() < GREEN_SHARE else grey)
    raise AssertionError("the last band is unbounded")


def _habit(rng: random.Random, bad: bool) -> str:
    if bad:
        return rng.choice(
            [RepaymentHabit.FIRST_PAYMENT_DEFAULT, RepaymentHabit.GRADUAL_DELINQUENCY_CURE]
        )
    return RepaymentHabit.LATE_IN_GRACE if rng.random() < 0.15 else RepaymentHabit.ON_TIME


def identity_for(n: int, start: date, age: int, rng: random.Random) -> Identity:
    """A well-formed identity for person `n`, `age` years old at `start`."""
    born = date(start.year - age, 1 + n % 12, 1 + n % 28)
    if (start.month, start.day) < (born.month, born.day):
        born = born.replace(year=born.year - 1)
    surname = rng.choice(["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou"])
    return Identity(
        full_name=f"{surname} {n}",
        id_card_number=valid_id_number(born, n),
        phone=f"13{n % 10}{n:08d}",
        email=f"customer{n}@example.com",
        bank_card_number=f"622202{n:013d}",
    )


def _apply_day(rng: random.Random, launch_days: int, days: int) -> int:
    """Day a customer applies on.

    Half come in the launch campaign (their loans mature within the run); the rest keep
    arriving until the last days, scored by a model that has learnt from labels by then.
    """
    if rng.random() < 0.5 or days - 5 <= launch_days:
        return rng.randrange(launch_days)
    return rng.randrange(launch_days, days - 5)


def build_population(
    rng: random.Random,
    count: int,
    start: date,
    days: int,
    apply_window_days: int,
    tenants: list[str],
    face_pool_size: int,
) -> list[Customer]:
    """`count` customers; see `_apply_day` for when they apply."""
    rows = german_rows()
    customers = []
    for n in range(count):
        row = rows[rng.randrange(len(rows))]
        fields = german_row_to_application(row)
        amount_major = fields["requested_amount_minor"] // 100
        purpose = _purpose(rng, amount_major)
        bad = german_row_is_bad(row)
        # Monthly income, CNY: log-normal around the urban median (~8,000), floored at 3,000.
        income = max(3_000, int(rng.lognormvariate(9.0, 0.45)))
        customers.append(
            Customer(
                index=n,
                tenant=tenants[n % len(tenants)],
                customer_id=f"cust-{n:06d}",
                identity=identity_for(n, start, fields["credit_profile"]["age_years"], rng),
                device_id=f"dev-{n:06d}",
                profile_row=row,
                credit_bad=bad,
                habit=_habit(rng, bad),
                apply_day=_apply_day(rng, apply_window_days, days),
                purpose=purpose,
                grade=rng.choice(["1", "1", "2", "3"])
                if purpose == "ENERGY_EFFICIENT_APPLIANCE"
                else None,
                monthly_income_minor=income * 100,
                has_guarantor=rng.random() < 0.2,
                face=rng.randrange(face_pool_size) if rng.random() < 0.25 else None,
            )
        )
    return customers


def instalment_paid_on(habit: str, number: int, due: date, rng: random.Random) -> date | None:
    """When a borrower with `habit` pays instalment `number` due on `due` (None: never).

    Gradual delinquency: instalment 1 on time, 2 eight to fourteen days late (past the
    grace period: escalated, then cured when paid), later ones on time.
    """
    if habit == RepaymentHabit.ON_TIME:
        return due - timedelta(days=rng.randrange(0, 3))
    if habit == RepaymentHabit.LATE_IN_GRACE:
        return due + timedelta(days=rng.randrange(0, 3))
    if habit == RepaymentHabit.FIRST_PAYMENT_DEFAULT:
        return None
    if number == 1:
        return due
    if number == 2:
        return due + timedelta(days=rng.randrange(8, 15))
    return due
