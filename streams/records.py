"""Every output record the engine builds: deterministic ids, pseudonyms, no raw PII.

Ids are UUIDv5 of the input event id, so reprocessing an input (at-least-once delivery,
a restarted worker) yields the same output ids and consumers can de-duplicate. One builder
per output schema: decisions and reviews, disbursements, fraud alerts, loan-servicing
behaviour signals, delinquency escalations, model health and dead letters.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson

from greencredit.models.decision import DisbursementTerms
from greencredit.models.delinquency import Escalation
from greencredit.models.fraud import alert_severity
from greencredit.models.monitoring import ModelHealthEvent
from greencredit.models.scoring import ScoredApplication

from .masking import mask_card, pseudonym, scrub_text

__all__ = [
    "DEAD_LETTER_NAMESPACE",
    "MAX_ORIGINAL_BYTES",
    "OUTPUT_NAMESPACE",
    "behaviour_record",
    "claim_payload",
    "claimed_records",
    "dead_letter_record",
    "decision_record",
    "disbursement_record",
    "escalation_record",
    "fraud_alert_record",
    "model_health_record",
    "output_event_id",
    "uuid5_text",
]

OUTPUT_NAMESPACE = uuid.UUID("2b4b8f0e-6a57-4c1e-9d0f-7f3c1a5e9b42")


def output_event_id(kind: str, source_event_id: str) -> str:
    """Deterministic id of the `kind` output derived from one input event."""
    return uuid5_text(_OUTPUT_NAMESPACE_BYTES, f"{kind}:{source_event_id}")


_OUTPUT_NAMESPACE_BYTES = OUTPUT_NAMESPACE.bytes


def uuid5_text(namespace: bytes, name: str) -> str:
    """str(uuid.uuid5(UUID(bytes=namespace), name)), without building UUID objects.

    Called two or three times per application: the UUID class's checks cost ~8 us a
    call here, the hash itself ~1.
    """
    digest = bytearray(hashlib.sha1(namespace + name.encode()).digest()[:16])  # noqa: S324 - RFC 4122 v5
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def decision_record(
    application: Mapping[str, Any],
    scored: ScoredApplication,
    pii_key: bytes,
    now: datetime,
) -> dict[str, Any]:
    """The ApplicationDecision event (without the audit-chain fields)."""
    result = scored.result
    reasons = [{"code": r.code, "contribution": float(r.contribution)} for r in result.reasons]
    reasons += [{"code": code, "contribution": 0.0} for code in scored.rule_codes]
    return {
        "event_id": output_event_id("decision", application["event_id"]),
        "tenant_id": application["tenant_id"],
        "occurred_at": now,
        "schema_version": 2,
        "application_event_id": application["event_id"],
        "application_id": application["application_id"],
        "customer_id": application["customer_id"],
        "decision": result.decision,
        # NaN only when no indicator could be computed; the decision is then REVIEW.
        "score": float(result.score) if not math.isnan(result.score) else -1.0,
        "reasons": reasons,
        "indicators": {k: float(v) for k, v in scored.indicators.items()},
        "features": {k: float(v) for k, v in scored.features.items()},
        "model_versions": dict(scored.model_versions),
        "ahp_config_version": scored.config_version,
        "lr_weight_adjustment": float(scored.lr_weight_adjustment),
        "approve_below": scored.approve_below,
        "applicant_ref": pseudonym(application["applicant"]["id_card_number"], pii_key, "id"),
    }


def disbursement_record(
    application: Mapping[str, Any], terms: DisbursementTerms, decision_event_id: str
) -> dict[str, Any]:
    """The Disbursement event of an approved application (without the audit-chain fields)."""
    return {
        "event_id": output_event_id("disbursement", application["event_id"]),
        "tenant_id": application["tenant_id"],
        # The loan's business time (its schedule and opening date follow it), not the
        # processing time: in production the two are seconds apart, and a replay after an
        # outage must open the loan on the day it was applied for.
        "occurred_at": application["occurred_at"],
        "schema_version": 1,
        "loan_id": f"loan-{application['application_id']}",
        "application_id": application["application_id"],
        "customer_id": application["customer_id"],
        "decision_event_id": decision_event_id,
        "amount_minor": application["requested_amount_minor"],
        "currency": application["currency"],
        "term_months": application["term_months"],
        "annual_rate_bps": terms.annual_rate_bps,
        "rate_discount_bps": terms.rate_discount_bps,
        "purpose": application["purpose"],
        "destination_account_masked": mask_card(application["applicant"]["bank_card_number"]),
        "schedule": [
            {"number": i.number, "due_date": i.due_date, "amount_due_minor": i.amount_due_minor}
            for i in terms.schedule
        ],
        "funder_id": terms.funder_id,
        "co2e_avoided_kg": terms.co2e_avoided_kg,
    }


def claim_payload(decision: Mapping[str, Any], disbursement: Mapping[str, Any]) -> bytes:
    """The decision and disbursement records kept with a pending disbursement claim (JSON).

    A redelivery that finds the claim pending sends exactly these again, even if it would
    decide differently now (an online model learned in between): once a disbursement may
    have gone out, its decision and its loan must follow it.
    """
    return orjson.dumps({"decision": decision, "disbursement": disbursement})


def claimed_records(payload: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inverse of :func:`claim_payload`: the records with their Avro-native types back.

    JSON has no NaN (orjson writes null): an indicator or feature that was NaN comes back
    as NaN, the only doubles in these records that can be non-finite.
    """
    raw = orjson.loads(payload)
    decision, disbursement = raw["decision"], raw["disbursement"]
    for record in (decision, disbursement):
        record["occurred_at"] = datetime.fromisoformat(record["occurred_at"])
    for name in ("indicators", "features"):
        decision[name] = {k: math.nan if v is None else v for k, v in decision[name].items()}
    for item in disbursement["schedule"]:
        item["due_date"] = date.fromisoformat(item["due_date"])
    return decision, disbursement


