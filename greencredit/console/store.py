"""Cases in PostgreSQL: ingestion by event id, the analysts' work on them, and its timeline.

Upstream delivery is at-least-once and the console re-reads the topics from their start on
every restart, so ingestion is idempotent: a case is keyed by its case id and unique by its
event id (``ON CONFLICT DO NOTHING``), a feedback label by its event id. A label read before
its case (the topics are read side by side) is kept and closes the case when it arrives.

Every change an analyst makes is one transaction that updates the case, appends a timeline
entry with the signed-in user and the time, and writes the audit row where the action is
audited. Reads are always scoped to the caller's lenders: a case of another lender is, to
the caller, a case that does not exist.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from greencredit.streams.jsonform import to_json_form
from greencredit.streams.masking import scrub_text

from . import db
from .auth import record_audit
from .cases import SEVERITIES, SUBJECT_LABELS, Case, CaseLabel
from .typology import TYPOLOGIES

__all__ = [
    "RESOLUTIONS",
    "STATUSES",
    "CaseConflict",
    "CaseStore",
    "NoSuchCase",
    "case_detail",
    "case_summary",
]

STATUSES = ("open", "in_progress", "closed")
# Why a case was closed without a label; a label closes it with the label as resolution.
RESOLUTIONS = ("duplicate", "no_action_needed", "escalated_outside")
ENGINE = "engine"  # the actor of what the console reads from the topics
_COMMENT_MAX = 4000


class NoSuchCase(LookupError):
    """No case with that id among the caller's lenders (or at all: the caller cannot tell)."""


class CaseConflict(ValueError):
    """The change does not fit the case's state (e.g. closing a closed case)."""


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def case_summary(row: Any) -> dict[str, Any]:
    """What the case list shows: masked, small."""
    record = row.record
    return {
        "case_id": row.case_id,
        "kind": row.kind,
        "source": row.source,
        "tenant_id": row.tenant_id,
        "severity": row.severity,
        "score": row.score,
        "typology": row.typologies[0],
        "typologies": list(row.typologies),
        # The list shows what fired; "<INDICATOR>_NOT_PROVIDED" codes are in the case view.
        "reasons": [r for r in row.reasons if not r["code"].endswith("_NOT_PROVIDED")][:3],
        "occurred_at": _iso(row.occurred_at),
        "status": row.status,
        "resolution": row.resolution,
        "owner": row.owner,
        "label": row.label,
        "customer_id": record.get("customer_id"),
        "card_masked": record.get("card_masked"),
        "device_ref": record.get("device_ref"),
    }


def case_detail(row: Any, timeline: list[dict[str, Any]]) -> dict[str, Any]:
    """The case view: every reason, the subject to label, the record, the timeline."""
    labels = SUBJECT_LABELS.get(row.subject_type or "")
    return {
        **case_summary(row),
        "reasons": list(row.reasons),
        "subject_event_id": row.subject_event_id,
        "subject_type": row.subject_type,
        "labels": {"fraud": labels[0], "legitimate": labels[1]} if labels else None,
        "labelled": (
            {
                "label": row.label,
                "analyst_id": row.labelled_by,
                "labelled_at": _iso(row.labelled_at),
                "event_id": row.label_event_id,
            }
            if row.label
            else None
        ),
        "record": row.record,
        "timeline": timeline,
    }


def as_case(row: Any) -> Case:
    """The pure Case (cases.py) of a row, for building its feedback event."""
    return Case(
        case_id=row.case_id,
        kind=row.kind,
        event_id=row.event_id,
        tenant_id=row.tenant_id,
        occurred_at=row.occurred_at,
        source=row.source,
        severity=row.severity,
        score=row.score,
        reasons=tuple((r["code"], r["contribution"]) for r in row.reasons),
        typologies=tuple(row.typologies),
        subject_event_id=row.subject_event_id,
        subject_type=row.subject_type,
        record=row.record,
        label=(
            CaseLabel(row.label, row.labelled_by, row.labelled_at, row.label_event_id)
            if row.label
            else None
        ),
    )


