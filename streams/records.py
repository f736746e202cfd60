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

from greencredit.models.monitoring import ModelHealthEvent
from greencredit.models.scoring import ScoredApplication

from .masking import pseudonym

__all__ = ["OUTPUT_NAMESPACE", "decision_record", "model_health_record", "output_event_id"]

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
