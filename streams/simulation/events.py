"""Schema-valid event builders shared by the scenario and the load generators.

Identities are synthetic but well formed (PRC ID numbers with correct check digits, 13x
mobile numbers, example.com e-mails, 19-digit UnionPay-style card numbers) so the engine's
validation treats them like real ones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from greencredit.models.scoring import id_check_digit

__all__ = [
    "Identity",
    "application_event",
    "device_signal_event",
    "envelope",
    "event_id",
    "transaction_event",
    "valid_id_number",
]

_NAMESPACE = uuid.UUID("9d5c4f1a-3b2e-4c7d-8e6f-5a4b3c2d1e0f")


def event_id(run: str, kind: str, n: int | str) -> str:
    """Deterministic event id: the same seed and run give the same ids (replays dedupe)."""
    return str(uuid.uuid5(_NAMESPACE, f"{run}:{kind}:{n}"))


def envelope(run: str, tenant: str, kind: str, n: int | str, at: datetime) -> dict[str, Any]:
    """The common header of every event."""
    return {
        "event_id": event_id(run, kind, n),
        "tenant_id": tenant,
        "occurred_at": at,
        "schema_version": 1,
    }


def valid_id_number(born: date, sequence: int, region: str = "110105") -> str:
    """A PRC resident ID number with a correct check digit."""
    body = f"{region}{born:%Y%m%d}{sequence % 1000:03d}"
    return body + id_check_digit(body)


@dataclass(frozen=True)
class Identity:
    """What an applicant types into the form; all of it is PII the engine must mask."""

    full_name: str
    id_card_number: str
    phone: str
    email: str
    bank_card_number: str

    def as_record(self) -> dict[str, str]:
        """The `applicant` record of a loan application."""
        return {
            "full_name": self.full_name,
            "id_card_number": self.id_card_number,
            "phone": self.phone,
            "email": self.email,
            "bank_card_number": self.bank_card_number,
        }


def application_event(
    header: dict[str, Any],
    *,
    application_id: str,
    customer_id: str,
    identity: Identity,
    amount_minor: int,
    term_months: int,
    purpose: str,
    credit_profile: dict[str, Any],
    monthly_income_minor: int,
    device_id: str,
    grade: str | None = None,
    face_image: bytes | None = None,
) -> dict[str, Any]:
    """A loan application (schema v2)."""
    return {
        **header,
        "schema_version": 2,
        "application_id": application_id,
        "customer_id": customer_id,
        "applicant": identity.as_record(),
        "requested_amount_minor": amount_minor,
        "currency": "CNY",
        "term_months": term_months,
        "purpose": purpose,
        "appliance_efficiency_grade": grade,
        "credit_profile": credit_profile,
        "monthly_income_minor": monthly_income_minor,
        "device_id": device_id,
        "ip_address": None,
        "geo_country": "CN",
        "face_image_ref": None,
        "esg": None,
        "face_image": face_image,
        "liveness_frames": [],
    }


def device_signal_event(
    header: dict[str, Any], device_id: str, customer_id: str | None, **flags: Any
) -> dict[str, Any]:
    """A device signal from the app SDK; clean unless `flags` say otherwise."""
    return {
        **header,
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


def transaction_event(
    header: dict[str, Any],
    *,
    transaction_id: str,
    customer_id: str,
    card_number: str,
    amount_minor: int,
    merchant_id: str,
    mcc: str,
    loan_id: str | None = None,
    device_id: str | None = None,
    channel: str = "POS",
) -> dict[str, Any]:
    """A card payment."""
    return {
        **header,
        "transaction_id": transaction_id,
        "customer_id": customer_id,
        "account_id": customer_id.replace("cust-", "acct-"),
        "loan_id": loan_id,
        "card_number": card_number,
        "amount_minor": amount_minor,
        "currency": "CNY",
        "merchant_id": merchant_id,
        "merchant_name": merchant_id,
        "mcc": mcc,
        "channel": channel,
        "device_id": device_id,
        "ip_address": None,
        "ip_country": None,
        "merchant_country": "CN",
    }


def utc(day: date, hour: int = 0, minute: int = 0) -> datetime:
    """Midnight-based UTC instant on `day`."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
