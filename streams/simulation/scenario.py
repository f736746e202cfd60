"""The simulated days: who applies, pays, spends and gets attacked, day by day.

`Scenario` is deterministic for a seed. The demo asks it for each day's events, publishes
them, waits for the engine, then hands it the day's disbursements (`on_disbursement`): the
borrowers' repayments, the spending of green loans and guarantor news then follow on later
days, as they would in a loan book. Everything it plants is recorded in `truth`.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from greencredit.models.green import default_taxonomy

from .events import application_event, device_signal_event, envelope, transaction_event, utc
from .faces import FacePool
from .population import Customer, RepaymentHabit, build_population, instalment_paid_on
from .truth import GroundTruth
from .typologies import APPLICATIONS, DEVICES, TRANSACTIONS, Planter

__all__ = ["Scenario"]

REPAYMENTS = "greencredit.repayments"
SERVICING = "greencredit.loan-servicing"
CLOCK = "greencredit.loan-clock"
CONFIGS = "greencredit.lender-config"
TENANTS = ["lender-green-bank", "lender-city-consumer"]
GRACE_DAYS = 3  # both simulated lenders' delinquency policy (see lender_configs)
# Everyday card spending: (merchant, MCC, median amount CNY).
_SHOPS = [
    ("m-grocer", "5411", 85),
    ("m-restaurant", "5812", 60),
    ("m-pharmacy", "5912", 45),
    ("m-transit", "4111", 6),
    ("m-fuel", "5541", 300),
    ("m-clothing", "5651", 250),
    ("m-online-mall", "5399", 150),
    ("m-cinema", "7832", 90),
]
# Where diverted green-loan money goes instead (nothing that fits any green purpose).
_DIVERSION_SHOPS = [
    ("m-casino-online", "7995"),
    ("m-jeweller", "5944"),
    ("m-travel-agency", "4722"),
]


class Scenario:
    """`customers` honest applicants over `days` days, plus planted typologies."""

    def __init__(self, customers: int = 400, days: int = 90, seed: int = 7) -> None:
        if customers < 20 or days < 45:
            raise ValueError("the scenario needs at least 20 customers and 45 days")
        self.rng = random.Random(seed)  # noqa: S311 - simulation, not security
        self.days = days
        self.seed = seed
        self.run = f"sim-{seed}-{customers}-{days}"
        today = datetime.now(UTC).date()
        self.start = today - timedelta(days=days)
        # Applications early enough that two instalments fall due within the run.
        self.apply_window = max(5, days - 75)
        self.truth = GroundTruth()
        self.faces = FacePool()
        self.plan: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        self.customers = build_population(
            self.rng,
            customers,
            self.start,
            days,
            self.apply_window,
            TENANTS,
            len(self.faces.honest),
        )
        self.by_customer = {c.customer_id: c for c in self.customers}
        taxonomy = default_taxonomy()
        self.fitting_mccs = {name: sorted(rule.mccs) for name, rule in taxonomy.rules.items()}
        self.diverters = {c.customer_id for c in self.customers if self.rng.random() < 0.12}
        self.guarantor_defaults = {
            c.customer_id for c in self.customers if c.has_guarantor and self.rng.random() < 0.25
        }
        self.loans: dict[str, dict[str, Any]] = {}
        # Applications of honest customers that carry a selfie: the denominator of
        # "honest applicants declined as blacklisted".
        self.honest_selfies: set[str] = set()
        self._plant(customers)
        for customer in self.customers:
            self._honest(customer)

    # --- planning --------------------------------------------------------------------------

    def _plant(self, customers: int) -> None:
        planter = Planter(
            self.run,
            self.rng,
            self.start,
            self.apply_window,
            TENANTS,
            self.plan,
            self.truth,
            len(self.faces.fraudsters),
            self._face_photo,
        )
        scale = max(1, customers // 100)
        planter.device_farms(2 * scale)
        planter.identity_thefts(3 * scale)
        planter.velocity_bursts(2 * scale)
        planter.synthetic_identities(4 * scale)
        victims = self.rng.sample(self.customers, 3 * scale)
        planter.account_takeovers(victims, self.days)

    def _face_photo(self, index: int, fraudster: bool) -> bytes:
        pool = self.faces.fraudsters if fraudster else self.faces.honest
        return FacePool.photo(pool[index], self.rng, enrolled=fraudster)

    def _add(self, day: int, topic: str, event: dict[str, Any]) -> None:
        self.plan.setdefault(day, []).append((topic, event))

    def _honest(self, c: Customer) -> None:
        """An honest customer's device signal, application (sometimes a retry) and card use."""
        day = c.apply_day
        at = utc(
            self.start + timedelta(days=day), self.rng.randrange(1, 14), self.rng.randrange(60)
        )
        flags: dict[str, Any] = {}
        roll = self.rng.random()
        if roll < 0.06:
            flags["vpn_active"] = True  # privacy VPNs are common and harmless alone
        elif roll < 0.10:
            flags["is_rooted"] = True
        self._add(
            day,
            DEVICES,
            device_signal_event(
                envelope(self.run, c.tenant, "device", c.index, at),
                c.device_id,
                c.customer_id,
                **flags,
            ),
        )
        fields = c.application_fields()
        face = self._face_photo(c.face, False) if c.face is not None else None
        if face is not None:
            self.honest_selfies.add(f"app-{c.index:06d}")
        self._add(
            day,
            APPLICATIONS,
            application_event(
                envelope(self.run, c.tenant, "application", c.index, at + timedelta(minutes=5)),
                application_id=f"app-{c.index:06d}",
                customer_id=c.customer_id,
                identity=c.identity,
                amount_minor=fields["requested_amount_minor"],
                term_months=fields["term_months"],
                purpose=c.purpose,
                credit_profile=fields["credit_profile"],
                monthly_income_minor=c.monthly_income_minor,
                device_id=c.device_id,
                grade=c.grade,
                face_image=face,
            ),
        )
        for d in range(self.days):
            for k in range(self._poisson(0.5)):
                self._card_payment(c, d, k)

    def _poisson(self, mean: float) -> int:
        count, threshold, product = 0, pow(2.718281828, -mean), self.rng.random()
        while product > threshold:
            count += 1
            product *= self.rng.random()
        return count

    def _card_payment(self, c: Customer, day: int, k: int) -> None:
        merchant, mcc, median = self.rng.choice(_SHOPS)
        # Local 07:00-23:00 mostly (UTC+8); a few late-night purchases.
        hour_local = (
            self.rng.randrange(7, 23) if self.rng.random() > 0.03 else self.rng.randrange(0, 5)
        )
        at = utc(self.start + timedelta(days=day), (hour_local - 8) % 24, self.rng.randrange(60))
        amount = max(100, int(self.rng.lognormvariate(0, 0.6) * median * 100))
        self._add(
            day,
            TRANSACTIONS,
            transaction_event(
                envelope(self.run, c.tenant, "transaction", f"{c.index}-{day}-{k}", at),
                transaction_id=f"txn-{c.index}-{day}-{k}",
                customer_id=c.customer_id,
                card_number=c.card,
                amount_minor=amount,
                merchant_id=merchant,
                mcc=mcc,
            ),
        )

    # --- what the demo publishes -------------------------------------------------------------

    def day_events(self, day: int) -> list[tuple[str, dict[str, Any]]]:
        """Everything that happens on `day` (0-based), in time order."""
        events = self.plan.pop(day, [])
        events.sort(key=lambda item: item[1]["occurred_at"])
        return events

    def tick(self, day: int) -> tuple[str, dict[str, Any]]:
        """The end-of-day loan-ageing tick for `day`."""
        on = self.start + timedelta(days=day)
        return CLOCK, {
            **envelope(self.run, "*", "tick", day, utc(on, 23, 59)),
            "as_of": on,
        }

    def date_of(self, day: int) -> date:
        """Calendar date of simulated `day`."""
        return self.start + timedelta(days=day)

    def on_disbursement(self, loan: dict[str, Any], day: int) -> None:
        """Plan the loan's life: repayments by habit, spending of the funds, guarantor news."""
        if loan["loan_id"] in self.loans:
            return  # at-least-once: a redelivered disbursement changes nothing
        self.loans[loan["loan_id"]] = loan
        customer = self.by_customer.get(loan["customer_id"])
        end = self.date_of(self.days - 1)
        # Only outcomes that fall inside the run are ground truth: the engine cannot be
        # expected to see a default whose grace period ends after the last simulated day.
        first_due = loan["schedule"][0]["due_date"]
        fpd_visible = first_due + timedelta(days=GRACE_DAYS + 1) <= end
        if customer is None:
            # An attacker's loan: nobody ever repays it (the fraud behind most early defaults).
            if fpd_visible:
                self.truth.add("first_payment_default", loan["loan_id"], loan["loan_id"])
            return
        if customer.habit == RepaymentHabit.FIRST_PAYMENT_DEFAULT and fpd_visible:
            self.truth.add("first_payment_default", loan["loan_id"], loan["loan_id"])
        for n, instalment in enumerate(loan["schedule"]):
            if instalment["due_date"] > end:
                break
            paid = instalment_paid_on(customer.habit, n + 1, instalment["due_date"], self.rng)
            if paid is not None and paid <= end:
                self._repayment(loan, instalment, paid, max(day, (paid - self.start).days))
                late = (paid - instalment["due_date"]).days > GRACE_DAYS
                if customer.habit == RepaymentHabit.GRADUAL_DELINQUENCY_CURE and late:
                    self.truth.add("gradual_delinquency_cure", loan["loan_id"], loan["loan_id"])
        self._spend(loan, customer, day)
        if customer.customer_id in self.guarantor_defaults:
            later = min(self.days - 2, day + self.rng.randrange(10, 30))
            at = utc(self.date_of(later), 3)
            self._add(
                later,
                SERVICING,
                {
                    **envelope(self.run, loan["tenant_id"], "servicing", loan["loan_id"], at),
                    "loan_id": loan["loan_id"],
                    "kind": "GUARANTOR_DELINQUENT",
                    "holiday_start": None,
                    "holiday_end": None,
                    "collateral_value_minor": None,
                    "currency": None,
                    "guarantor_id": f"guarantor-{customer.index}",
                    "behaviour_risk": None,
                },
            )
            self.truth.add("guarantor_default", loan["loan_id"], loan["loan_id"])

    def _repayment(
        self, loan: dict[str, Any], instalment: dict[str, Any], paid: date, day: int
    ) -> None:
        at = utc(paid, 2, self.rng.randrange(60))
        self._add(
            day,
            REPAYMENTS,
            {
                **envelope(
                    self.run,
                    loan["tenant_id"],
                    "repayment",
                    f"{loan['loan_id']}-{instalment['number']}",
                    at,
                ),
                "loan_id": loan["loan_id"],
                "instalment_number": instalment["number"],
                "due_date": instalment["due_date"],
                "amount_due_minor": instalment["amount_due_minor"],
                "amount_paid_minor": instalment["amount_due_minor"],
                "currency": loan["currency"],
                "paid_at": at,
            },
        )

    def _spend(self, loan: dict[str, Any], customer: Customer, day: int) -> None:
        """Green loans are spent within days: where they should be, unless diverted."""
        fitting = self.fitting_mccs.get(loan["purpose"], [])
        if not fitting:
            return
        diverted = customer.customer_id in self.diverters
        remaining = loan["amount_minor"]
        for part in range(2):
            spend_day = min(self.days - 1, day + 1 + part * 2)
            at = utc(self.date_of(spend_day), 3 + part, self.rng.randrange(60))
            amount = remaining if part == 1 else remaining * 6 // 10
            remaining -= amount
            merchant, mcc = (
                self.rng.choice(_DIVERSION_SHOPS)
                if diverted
                else (f"m-green-{fitting[0]}", self.rng.choice(fitting))
            )
            txn = transaction_event(
                envelope(
                    self.run,
                    loan["tenant_id"],
                    "transaction",
                    f"{loan['loan_id']}-spend-{part}",
                    at,
                ),
                transaction_id=f"txn-{loan['loan_id']}-{part}",
                customer_id=customer.customer_id,
                card_number=customer.card,
                amount_minor=amount,
                merchant_id=merchant,
                mcc=mcc,
                loan_id=loan["loan_id"],
            )
            self._add(spend_day, TRANSACTIONS, txn)
        if diverted:
            self.truth.add("green_fund_diversion", loan["loan_id"], loan["loan_id"])

    def lender_configs(self, example: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """Both lenders' AHP configurations (from the schema example), with a 3-day grace."""
        configs = []
        for n, tenant in enumerate(TENANTS):
            at = utc(self.start, 0)
            config = {
                **example,
                **envelope(self.run, tenant, "config", n, at),
                "schema_version": example["schema_version"],
                "config_version": 100 + n,
                "delinquency_policy": f'{{"grace_days": {GRACE_DAYS}}}',
            }
            if n == 1:  # the second lender weighs credit risk over fraud risk
                config["nodes"] = [dict(node) for node in example["nodes"]]
                config["nodes"][0]["matrix"] = [
                    [1, 0.5, 5, 3],
                    [2, 1, 7, 4],
                    [0.2, 1 / 7, 1, 0.5],
                    [1 / 3, 0.25, 2, 1],
                ]
            configs.append((CONFIGS, config))
        return configs

    def customer(self, customer_id: str) -> Customer | None:
        """The honest customer behind `customer_id` (None for attackers)."""
        return self.by_customer.get(customer_id)
