"""Output records built from scoring results: deterministic ids, pseudonyms, no raw PII.

Ids are UUIDv5 of the input event id, so reprocessing an input (at-least-once delivery,
a restarted worker) yields the same output ids and consumers can de-duplicate.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from greencredit.models.decision import DisbursementTerms
from greencredit.models.monitoring import ModelHealthEvent
from greencredit.models.scoring import ScoredApplication

from .masking import mask_card, pseudonym

__all__ = [
    "OUTPUT_NAMESPACE",
    "decision_record",
    "disbursement_record",
    "model_health_record",
    "output_event_id",
]

OUTPUT_NAMESPACE = uuid.UUID("2b4b8f0e-6a57-4c1e-9d0f-7f3c1a5e9b42")


def output_event_id(kind: str, source_event_id: str) -> str:
    """Deterministic id of the `kind` output derived from one input event."""
    return str(uuid.uuid5(OUTPUT_NAMESPACE, f"{kind}:{source_event_id}"))


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
