"""Planted fraud typologies: what each attacker sends, with its ground truth.

Each planter appends events to the day plan and records the case in the ground truth. The
patterns follow how the attacks look to a lender's systems:

- device farm: one or two phones submit applications for many identities within days;
- identity theft: a stolen but valid identity, and a selfie of a known fraudster;
- velocity burst: one identity submits application after application within an hour;
- synthetic identity: an ID number that does not exist (bad check digit, or a birth date
  that does not match the declared age);
- account takeover: the victim's SIM is swapped, then large night-time payments follow.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from greencredit.models.bp_features import german_row_to_application
from greencredit.models.scoring import id_check_digit

from .events import (
    Identity,
    application_event,
    device_signal_event,
    envelope,
    transaction_event,
    utc,
)
from .population import Customer, german_rows, identity_for
from .truth import GroundTruth

__all__ = ["Planter"]

Plan = dict[int, list[tuple[str, dict[str, Any]]]]
APPLICATIONS = "greencredit.loan-applications"
DEVICES = "greencredit.device-signals"
TRANSACTIONS = "greencredit.transactions"


@dataclass
class Planter:
    """Adds typology events to `plan` (day -> events) and cases to `truth`."""

    run: str
    rng: random.Random
    start: date
    apply_window: int
    tenants: list[str]
    plan: Plan
    truth: GroundTruth
    fraud_faces: int
    face_photo: Callable[[int, bool], bytes]  # (face index, fraudster?) -> JPEG bytes
    _serial: int = 900_000  # identity numbers of attackers, apart from customers'
    _ages: dict[str, int] = field(default_factory=dict)  # ID number -> declared age
    _rows: list[dict[str, str]] = field(default_factory=german_rows)

    def _day(self) -> int:
        return self.rng.randrange(self.apply_window)

    def _at(self, day: int, hour: int, minute: int = 0) -> datetime:
        return utc(self.start + timedelta(days=day), hour, minute)

    def _application(
        self,
        app_id: str,
        cust_id: str,
        identity: Identity,
        device: str,
        at: datetime,
        tenant: str,
        face: bytes | None = None,
    ) -> dict[str, Any]:
        fields = self._fields()
        fields["credit_profile"]["age_years"] = self._ages[identity.id_card_number]
        return application_event(
            envelope(self.run, tenant, "application", app_id, at),
            application_id=app_id,
            customer_id=cust_id,
            identity=identity,
            amount_minor=fields["requested_amount_minor"],
            term_months=fields["term_months"],
            purpose=self.rng.choice(["ELECTRONICS", "TRAVEL", "E_BIKE", "HOME_IMPROVEMENT"]),
            credit_profile=fields["credit_profile"],
            monthly_income_minor=self.rng.randrange(500_000, 2_000_000, 10_000),
            device_id=device,
            face_image=face,
        )

    def _fields(self) -> dict[str, Any]:
        return german_row_to_application(self._rows[self.rng.randrange(len(self._rows))])

    def _identity(self, age: int | None = None) -> tuple[int, Identity]:
        """A new attacker-held identity; the age it declares is the one its ID number says."""
        self._serial += 1
        age = age or self.rng.randrange(21, 60)
        identity = identity_for(self._serial, self.start, age, self.rng)
        self._ages[identity.id_card_number] = age
        return self._serial, identity

    def device_farms(self, rings: int) -> None:
        """Each ring: 1-2 phones, 5-7 identities, applications spread over up to 3 days."""
        for ring in range(rings):
            devices = [f"dev-farm-{ring}-{d}" for d in range(self.rng.choice([1, 2]))]
            day = self._day()
            tenant = self.rng.choice(self.tenants)
            for k in range(self.rng.randrange(5, 8)):
                serial, identity = self._identity()
                device = devices[k % len(devices)]
                at = self._at(min(day + k // 3, self.apply_window), 2 + k, 7 * k % 60)
                cust = f"cust-f{serial}"
                self._add(
                    at,
                    DEVICES,
                    device_signal_event(
                        envelope(self.run, tenant, "device", f"farm-{ring}-{k}", at),
                        device,
                        cust,
                        app_install_age_hours=self.rng.randrange(1, 48),
                    ),
                )
                app_id = f"app-farm-{ring}-{k}"
                self._add(
                    at, APPLICATIONS, self._application(app_id, cust, identity, device, at, tenant)
                )
                self.truth.add("device_farm", f"ring-{ring}", app_id)

    def identity_thefts(self, count: int) -> None:
        """A valid identity applied for with a fraudster's selfie from a fresh phone."""
        for k in range(count):
            serial, identity = self._identity()
            at = self._at(self._day(), self.rng.randrange(9, 22), self.rng.randrange(60))
            tenant = self.rng.choice(self.tenants)
            face = self.face_photo(k % self.fraud_faces, True)
            app_id = f"app-theft-{k}"
            self._add(
                at,
                APPLICATIONS,
                self._application(
                    app_id, f"cust-f{serial}", identity, f"dev-theft-{k}", at, tenant, face
                ),
            )
            self.truth.add("identity_theft", f"thief-{k}", app_id)

    def velocity_bursts(self, count: int) -> None:
        """4-6 applications of one identity within an hour (a script testing the form)."""
        for k in range(count):
            serial, identity = self._identity()
            base = self._at(self._day(), self.rng.randrange(0, 23), self.rng.randrange(10))
            tenant = self.rng.choice(self.tenants)
            for j in range(self.rng.randrange(4, 7)):
                at = base + timedelta(minutes=8 * j + self.rng.randrange(5))
                app_id = f"app-burst-{k}-{j}"
                self._add(
                    at,
                    APPLICATIONS,
                    self._application(
                        app_id, f"cust-f{serial}", identity, f"dev-burst-{k}-{j % 2}", at, tenant
                    ),
                )
                self.truth.add("velocity_burst", f"burst-{k}", app_id)

    def synthetic_identities(self, count: int) -> None:
        """ID numbers that cannot exist: a wrong check digit, or a birth date off the age."""
        for k in range(count):
            serial, identity = self._identity(age=self.rng.randrange(23, 50))
            number = identity.id_card_number
            if k % 2 == 0:  # the generator got the checksum wrong
                last = number[-1]
                wrong = next(c for c in "0123456789X" if c != last)
                number = number[:-1] + wrong
            else:  # a valid checksum, but born 15-25 years off the declared age
                year = int(number[6:10]) - self.rng.randrange(15, 26)
                body = number[:6] + f"{year:04d}" + number[10:17]
                number = body + id_check_digit(body)
            fake = Identity(
                identity.full_name,
                number,
                identity.phone,
                identity.email,
                identity.bank_card_number,
            )
            self._ages[number] = self._ages[identity.id_card_number]
            at = self._at(self._day(), self.rng.randrange(9, 22), self.rng.randrange(60))
            app_id = f"app-synth-{k}"
            self._add(
                at,
                APPLICATIONS,
                self._application(
                    app_id,
                    f"cust-f{serial}",
                    fake,
                    f"dev-synth-{k}",
                    at,
                    self.rng.choice(self.tenants),
                ),
            )
            self.truth.add("synthetic_identity", f"synthetic-{k}", app_id)

    def account_takeovers(self, victims: list[Customer], days: int) -> None:
        """SIM swap on a new phone, then 1-3 large night-time payments within hours."""
        for k, victim in enumerate(victims):
            day = self.rng.randrange(self.apply_window + 5, days - 2)
            swap_at = self._at(day, 15, self.rng.randrange(60))  # 23:xx Asia/Shanghai
            device = f"dev-ato-{k}"
            self._add(
                swap_at,
                DEVICES,
                device_signal_event(
                    envelope(self.run, victim.tenant, "device", f"ato-{k}", swap_at),
                    device,
                    victim.customer_id,
                    sim_change_age_hours=self.rng.randrange(1, 6),
                    app_install_age_hours=1,
                ),
            )
            for j in range(self.rng.randrange(1, 4)):
                at = swap_at + timedelta(minutes=40 + 35 * j)
                txn = transaction_event(
                    envelope(self.run, victim.tenant, "transaction", f"ato-{k}-{j}", at),
                    transaction_id=f"txn-ato-{k}-{j}",
                    customer_id=victim.customer_id,
                    card_number=victim.card,
                    amount_minor=self.rng.randrange(1_500_000, 6_000_000, 100),
                    merchant_id=self.rng.choice(
                        ["m-luxury-watches", "m-gold-bar", "m-phones-online"]
                    ),
                    mcc=self.rng.choice(["5944", "5094", "5732"]),
                    device_id=device,
                    channel="ECOMMERCE",
                )
                self._add(at, TRANSACTIONS, txn)
                self.truth.add("account_takeover", f"takeover-{k}", txn["event_id"])

    def _add(self, at: datetime, topic: str, event: dict[str, Any]) -> None:
        self.plan.setdefault((at.date() - self.start).days, []).append((topic, event))
