"""The console's case store: fraud alerts and review decisions as cases, pure and bounded.

Upstream delivery is at-least-once, so an event seen twice (same ``event_id``) is one case.
Cases are kept newest first by when the fact happened; past ``max_cases`` the oldest go.
A case closes once a label for it is seen (from this console or from the feedback topic);
a label read before its case (the topics are read side by side) closes the case on arrival.

Everything kept is masked again here, defensively: the engine masks at egress, and the
console must never show raw PII even if an upstream bug let one through.
"""

from __future__ import annotations

import bisect
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from greencredit.streams.masking import mask_card, mask_record, scrub_text
from greencredit.streams.records import output_event_id

from .typology import TYPOLOGIES, typologies

__all__ = [
    "REVIEW_SEVERITY",
    "SEVERITIES",
    "SUBJECT_LABELS",
    "VERDICTS",
    "Case",
    "CaseLabel",
    "CaseStore",
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


class CaseStore:
    """Bounded, de-duplicated cases, newest first; no I/O (the service feeds it)."""

    def __init__(self, max_cases: int) -> None:
        """Keep at most ``max_cases`` cases (the oldest are dropped first)."""
        if max_cases < 1:
            raise ValueError(f"max_cases must be >= 1, got {max_cases}")
        self.max_cases = max_cases
        self._cases: dict[str, Case] = {}
        self._order: list[tuple[datetime, str]] = []  # ascending occurred_at
        self._by_subject: dict[str, str] = {}
        # Remembered beyond the cases themselves, so a redelivery of an evicted event or a
        # label that arrives first is still recognised; bounded the same way.
        self._seen_events: OrderedDict[str, None] = OrderedDict()
        self._early_labels: OrderedDict[str, CaseLabel] = OrderedDict()

    def __len__(self) -> int:
        """Count the cases held."""
        return len(self._cases)

    def get(self, case_id: str) -> Case | None:
        """Return the case, or None if unknown (or evicted)."""
        return self._cases.get(case_id)

    def add(self, case: Case) -> bool:
        """Keep a new case; False for a redelivered event or a case id already held."""
        if case.event_id in self._seen_events or case.case_id in self._cases:
            return False
        _remember(self._seen_events, case.event_id, None, 4 * self.max_cases)
        if self._order and len(self._cases) >= self.max_cases and self._order[0] > _key(case):
            return False  # older than everything kept: it would be evicted at once
        early = self._early_labels.pop(case.case_id, None) or self._early_labels.pop(
            case.subject_event_id, None
        )
        if early is not None:
            case = replace(case, label=early)
        self._cases[case.case_id] = case
        self._by_subject[case.subject_event_id] = case.case_id
        bisect.insort(self._order, _key(case))
        while len(self._cases) > self.max_cases:
            _, oldest = self._order.pop(0)
            dropped = self._cases.pop(oldest)
            if self._by_subject.get(dropped.subject_event_id) == oldest:
                del self._by_subject[dropped.subject_event_id]
        return True

    def record_label(self, key: str, label: CaseLabel) -> Case | None:
        """Close the case ``key`` names (case id, else subject event id); first label wins.

        Returns the closed case, or None when the case is not held yet (the label is then
        remembered and applied when the case arrives).
        """
        case_id = key if key in self._cases else self._by_subject.get(key)
        if case_id is None:
            _remember(self._early_labels, key, label, self.max_cases)
            return None
        case = self._cases[case_id]
        if case.label is None:
            case = self._cases[case_id] = replace(case, label=label)
        return case

    def query(
        self,
        *,
        lender: str | None = None,
        severity: str | None = None,
        typology: str | None = None,
        status: str | None = None,
        limit: int = 200,
    ) -> list[Case]:
        """Cases matching every given filter, newest first, at most ``limit``."""
        found: list[Case] = []
        for _, case_id in reversed(self._order):
            case = self._cases[case_id]
            if (
                (lender is None or case.tenant_id == lender)
                and (severity is None or case.severity == severity)
                and (typology is None or typology in case.typologies)
                and (status is None or case.status == status)
            ):
                found.append(case)
                if len(found) >= limit:
                    break
        return found

    def facets(self) -> dict[str, list[str]]:
        """Lenders and typologies present (for the filter menus), and every severity."""
        cases = self._cases.values()
        present = {name for case in cases for name in case.typologies}
        return {
            "lenders": sorted({case.tenant_id for case in cases}),
            "severities": list(SEVERITIES),
            "typologies": [name for name in TYPOLOGIES if name in present],
        }

    def counts(self) -> dict[str, int]:
        """Open and closed cases held."""
        closed = sum(1 for case in self._cases.values() if case.label is not None)
        return {"open": len(self._cases) - closed, "closed": closed}


def _key(case: Case) -> tuple[datetime, str]:
    return (case.occurred_at, case.case_id)


def _remember(memory: OrderedDict[str, Any], key: str, value: Any, bound: int) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > bound:
        memory.popitem(last=False)


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