def model_health_record(event: ModelHealthEvent, tenant_id: str, worker_id: str) -> dict[str, Any]:
    """The ModelHealth event for a drift assessment (id unique per worker and detection)."""
    d = event.detection
    identity = f"{tenant_id}:{worker_id}:{d.model}:{d.signal}:{d.detected_at.isoformat()}"
    return {
        "event_id": str(uuid.uuid5(OUTPUT_NAMESPACE, f"model-health:{identity}")),
        "tenant_id": tenant_id,
        "occurred_at": event.at,
        "schema_version": 1,
        "detected_at": d.detected_at,
        "model": str(d.model),
        "signal": str(d.signal),
        "detector": d.detector,
        "mean_before": d.mean_before,
        "mean_after": d.mean_after,
        "mean_abs_gap": float(event.gap.mean_abs),
        "mean_signed_gap": float(event.gap.mean_signed),
        "gap_one_directional": bool(event.gap.one_directional),
        "recommendation": event.recommendation.value,
        "previous_lr_weight_adjustment": float(event.previous_lr_weight_adjustment),
        "lr_weight_adjustment": float(event.lr_weight_adjustment),
    }


def fraud_alert_record(
    source: str,
    source_event: Mapping[str, Any],
    score: float,
    reasons: Sequence[tuple[str, float]],
    now: datetime,
    kind: str = "fraud-alert",
    **subject: Any,
) -> dict[str, Any]:
    """A FraudAlert with a deterministic id (the case id analysts label)."""
    event_id = output_event_id(kind, source_event["event_id"])
    return {
        "event_id": event_id,
        "tenant_id": source_event["tenant_id"],
        "occurred_at": now,
        "schema_version": 1,
        "alert_id": f"alert-{event_id}",
        "source": source,
        "source_event_id": source_event["event_id"],
        "severity": alert_severity(score),
        "score": float(score),
        "reasons": [{"code": code, "contribution": float(c)} for code, c in reasons],
        "customer_id": subject.get("customer_id"),
        "card_masked": subject.get("card_masked"),
        "device_ref": subject.get("device_ref"),
        "blacklist_entry_id": subject.get("blacklist_entry_id"),
    }


def behaviour_record(
    txn: Mapping[str, Any], risk: float, now: datetime, why: str = "behaviour"
) -> dict[str, Any]:
    """A LoanServicing BEHAVIOUR_RISK event for the loan a transaction spends.

    `why` keeps the ids of different findings on one transaction apart.
    """
    return {
        "event_id": output_event_id(why, txn["event_id"]),
        "tenant_id": txn["tenant_id"],
        "occurred_at": now,
        "schema_version": 1,
        "loan_id": txn["loan_id"],
        "kind": "BEHAVIOUR_RISK",
        "holiday_start": None,
        "holiday_end": None,
        "collateral_value_minor": None,
        "currency": None,
        "guarantor_id": None,
        "behaviour_risk": float(risk),
    }


def escalation_record(escalation: Escalation, now: datetime) -> dict[str, Any]:
    """The Avro-native DelinquencyEscalation record (schemas/delinquency_escalation.avsc)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (UTC)")
    record = escalation.to_dict()
    # The schema has no grading day: occurred_at is when the grade change was published.
    del record["as_of"]
    return {**record, "occurred_at": now, "schema_version": 1}


# Dead letters: the id is derived from (topic, partition, offset), so redelivering the same
# poison message yields the same dead-letter id. Reasons pass through scrub_text (library
# messages can echo field values). Originals longer than MAX_ORIGINAL_BYTES are cut to that
# prefix (the reason says so; the whole message stays at its source offset): a dead letter
# must fit where its producer's default limit (1 MB) allows.
DEAD_LETTER_NAMESPACE = uuid.UUID("6f1b7c1e-2d7e-4a43-9c55-0d1e8f3a9b21")
_MAX_REASON = 2000
MAX_ORIGINAL_BYTES = 256 * 1024


def dead_letter_record(
    source_topic: str,
    error: BaseException,
    value: bytes | None,
    key: bytes | None = None,
    partition: int | None = None,
    offset: int | None = None,
    tenant_id: str = "unknown",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Build the DeadLetter event (Avro-native dict) for a failed input."""
    identity = f"{source_topic}:{partition}:{offset}"
    if partition is None or offset is None:
        # Without a position, the bytes themselves identify the message.
        identity += ":" + (value or b"").hex()
    error_type = getattr(error, "error_type", None) or type(error).__name__
    reason = scrub_text(str(error) or error_type)[:_MAX_REASON]
    for what, original in (("key", key), ("value", value)):
        if original is not None and len(original) > MAX_ORIGINAL_BYTES:
            reason += (
                f" [original {what} cut to its first {MAX_ORIGINAL_BYTES} of "
                f"{len(original)} bytes; read it whole at the source offset]"
            )
    if key is not None:
        key = key[:MAX_ORIGINAL_BYTES]
    if value is not None:
        value = value[:MAX_ORIGINAL_BYTES]
    return {
        "event_id": str(uuid.uuid5(DEAD_LETTER_NAMESPACE, identity)),
        "tenant_id": tenant_id,
        "occurred_at": now or datetime.now(UTC),
        "schema_version": 1,
        "source_topic": source_topic,
        "source_partition": partition,
        "source_offset": offset,
        "original_key": key,
        "original_value": value,
        "error_type": error_type,
        "reason": reason,
    }
