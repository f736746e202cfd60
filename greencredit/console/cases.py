"""The console's cases, pure: fraud alerts and review decisions as masked cases, and labels.

The cases are kept in PostgreSQL (store.py); this module only turns decoded events into
cases and labels into feedback events.

Everything kept is masked again here, defensively: the engine masks at egress, and the
console must never show raw PII even if an upstream bug let one through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from greencredit.streams.masking import mask_card, mask_record, scrub_text
from greencredit.streams.records import output_event_id

from .typology import typologies

__all__ = [
    "REVIEW_SEVERITY",
    "SEVERITIES",
    "SUBJECT_LABELS",
    "VERDICTS",
    "Case",
    "CaseLabel",
    "InvalidLabel",
    "analyst_id_checked",
    "case_from_alert",
    "case_from_review",
    "feedback_event_id",
    "feedback_label",
    "feedback_record",
    "labels_of",
]

REVIEW_SEVERITY = "REVIEW"
SEVERITIES: tuple[str, ...] = ("CRITICAL", "HIGH", "MEDIUM", "LOW", REVIEW_SEVERITY)
"""Alert severities, most urgent first; review cases carry ``REVIEW`` (no alert severity)."""

VERDICTS = ("fraud", "legitimate")
# What the engine learns from (agents/feedback.py): the transaction LR predicts fraud, the
# application LR predicts loss (default), so an application's "fraud" is its bad class,
# DEFAULTED, and "legitimate" its good class, REPAID. Device signals are not learned from;
# their label only closes the case.
SUBJECT_LABELS: Mapping[str, tuple[str, str]] = {
    "TRANSACTION": ("FRAUD", "NOT_FRAUD"),
    "APPLICATION": ("DEFAULTED", "REPAID"),
    "DEVICE_SIGNAL": ("FRAUD", "NOT_FRAUD"),
}
# What each alert source's source_event_id is (see agents/: transactions, applications, devices).
_ALERT_SUBJECT: Mapping[str, str] = {
    "TRANSACTION": "TRANSACTION",
    "GREEN_PURPOSE": "TRANSACTION",
    "APPLICATION": "APPLICATION",
    "FACE": "APPLICATION",
    "DEVICE_SIGNAL": "DEVICE_SIGNAL",
}
# Ids and pseudonyms are not personal data, and masking them would break joins: the free-
# text scrubber could mistake a run of hex digits for a card number.
_NOT_PII = frozenset(
    {
        "event_id",
        "source_event_id",
        "application_event_id",
        "alert_id",
        "prev_hash",
        "record_hash",
        "applicant_ref",
        "device_ref",
    }
)
_ANALYST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class InvalidLabel(ValueError):
    """A label request that cannot be turned into a feedback event; says why."""


@dataclass(frozen=True)
class CaseLabel:
    """How a case was closed: the feedback label, who gave it, when, and its event id."""

    label: str
    analyst_id: str
    labelled_at: datetime | None
    event_id: str


@dataclass(frozen=True)
class Case:
    """One alert or review case, masked, with its typologies and (once closed) its label."""

    case_id: str
    kind: str  # "alert" | "review"
    event_id: str
    tenant_id: str
    occurred_at: datetime
    source: str  # the alert's source, or "REVIEW"
    severity: str
    score: float
    reasons: tuple[tuple[str, float], ...]
    typologies: tuple[str, ...]
    subject_event_id: str
    subject_type: str | None  # None: the console cannot tell what to label (source OTHER)
    record: Mapping[str, Any]  # the masked alert / decision record
    label: CaseLabel | None = None

    @property
    def status(self) -> str:
        """``open`` until labelled, then ``closed``."""
        return "open" if self.label is None else "closed"


def _masked(record: Mapping[str, Any]) -> dict[str, Any]:
    masked = mask_record(dict(record))
    if not isinstance(masked, dict):  # mask_record keeps the container type
        raise TypeError("a record must decode to a mapping")
    return {key: value if key in _NOT_PII else _scrubbed(value) for key, value in masked.items()}


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, list):
        return [_scrubbed(item) for item in value]
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    return value


def _reasons(record: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
    return tuple((str(r["code"]), float(r["contribution"])) for r in record.get("reasons") or ())


def case_from_alert(event: Mapping[str, Any]) -> Case:
    """A case from a decoded FraudAlert; its case id is the alert id (schema contract)."""
    record = _masked(event)
    if record.get("card_masked"):
        record["card_masked"] = mask_card(str(record["card_masked"]))  # idempotent
    reasons = _reasons(record)
    return Case(
        case_id=str(record["alert_id"]),
        kind="alert",
        event_id=str(record["event_id"]),
        tenant_id=str(record["tenant_id"]),
        occurred_at=record["occurred_at"],
        source=str(record["source"]),
        severity=str(record["severity"]),
        score=float(record["score"]),
        reasons=reasons,
        typologies=typologies(reasons),
        subject_event_id=str(record["source_event_id"]),
        subject_type=_ALERT_SUBJECT.get(str(record["source"])),
        record=record,
    )


def case_from_review(event: Mapping[str, Any]) -> Case:
    """A case from a decoded ApplicationDecision on the reviews topic.

    The case id ``review-<application_id>`` is the one the demo and fraud ops use.
    """
    record = _masked(event)
    reasons = _reasons(record)
    return Case(
        case_id=f"review-{record['application_id']}",
        kind="review",
        event_id=str(record["event_id"]),
        tenant_id=str(record["tenant_id"]),
        occurred_at=record["occurred_at"],
        source=REVIEW_SEVERITY,
        severity=REVIEW_SEVERITY,
        score=float(record["score"]),
        reasons=reasons,
        typologies=typologies(reasons),
        subject_event_id=str(record["application_event_id"]),
        subject_type="APPLICATION",
        record=record,
    )


def feedback_label(case: Case, verdict: str) -> str:
    """The AnalystFeedback label for ``verdict`` ("fraud" / "legitimate") on this case."""
    if verdict not in VERDICTS:
        raise InvalidLabel(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    if case.subject_type is None:
        raise InvalidLabel(
            f"case {case.case_id}: alert source {case.source} names no event the engine "
            "scored, so it cannot be labelled here"
        )
    positive, negative = SUBJECT_LABELS[case.subject_type]
    return positive if verdict == "fraud" else negative


def feedback_event_id(case_id: str, label: str) -> str:
    """Deterministic per (case, label): a repeated click is the same event, learnt once."""
    return output_event_id("analyst-feedback", f"{case_id}:{label}")


def analyst_id_checked(raw: Any) -> str:
    """A staff id (letters, digits, ``._@-``, at most 64), never something that looks like PII."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidLabel("analyst_id is required (form field or X-Analyst-Id header)")
    value = raw.strip()
    if not _ANALYST_ID.fullmatch(value):
        raise InvalidLabel(
            "analyst_id must be a staff id: 1-64 letters, digits or . _ @ - (not a name)"
        )
    if scrub_text(value) != value:
        raise InvalidLabel(
            "analyst_id looks like a phone, card, ID number or e-mail; use a staff id"
        )
    return value


def feedback_record(case: Case, verdict: str, analyst_id: str, now: datetime) -> dict[str, Any]:
    """The AnalystFeedback event that labels ``case`` (Avro-native, ready to publish)."""
    label = feedback_label(case, verdict)
    return {
        "event_id": feedback_event_id(case.case_id, label),
        "tenant_id": case.tenant_id,
        "occurred_at": now.astimezone(UTC),
        "schema_version": 1,
        "subject_event_id": case.subject_event_id,
        "subject_type": case.subject_type,
        "label": label,
        "analyst_id": analyst_id_checked(analyst_id),
        "case_id": case.case_id,
    }


def labels_of(events: Iterable[Mapping[str, Any]]) -> list[tuple[str, CaseLabel]]:
    """(case key, label) for decoded AnalystFeedback events, as the engine keys them."""
    return [
        (
            str(event.get("case_id") or event["subject_event_id"]),
            CaseLabel(
                label=str(event["label"]),
                analyst_id=scrub_text(str(event["analyst_id"])),
                labelled_at=event.get("occurred_at"),
                event_id=str(event["event_id"]),
            ),
        )
        for event in events
    ]