class CaseStore:
    """The console's cases in PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        """Queries go through ``engine`` (async, asyncpg)."""
        self.engine = engine

    # -- ingestion (the Kafka reader) ------------------------------------------------
    async def ingest_case(self, case: Case) -> bool:
        """Keep a new case; False for a redelivered event or a case id already held."""
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            inserted = await connection.scalar(
                insert(db.cases)
                .values(
                    case_id=case.case_id,
                    event_id=case.event_id,
                    tenant_id=case.tenant_id,
                    kind=case.kind,
                    occurred_at=case.occurred_at,
                    source=case.source,
                    severity=case.severity,
                    score=case.score,
                    typologies=list(case.typologies),
                    subject_event_id=case.subject_event_id,
                    subject_type=case.subject_type,
                    reasons=[{"code": c, "contribution": v} for c, v in case.reasons],
                    record=to_json_form(None, dict(case.record)),
                    status="open",
                    ingested_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing()
                .returning(db.cases.c.case_id)
            )
            if inserted is None:
                return False
            await _timeline(
                connection, case.case_id, ENGINE, "opened", now, {"source": case.source}
            )
            early = (
                await connection.execute(
                    sa.select(db.feedback)
                    .where(db.feedback.c.case_key.in_((case.case_id, case.subject_event_id)))
                    .order_by(db.feedback.c.labelled_at)
                    .limit(1)
                )
            ).one_or_none()
            if early is not None:
                await _close_labelled(
                    connection,
                    case.case_id,
                    CaseLabel(early.label, early.analyst_id, early.labelled_at, early.event_id),
                    now,
                )
        return True

    async def ingest_label(self, key: str, label: CaseLabel) -> bool:
        """Record a feedback label read from the topic; close its case if held. Idempotent."""
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            inserted = await connection.scalar(
                _insert_feedback(key, label).returning(db.feedback.c.event_id)
            )
            if inserted is None:
                return False
            case_id = await connection.scalar(
                sa.select(db.cases.c.case_id)
                .where(sa.or_(db.cases.c.case_id == key, db.cases.c.subject_event_id == key))
                .limit(1)
            )
            if case_id is not None:
                await _close_labelled(connection, case_id, label, now)
        return True

    # -- reads -----------------------------------------------------------------------
    async def query(
        self,
        lenders: Collection[str],
        *,
        lender: str | None = None,
        severity: str | None = None,
        typology: str | None = None,
        status: str | None = None,
        owner: str | None = None,
        limit: int = 200,
    ) -> list[Any]:
        """The caller's cases matching every given filter, newest first, at most ``limit``."""
        c = db.cases.c
        where: list[sa.ColumnElement[bool]] = [c.tenant_id.in_(list(lenders))]
        if lender is not None:
            where.append(c.tenant_id == lender)
        if severity is not None:
            where.append(c.severity == severity)
        if typology is not None:
            where.append(sa.literal(typology) == sa.any_(c.typologies))
        if status == "active":
            where.append(c.status != "closed")
        elif status is not None:
            where.append(c.status == status)
        if owner is not None:
            where.append(c.owner == owner)
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                sa.select(db.cases)
                .where(*where)
                .order_by(c.occurred_at.desc(), c.case_id.desc())
                .limit(limit)
            )
            return list(rows)

    async def facets(self, lenders: Collection[str]) -> dict[str, list[str]]:
        """Lenders and typologies present among the caller's cases, and every severity."""
        c = db.cases.c
        async with self.engine.connect() as connection:
            present_lenders = await connection.scalars(
                sa.select(c.tenant_id).where(c.tenant_id.in_(list(lenders))).distinct()
            )
            present = await connection.scalars(
                sa.select(sa.func.unnest(c.typologies))
                .where(c.tenant_id.in_(list(lenders)))
                .distinct()
            )
            lender_list, typology_set = sorted(present_lenders), set(present)
        return {
            "lenders": lender_list,
            "severities": list(SEVERITIES),
            "typologies": [name for name in TYPOLOGIES if name in typology_set],
        }

    async def counts(self, lenders: Collection[str]) -> dict[str, int]:
        """Cases per status among the caller's lenders."""
        c = db.cases.c
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                sa.select(c.status, sa.func.count())
                .where(c.tenant_id.in_(list(lenders)))
                .group_by(c.status)
            )
            found = {row[0]: int(row[1]) for row in rows}
        return {status: found.get(status, 0) for status in STATUSES}

    async def get(self, case_id: str, lenders: Collection[str]) -> Any:
        """The case row; NoSuchCase when unknown or not one of the caller's lenders."""
        async with self.engine.connect() as connection:
            return await _row(connection, case_id, lenders)

    async def timeline(self, case_id: str) -> list[dict[str, Any]]:
        """What happened to the case, oldest first."""
        e = db.case_events.c
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                sa.select(db.case_events).where(e.case_id == case_id).order_by(e.id)
            )
            return [
                {"at": _iso(r.at), "actor": r.actor, "action": r.action, "detail": r.detail}
                for r in rows
            ]

    # -- the analysts' work ------------------------------------------------------------
    async def assign(
        self, case_id: str, lenders: Collection[str], owner: str | None, actor: str
    ) -> None:
        """Set (or clear) the case's owner."""
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            row = await _row(connection, case_id, lenders, for_update=True)
            await _update(connection, case_id, now, owner=owner)
            detail = {"owner": owner, "previous": row.owner}
            await _timeline(connection, case_id, actor, "assigned", now, detail)
            await record_audit(
                connection, actor, "assignment", at=now, tenant_id=row.tenant_id,
                target=case_id, detail=detail,
            )  # fmt: skip

    async def set_status(
        self,
        case_id: str,
        lenders: Collection[str],
        status: str,
        resolution: str | None,
        actor: str,
    ) -> None:
        """Move the case to ``status``; closing needs a resolution, reopening clears it."""
        if status not in STATUSES:
            raise CaseConflict(f"status must be one of {', '.join(STATUSES)}")
        if status == "closed" and resolution not in RESOLUTIONS:
            raise CaseConflict(
                "closing without a label needs a resolution: one of " + ", ".join(RESOLUTIONS)
            )
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            row = await _row(connection, case_id, lenders, for_update=True)
            if row.status == status:
                raise CaseConflict(f"case {case_id!r} is {status} already")
            values: dict[str, Any] = {"status": status}
            if status == "closed":
                values["resolution"] = resolution
            elif row.status == "closed":
                values["resolution"] = None
            if status == "in_progress" and row.owner is None:
                values["owner"] = actor  # starting work on an unowned case takes it
            await _update(connection, case_id, now, **values)
            action = "reopened" if row.status == "closed" else "status"
            detail = {"status": status, "previous": row.status, "resolution": resolution}
            await _timeline(connection, case_id, actor, action, now, detail)
            if action == "reopened":
                await record_audit(
                    connection, actor, "reopen", at=now, tenant_id=row.tenant_id,
                    target=case_id, detail=detail,
                )  # fmt: skip

    async def comment(self, case_id: str, lenders: Collection[str], text: str, actor: str) -> None:
        """Add a comment to the timeline; it is masked (no PII in free text)."""
        body = scrub_text(text.strip())
        if not body or len(body) > _COMMENT_MAX:
            raise CaseConflict(f"a comment is 1-{_COMMENT_MAX} characters")
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            await _row(connection, case_id, lenders)
            await _update(connection, case_id, now)
            await _timeline(connection, case_id, actor, "comment", now, {"text": body})

    async def record_label(
        self, case_id: str, label: CaseLabel, actor: str, *, published: bool
    ) -> None:
        """The signed-in analyst's label, published: close the case, timeline and audit."""
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            row = await _row(connection, case_id, None, for_update=True)
            await connection.execute(_insert_feedback(case_id, label))
            if row.label is None:
                await _close_labelled(connection, case_id, label, now)
            await record_audit(
                connection, actor, "label", at=now, tenant_id=row.tenant_id, target=case_id,
                detail={"label": label.label, "event_id": label.event_id, "published": published},
            )  # fmt: skip


