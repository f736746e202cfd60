"""A seeded, synthetic event stream for the demo and the benchmarks.

Credit profiles are real German Credit applicants (so the BP model sees realistic inputs),
with synthetic identities (valid check digits, example.com e-mails). A few patterns are
planted on purpose: a device farm (several identities on one phone), an emulator, an
account takeover (SIM swap, then a large night-time purchase), and poison messages.
"""

from __future__ import annotations

import csv
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from greencredit.models.bp_features import GERMAN_CREDIT_CSV, german_row_to_application
from greencredit.models.scoring import GREEN_PURPOSES, id_check_digit

__all__ = ["SimulatedStream", "Simulator", "valid_id_number"]

_GREEN = sorted(GREEN_PURPOSES - {"GREEN_BUSINESS_TRANSFORMATION"})  # consumers, not firms
_GREY = ["CAR", "HOME_IMPROVEMENT", "EDUCATION", "TRAVEL", "ELECTRONICS", "DEBT_CONSOLIDATION"]
_MERCHANTS = [
    ("m-grocer", "5411"),
    ("m-fuel", "5541"),
    ("m-ev-charge", "5552"),
    ("m-pharmacy", "5912"),
    ("m-restaurant", "5812"),
    ("m-transit", "4111"),
]
_NAMESPACE = uuid.UUID("9d5c4f1a-3b2e-4c7d-8e6f-5a4b3c2d1e0f")


def valid_id_number(born: datetime, sequence: int) -> str:
    """A PRC resident ID number with a correct check digit (region 110105, Beijing)."""
    body = f"110105{born:%Y%m%d}{sequence % 1000:03d}"
    return body + id_check_digit(body)


