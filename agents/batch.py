"""What a processed batch leaves to do: outputs to send, then Redis bookkeeping.

The order is the at-least-once contract: send every output and wait for the acks, and
only then mark inputs done (so a crash in between replays the batch, and the replay
re-sends the same deterministic ids instead of losing anything).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import faust

from greencredit.infra.engine_store import Disbursed
from greencredit.infra.loan_store import LoanOpening
from greencredit.infra.stores import EngineStateStore, LoanStoreProtocol
from greencredit.streams.audit import GENESIS_HASH
from greencredit.streams.topics import DISBURSEMENTS, LOAN_OPENINGS

from .messages import Incoming, Outgoing
from .resources import Resources
from .retry import RedisUnavailable, Retry
from .sink import Sink

__all__ = [
    "BatchResult",
    "Bookkeeping",
    "Emit",
    "finish_batch",
    "incoming_from_events",
    "record_acknowledged",
]

log = logging.getLogger(__name__)
# The loan-openings topic is not chained (the disbursements topic holds the audited copy).
_UNCHAINED = {"prev_hash": GENESIS_HASH, "record_hash": GENESIS_HASH}


@dataclass
class BatchResult:
    """Outputs of one batch and the state to record once they are acknowledged."""

    outputs: list[Outgoing] = field(default_factory=list)
    done_event_ids: list[str] = field(default_factory=list)
    disbursed: list[Disbursed] = field(default_factory=list)
    # Loans the batch's disbursements open, once the broker acknowledged them.
    opened_loans: list[LoanOpening] = field(default_factory=list)
    scored: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> pending entry
    # Input event id -> its occurred_at, for the decision-latency metric (no second decode).
    occurred_at: dict[str, datetime] = field(default_factory=dict)
    # Work that must wait for the broker's acks (e.g. clearing a loan's escalation outbox).
    after_emit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


# Encode, produce and await the broker's acks (Engine.emit): the runtime's side, not a store.
Emit = Callable[[Sequence[Outgoing], Sink], Awaitable[None]]


@dataclass(frozen=True)
class Bookkeeping:
    """What recording a batch's outcomes after the acks uses: the state and loan stores."""

    retry: Retry
    state: EngineStateStore
    loans: LoanStoreProtocol

    @classmethod
    def of(cls, resources: Resources) -> Bookkeeping:
        """The worker's part for bookkeeping."""
        return cls(resources.retry, resources.state, resources.loans)


async def finish_batch(
    emit: Emit,
    books: Bookkeeping,
    result: BatchResult,
    sink: Sink,
    on_acked: Callable[[BatchResult], None] | None = None,
) -> None:
    """Send, await acks, then open loans, record done markers, disbursements and labels."""
    await emit(result.outputs, sink)
    if on_acked is not None:
        on_acked(result)  # metrics: the moment the broker acknowledged the outputs
    try:
        await record_acknowledged(books, result)
    except RedisUnavailable as exc:
        # Money went out but Redis cannot open its loans now: hand them to the loan-openings
        # topic (acknowledged before this batch counts as processed), whose agent opens
        # them once Redis answers, so the applications go on (scored blind meanwhile).
        log.error("loans of %d disbursements deferred: %s", len(result.disbursed), exc)
        deferred = [
            Outgoing(LOAN_OPENINGS.name, o.key, {**o.record, **_UNCHAINED})
            for o in result.outputs
            if o.topic == DISBURSEMENTS.name
        ]
        await emit(deferred, sink)


async def record_acknowledged(books: Bookkeeping, result: BatchResult) -> None:
    """What follows the broker's acks: after-emit steps, loans opened, outcomes recorded."""
    for task in result.after_emit:
        try:
            await task()
        except (RedisUnavailable, OSError) as exc:
            # Left in place, the work is redone by the next event (same ids): nothing lost.
            log.error("after-emit step failed: %s", type(exc).__name__)
    if result.disbursed:
        # Money went out: its loans open before the claims are marked sent and the inputs
        # done. RedisUnavailable propagates (see finish_batch); a crash part way leaves the
        # claims pending, and the redelivery sends the same records and opens the same loans.
        await _open_loans(books, result)
        return
    if not (result.scored or result.done_event_ids):
        return
    try:
        await _record_outcomes(books, result)
    except RedisUnavailable as exc:
        # Outputs are out and acknowledged; without the markers a redelivery re-sends the
        # same ids (consumers de-duplicate). Nothing is lost.
        log.error("bookkeeping after emit failed: %s", exc)


async def _record_outcomes(books: Bookkeeping, result: BatchResult) -> None:
    await books.retry(
        "record_outcomes",
        lambda: books.state.record_outcomes(result.disbursed, result.scored, result.done_event_ids),
    )


async def _open_loans(books: Bookkeeping, result: BatchResult) -> None:
    # Opened (idempotently) before the claims are marked sent: see record_outcomes.
    await books.retry("open_loans", lambda: books.loans.open(result.opened_loans))
    await _record_outcomes(books, result)


def incoming_from_events(events: Sequence[faust.EventT]) -> list[Incoming]:
    """Raw messages (topic, partition, offset, key, value) of a Faust batch."""
    out = []
    for event in events:
        message = event.message
        out.append(
            Incoming(message.topic, message.partition, message.offset, message.key, message.value)
        )
    return out