async def _row(
    connection: AsyncConnection,
    case_id: str,
    lenders: Collection[str] | None,
    *,
    for_update: bool = False,
) -> Any:
    query = sa.select(db.cases).where(db.cases.c.case_id == case_id)
    if lenders is not None:
        query = query.where(db.cases.c.tenant_id.in_(list(lenders)))
    if for_update:
        query = query.with_for_update()
    row = (await connection.execute(query)).one_or_none()
    if row is None:
        raise NoSuchCase(f"no case {case_id!r}")
    return row


async def _update(connection: AsyncConnection, case_id: str, now: datetime, **values: Any) -> None:
    await connection.execute(
        sa.update(db.cases).where(db.cases.c.case_id == case_id).values(updated_at=now, **values)
    )


async def _timeline(
    connection: AsyncConnection,
    case_id: str,
    actor: str,
    action: str,
    at: datetime,
    detail: Mapping[str, Any],
) -> None:
    await connection.execute(
        sa.insert(db.case_events).values(
            case_id=case_id, actor=actor, action=action, at=at, detail=dict(detail)
        )
    )


async def _close_labelled(
    connection: AsyncConnection, case_id: str, label: CaseLabel, now: datetime
) -> None:
    """First label wins; the case closes with the label as its resolution."""
    closed = await connection.scalar(
        sa.update(db.cases)
        .where(db.cases.c.case_id == case_id, db.cases.c.label.is_(None))
        .values(
            label=label.label,
            label_event_id=label.event_id,
            labelled_by=label.analyst_id,
            labelled_at=label.labelled_at,
            status="closed",
            resolution=label.label,
            updated_at=now,
        )
        .returning(db.cases.c.case_id)
    )
    if closed is not None:
        await _timeline(
            connection,
            case_id,
            label.analyst_id,
            "labelled",
            now,
            {"label": label.label, "event_id": label.event_id},
        )


def _insert_feedback(key: str, label: CaseLabel) -> Insert:
    """Insert a label once per feedback event (a replayed event inserts nothing)."""
    return (
        insert(db.feedback)
        .values(
            event_id=label.event_id,
            case_key=key,
            label=label.label,
            analyst_id=label.analyst_id,
            labelled_at=label.labelled_at,
        )
        .on_conflict_do_nothing()
    )
