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

from greencredit.models.scoring import ScoredApplication

from .masking import pseudonym

__all__ = ["OUTPUT_NAMESPACE", "decision_record", "output_event_id"]

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
        "schema_version": 1,
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
        "applicant_ref": pseudonym(application["applicant"]["id_card_number"], pii_key, "id"),
    }
