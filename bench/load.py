"""Load for the benchmarks: schema-valid events with fresh ids and unique identities.

Every applicant is a new person (own ID number, phone, card, device), so velocity and
device-farm rules do not fire and the engine takes its ordinary path for each event.
Credit profiles cycle through the real German Credit rows, as in the demo.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from greencredit.models.bp_features import german_row_to_application
from greencredit.streams.codec import AvroCodec
from greencredit.streams.simulation.events import (
    Identity,
    application_event,
    device_signal_event,
    envelope,
    transaction_event,
    valid_id_number,
)
from greencredit.streams.simulation.population import german_rows, identity_for
from greencredit.streams.topics import topic

__all__ = [
    "APPLICATIONS",
    "DEVICE_SIGNALS",
    "TRANSACTIONS",
    "Load",
    "Outgoing",
]

APPLICATIONS = "greencredit.loan-applications"
TRANSACTIONS = "greencredit.transactions"
DEVICE_SIGNALS = "greencredit.device-signals"
_GREEN = ["ELECTRIC_VEHICLE", "E_BIKE", "SOLAR_PV", "HEAT_PUMP", "HOME_INSULATION_RETROFIT"]
_GREY = ["CAR", "HOME_IMPROVEMENT", "EDUCATION", "TRAVEL", "ELECTRONICS"]
_SHOPS = [("m-grocer", "5411", 85), ("m-restaurant", "5812", 60), ("m-online-mall", "5399", 150)]
# Per new customer in the mixed stream: the app's device signal, the application, then card
# payments. Payments dominate a real platform's traffic; three keeps applications, the
# expensive kind, at a fifth of the events.
PAYMENTS_PER_CUSTOMER = 3


@dataclass(frozen=True)
class Outgoing:
    """One encoded message ready to produce."""

    topic: str
    key: bytes
    value: bytes
    event_id: str


class Load:
    """Builds and encodes events for customer numbers `n` (unique per `run`)."""

    def __init__(self, run: str, tenant: str = "bench-lender", seed: int = 1) -> None:
        self.run = run
        self.tenant = tenant
        self.rows = german_rows()
        self.rng = random.Random(seed)
        self.codec = AvroCodec()
        self._validated: set[str] = set()

    def identity(self, n: int, age: int, today: date) -> Identity:
        """`identity_for`, with an ID number unique for every n (its region encodes n // 1000)."""
        base = identity_for(n, today, age, self.rng)
        digits = base.id_card_number
        born = date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))
        region = f"{110000 + (n // 1000) % 890000:06d}"
        return replace(base, id_card_number=valid_id_number(born, n, region))

    def application(self, n: int, at: datetime | None = None) -> dict[str, Any]:
        """Application `n`: German Credit row n mod 1,000 and a new applicant."""
        at = at or datetime.now(UTC)
        fields = german_row_to_application(self.rows[n % len(self.rows)])
        profile = fields["credit_profile"]
        green = self.rng.random() < 0.45
        return application_event(
            envelope(self.run, self.tenant, "application", n, at),
            application_id=f"app-{self.run}-{n}",
            customer_id=_customer(self.run, n),
            identity=self.identity(n, profile["age_years"], at.date()),
            amount_minor=fields["requested_amount_minor"],
            term_months=fields["term_months"],
            purpose=self.rng.choice(_GREEN if green else _GREY),
            credit_profile=profile,
            monthly_income_minor=self.rng.randrange(600_000, 4_000_000, 10_000),
            device_id=_device(self.run, n),
        )

    def encode(self, topic_name: str, event: dict[str, Any]) -> Outgoing:
        """Wire-format bytes keyed as the registry says; the first event per topic is validated.

        Full validation of every event would make the generator, which shares the cores
        with the engine, cost twice as much; the builders are the same for every n.
        """
        check = topic_name not in self._validated
        value = self.codec.encode(topic_name, event, validate=check)
        self._validated.add(topic_name)
        key = str(event[topic(topic_name).key_field]).encode()
        return Outgoing(topic_name, key, value, str(event["event_id"]))

    def applications(self, count: int, start: int = 0) -> Iterator[Outgoing]:
        """`count` encoded applications for customers start .. start + count - 1."""
        for n in range(start, start + count):
            yield self.encode(APPLICATIONS, self.application(n))

    def transactions(self, count: int, start: int = 0) -> Iterator[Outgoing]:
        """`count` encoded card payments, PAYMENTS_PER_CUSTOMER per customer from `start`."""
        now = datetime.now(UTC)
        card = ""
        for i in range(start, start + count):
            n, k = divmod(i, PAYMENTS_PER_CUSTOMER)
            if k == 0 or not card:
                card = self._card(n, now)
            yield self.encode(TRANSACTIONS, self._payment(n, k, card, now))

    def device_signals(self, count: int, start: int = 0) -> Iterator[Outgoing]:
        """`count` encoded device signals, one per customer from `start`."""
        now = datetime.now(UTC)
        for n in range(start, start + count):
            header = envelope(self.run, self.tenant, "device", n, now)
            event = device_signal_event(header, _device(self.run, n), _customer(self.run, n))
            yield self.encode(DEVICE_SIGNALS, event)

    def mixed(self, count: int, start: int = 0) -> Iterator[Outgoing]:
        """`count` events: per customer a device signal, the application, card payments."""
        sent = 0
        n = start
        while sent < count:
            for out in self._customer_day(n):
                if sent == count:
                    return
                yield out
                sent += 1
            n += 1

    def _customer_day(self, n: int) -> Iterator[Outgoing]:
        now = datetime.now(UTC)
        customer, device = _customer(self.run, n), _device(self.run, n)
        header = envelope(self.run, self.tenant, "device", n, now)
        yield self.encode(DEVICE_SIGNALS, device_signal_event(header, device, customer))
        application = self.application(n, now)
        yield self.encode(APPLICATIONS, application)
        card = application["applicant"]["bank_card_number"]
        for i in range(PAYMENTS_PER_CUSTOMER):
            yield self.encode(TRANSACTIONS, self._payment(n, i, card, now))

    def _card(self, n: int, at: datetime) -> str:
        # The applicant's card as in the mixed stream: the identity holds it.
        age = german_row_to_application(self.rows[n % len(self.rows)])["credit_profile"]
        return self.identity(n, age["age_years"], at.date()).bank_card_number

    def _payment(self, n: int, i: int, card: str, at: datetime) -> dict[str, Any]:
        merchant, mcc, median = self.rng.choice(_SHOPS)
        return transaction_event(
            envelope(self.run, self.tenant, "payment", f"{n}-{i}", at),
            transaction_id=f"tx-{self.run}-{n}-{i}",
            customer_id=_customer(self.run, n),
            card_number=card,
            amount_minor=int(median * 100 * self.rng.lognormvariate(0, 0.5)),
            merchant_id=merchant,
            mcc=mcc,
            device_id=_device(self.run, n),
        )


def _customer(run: str, n: int) -> str:
    return f"cust-{run}-{n}"


def _device(run: str, n: int) -> str:
    return f"dev-{run}-{n}"
