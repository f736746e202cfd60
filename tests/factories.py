"""Valid events built from the shipped examples, with the changes a test needs."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from greencredit.models.scoring import id_check_digit
from greencredit.schemas import examples_dir
from greencredit.streams.catalog import SchemaCatalog
from greencredit.streams.jsonform import from_json_form

_CATALOG = SchemaCatalog()


def example(name: str) -> dict[str, Any]:
    """The JSON-form example event of a schema (a fresh copy)."""
    return copy.deepcopy(json.loads((examples_dir() / f"{name}.json").read_text()))


def native(schema_name: str, event: dict[str, Any]) -> dict[str, Any]:
    """JSON form -> Avro-native (datetimes, dates)."""
    return from_json_form(_CATALOG.reader(schema_name).raw, event)


def valid_id_number(region: str = "110105", born: str = "19900307", seq: str = "123") -> str:
    """An 18-character PRC ID number with a correct check digit."""
    body = region + born + seq
    return body + id_check_digit(body)


def application(n: int, **changes: Any) -> dict[str, Any]:
    """Application number `n` (unique ids, PII and device unless overridden), Avro-native."""
    event = example("loan_application")
    event["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"application-{n}"))
    event["application_id"] = f"app-{n:05d}"
    event["customer_id"] = f"cust-{n:05d}"
    event["device_id"] = f"dev-{n:05d}"
    event["applicant"] = {
        "full_name": f"Test Person {n}",
        "id_card_number": valid_id_number(seq=f"{n % 1000:03d}"),
        "phone": f"139{n:08d}",
        "email": f"person{n}@example.com",
        "bank_card_number": f"62220200{n:011d}",
    }
    event["occurred_at"] = changes.pop("occurred_at", datetime.now(UTC).isoformat())
    applicant = changes.pop("applicant", {})
    profile = changes.pop("credit_profile", {})
    event.update(changes)
    event["applicant"].update(applicant)
    event["credit_profile"].update(profile)
    return native("greencredit.v1.LoanApplication", event)


def transaction(n: int, **changes: Any) -> dict[str, Any]:
    """Transaction number `n`, Avro-native."""
    event = example("transaction")
    event["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"transaction-{n}"))
    event["transaction_id"] = f"txn-{n:06d}"
    event["occurred_at"] = changes.pop("occurred_at", datetime.now(UTC).isoformat())
    event.update(changes)
    return native("greencredit.v1.Transaction", event)


def fraud_alert(
    tenant: str,
    n: int,
    *,
    severity: str = "CRITICAL",
    code: str = "SIM_SWAP_LARGE_AMOUNT",
    contribution: float = 0.9,
    **changes: Any,
) -> dict[str, Any]:
    """Fraud alert number `n` of `tenant` (fresh ids, one reason), Avro-native."""
    event = example("fraud_alert")
    event.update(
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        alert_id=f"alert-{tenant}-{n}",
        source_event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC).isoformat(),
        severity=severity,
        reasons=[{"code": code, "contribution": contribution}],
        **changes,
    )
    return native("greencredit.v1.FraudAlert", event)
