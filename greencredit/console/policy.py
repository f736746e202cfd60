"""Maker-checker for lender policy: proposals of AHP judgements and thresholds, and their review.

A policy-maker's proposal is validated as the worker would validate it (``edit_config``) and
stored with its author, the version it edits and its CR. Nothing is published then. A
policy-approver who is not the author approves it: the proposal is validated again against
the lender's newest version (refused as stale if someone published meanwhile) and published
as the next config version, recording ``proposed_by`` and ``approved_by``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import db
from .auth import record_audit
from .lenders import EditedConfig, LenderBook, StaleVersion, edit_config

__all__ = ["NoSuchProposal", "ProposalClosed", "Proposals", "SelfApproval", "proposal_view"]


class NoSuchProposal(LookupError):
    """No proposal with that id among the caller's lenders."""


class ProposalClosed(ValueError):
    """The proposal was approved or rejected already."""


class SelfApproval(PermissionError):
    """The author of a proposal cannot approve it (four eyes)."""


def proposal_view(row: Any) -> dict[str, Any]:
    """A proposal as the API shows it."""
    return {
        "id": row.id,
        "tenant_id": row.tenant_id,
        "base_version": row.base_version,
        "matrices": row.event["matrices"],
        "thresholds": row.event["thresholds"],
        "cr_total": row.cr_total,
        "report": row.report,
        "proposed_by": row.proposed_by,
        "proposed_at": row.proposed_at.astimezone(UTC).isoformat(),
        "status": row.status,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.astimezone(UTC).isoformat() if row.decided_at else None,
        "published_version": row.published_version,
    }


class Proposals:
    """Policy proposals in PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        """Queries go through ``engine``."""
        self.engine = engine

    async def propose(
        self,
        book: LenderBook,
        tenant_id: str,
        base_version: Any,
        matrices: Any,
        thresholds: Any,
        author: str,
    ) -> Any:
        """Validate and store a proposal (JudgementsRefused / StaleVersion when it cannot be)."""
        now = datetime.now(UTC)
        edited = edit_config(
            book, tenant_id, base_version, matrices, now, thresholds, proposed_by=author
        )
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    sa.insert(db.proposals)
                    .values(
                        tenant_id=tenant_id,
                        base_version=base_version,
                        event={"matrices": matrices or {}, "thresholds": thresholds or {}},
                        cr_total=float(edited.report["cr_total"]),
                        report=edited.report,
                        proposed_by=author,
                        proposed_at=now,
                        status="pending",
                    )
                    .returning(db.proposals)
                )
            ).one()
            await record_audit(
                connection, author, "proposal", at=now, tenant_id=tenant_id,
                target=f"proposal-{row.id}",
                detail={"base_version": base_version, "cr_total": row.cr_total},
            )  # fmt: skip
        return row

    async def of_lenders(self, lenders: Collection[str], tenant_id: str | None = None) -> list[Any]:
        """Proposals of the caller's lenders (of one lender if given), newest first."""
        p = db.proposals.c
        query = sa.select(db.proposals).where(p.tenant_id.in_(list(lenders)))
        if tenant_id is not None:
            query = query.where(p.tenant_id == tenant_id)
        async with self.engine.connect() as connection:
            return list(await connection.execute(query.order_by(p.id.desc()).limit(100)))

    async def approve(
        self,
        proposal_id: int,
        lenders: Collection[str],
        approver: str,
        book: LenderBook,
        publish: Any,
    ) -> EditedConfig:
        """Publish the proposal as the next version (``await publish(event)``), recorded.

        The proposal row stays locked while it is published, so two approvers cannot both
        publish it.
        """
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            row = await _pending(connection, proposal_id, lenders)
            if row.proposed_by == approver:
                raise SelfApproval("a proposal must be approved by someone other than its author")
            try:
                edited = edit_config(
                    book,
                    row.tenant_id,
                    row.base_version,
                    row.event["matrices"],
                    now,
                    row.event["thresholds"],
                    proposed_by=row.proposed_by,
                    approved_by=approver,
                )
            except StaleVersion as exc:
                raise StaleVersion(f"{exc} (propose again from the newest version)") from None
            await publish(edited.event)
            await connection.execute(
                sa.update(db.proposals)
                .where(db.proposals.c.id == proposal_id)
                .values(
                    status="approved",
                    decided_by=approver,
                    decided_at=now,
                    published_version=edited.event["config_version"],
                )
            )
            await record_audit(
                connection, approver, "approval", at=now, tenant_id=row.tenant_id,
                target=f"proposal-{proposal_id}",
                detail={
                    "proposed_by": row.proposed_by,
                    "config_version": edited.event["config_version"],
                    "event_id": edited.event["event_id"],
                },
            )  # fmt: skip
        return edited

    async def reject(self, proposal_id: int, lenders: Collection[str], reviewer: str) -> None:
        """Close the proposal unpublished."""
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            row = await _pending(connection, proposal_id, lenders)
            await connection.execute(
                sa.update(db.proposals)
                .where(db.proposals.c.id == proposal_id)
                .values(status="rejected", decided_by=reviewer, decided_at=now)
            )
            await record_audit(
                connection, reviewer, "rejection", at=now, tenant_id=row.tenant_id,
                target=f"proposal-{proposal_id}", detail={"proposed_by": row.proposed_by},
            )  # fmt: skip


async def _pending(connection: AsyncConnection, proposal_id: int, lenders: Collection[str]) -> Any:
    row = (
        await connection.execute(
            sa.select(db.proposals)
            .where(db.proposals.c.id == proposal_id, db.proposals.c.tenant_id.in_(list(lenders)))
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        raise NoSuchProposal(f"no proposal {proposal_id}")
    if row.status != "pending":
        raise ProposalClosed(f"proposal {proposal_id} is {row.status} already")
    return row