@dataclass
class SimulatedStream:
    """Events per topic, in publishing order, and what was planted."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    poison: list[tuple[str, bytes]] = field(default_factory=list)
    planted: dict[str, list[str]] = field(default_factory=dict)

    def count(self, topic: str) -> int:
        """How many events go to `topic`."""
        return sum(1 for t, _ in self.events if t == topic)


class Simulator:
    """Builds a deterministic stream for `tenant_id` from a seed."""

    def __init__(self, tenant_id: str = "lender-green-bank", seed: int = 7) -> None:
        self.tenant_id = tenant_id
        self.rng = random.Random(seed)  # noqa: S311 - simulation, not security
        with GERMAN_CREDIT_CSV.open(newline="", encoding="ascii") as handle:
            self.rows = list(csv.DictReader(handle))
        self.now = datetime.now(UTC)

    def _id(self, kind: str, n: int) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.tenant_id}:{kind}:{n}:{self.now.isoformat()}"))

    def _envelope(self, kind: str, n: int, at: datetime) -> dict[str, Any]:
        return {
            "event_id": self._id(kind, n),
            "tenant_id": self.tenant_id,
            "occurred_at": at,
            "schema_version": 1,
        }

    def application(
        self, n: int, device_id: str | None = None, at: datetime | None = None
    ) -> dict[str, Any]:
        """Application n: a real German Credit profile with a synthetic identity."""
        row = self.rows[n % len(self.rows)]
        base = german_row_to_application(row)
        age = base["credit_profile"]["age_years"]
        at = at or self.now
        born = datetime(at.year - age, 1 + n % 12, 1 + n % 28, tzinfo=UTC)
        if (at.month, at.day) < (born.month, born.day):
            born = born.replace(year=born.year - 1)
        # The BP model learnt on DM amounts taken as major units; keep them (see the model card).
        amount = base["requested_amount_minor"]
        green = self.rng.random() < 0.45
        return {
            **self._envelope("application", n, at),
            "application_id": f"app-{n:06d}",
            "customer_id": f"cust-{n:06d}",
            "applicant": {
                "full_name": f"Customer {n}",
                "id_card_number": valid_id_number(born, n),
                "phone": f"13{n % 10}{n:08d}",
                "email": f"customer{n}@example.com",
                "bank_card_number": f"622202{n:013d}",
            },
            "requested_amount_minor": amount,
            "currency": "CNY",
            "term_months": base["term_months"],
            "purpose": self.rng.choice(_GREEN if green else _GREY),
            "appliance_efficiency_grade": None,
            "credit_profile": base["credit_profile"],
            "monthly_income_minor": self.rng.randrange(600_000, 4_000_000, 10_000),
            "device_id": device_id or f"dev-{n:06d}",
            "ip_address": None,
            "geo_country": "CN",
            "face_image_ref": None,
        }

    def device_signal(
        self, n: int, device_id: str, customer_id: str, at: datetime, **flags: Any
    ) -> dict[str, Any]:
        """A device signal; clean unless flags say otherwise."""
        return {
            **self._envelope("device", n, at),
            "device_id": device_id,
            "fingerprint": f"fp-{device_id}",
            "customer_id": customer_id,
            "account_id": None,
            "is_emulator": False,
            "is_rooted": False,
            "is_jailbroken": False,
            "vpn_active": False,
            "proxy_active": False,
            "sim_change_age_hours": 8000,
            "geo_country": "CN",
            "ip_address": None,
            "app_install_age_hours": 2000,
            "os": "android 15",
            **flags,
        }

    def transaction(
        self,
        n: int,
        customer: int,
        amount_minor: int,
        at: datetime,
        merchant: tuple[str, str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A card payment by customer `customer`."""
        merchant_id, mcc = merchant or self.rng.choice(_MERCHANTS)
        return {
            **self._envelope("transaction", n, at),
            "transaction_id": f"txn-{n:07d}",
            "customer_id": f"cust-{customer:06d}",
            "account_id": f"acct-{customer:06d}",
            "loan_id": None,
            "card_number": f"622202{customer:013d}",
            "amount_minor": amount_minor,
            "currency": "CNY",
            "merchant_id": merchant_id,
            "merchant_name": merchant_id,
            "mcc": mcc,
            "channel": "POS",
            "device_id": None,
            "ip_address": None,
            "ip_country": None,
            "merchant_country": "CN",
            **extra,
        }

    def stream(
        self, applications: int = 200, transactions_per_customer: int = 3
    ) -> SimulatedStream:
        """The demo stream: applications, devices, transactions, planted fraud, poison."""
        out = SimulatedStream()
        day = self.now
        for n in range(applications):
            device = f"dev-{n:06d}"
            out.events.append(
                ("greencredit.device-signals", self.device_signal(n, device, f"cust-{n:06d}", day))
            )
        farm = [applications + i for i in range(4)]
        emulator = applications + 10
        out.events.append(
            (
                "greencredit.device-signals",
                self.device_signal(
                    emulator, f"dev-{emulator:06d}", f"cust-{emulator:06d}", day, is_emulator=True
                ),
            )
        )
        for n in range(applications):
            out.events.append(("greencredit.loan-applications", self.application(n)))
        for n in farm:
            out.events.append(
                ("greencredit.loan-applications", self.application(n, device_id="dev-farm-0001"))
            )
        out.events.append(("greencredit.loan-applications", self.application(emulator)))
        out.planted["device_farm"] = [f"app-{n:06d}" for n in farm]
        out.planted["emulator"] = [f"app-{emulator:06d}"]
        txn = 0
        for customer in range(min(applications, 60)):
            for k in range(transactions_per_customer + 3):
                at = day - timedelta(days=3, hours=k)
                out.events.append(
                    (
                        "greencredit.transactions",
                        self.transaction(txn, customer, 8_000 + 500 * k, at),
                    )
                )
                txn += 1
        # Account takeover: SIM swapped two hours ago, then a large purchase at 03:00 local.
        victim = 1
        out.events.append(
            (
                "greencredit.device-signals",
                self.device_signal(
                    10_000,
                    "dev-victim",
                    f"cust-{victim:06d}",
                    day - timedelta(hours=2),
                    sim_change_age_hours=1,
                ),
            )
        )
        night = day.replace(hour=19, minute=0, second=0, microsecond=0)  # 03:00 Asia/Shanghai
        takeover = self.transaction(
            txn,
            victim,
            4_800_000,
            night,
            merchant=("m-luxury-watches", "5944"),
            device_id="dev-victim",
        )
        out.events.append(("greencredit.transactions", takeover))
        out.planted["takeover"] = [takeover["event_id"]]
        out.poison = [
            ("greencredit.loan-applications", b"\x00\x00\x00\x00\x01\x02truncated"),
            ("greencredit.transactions", b'{"not": "avro"}'),
        ]
        return out

    def applications_only(self, count: int, start: int = 0) -> Iterator[dict[str, Any]]:
        """Applications for load tests (fresh ids, no planted patterns)."""
        for n in range(start, start + count):
            yield self.application(n)
