"""What a processed batch leaves to do: outputs to send, then Redis bookkeeping.

The order is the at-least-once contract: send every output and wait for the acks, and
only then mark inputs done (so a crash in between replays the batch, and the replay
re-sends the same deterministic ids instead of losing anything).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import faust

from greencredit.infra.engine_store import Disbursed
from greencredit.infra.loan_store import LoanOpening

from .engine import Engine, Incoming, Outgoing, RedisUnavailable
from .sink import Sink

__all__ = ["BatchResult", "finish_batch", "incoming_from_events", "record_acknowledged"]

log = logging.getLogger(__name__)
_REDIS_WAIT_CAP_S = 30.0  # longest pause between tries while Redis is down


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


async def finish_batch(
    engine: Engine,
    result: BatchResult,
    sink: Sink,
    on_acked: Callable[[BatchResult], None] | None = None,
) -> None:
    """Send, await acks, then record done markers, disbursements and pending labels."""
    await engine.emit(result.outputs, sink)
    if on_acked is not None:
        on_acked(result)  # metrics: the moment the broker acknowledged the outputs
    await record_acknowledged(engine, result)


async def record_acknowledged(engine: Engine, result: BatchResult) -> None:
    """What follows the broker's acks: after-emit steps, loans opened, outcomes recorded."""
    for task in result.after_emit:
        try:
            await task()
        except (RedisUnavailable, OSError) as exc:
            # Left in place, the work is redone by the next event (same ids): nothing lost.
            log.error("after-emit step failed: %s", type(exc).__name__)
    if result.disbursed:
        # Money went out: its loans must open before the inputs count as done. Wait out a
        # Redis outage here rather than re-send: a crash meanwhile leaves the claims
        # pending, and the redelivery sends the same records and opens the same loans.
        await _until_redis_answers(engine, "open_loans", partial(_open_loans, engine, result))
        return
    if not (result.scored or result.done_event_ids):
        return
    try:
        await _record_outcomes(engine, result)
    except RedisUnavailable as exc:
        # Outputs are out and acknowledged; without the markers a redelivery re-sends the
        # same ids (consumers de-duplicate). Nothing is lost.
        log.error("bookkeeping after emit failed: %s", exc)


async def _record_outcomes(engine: Engine, result: BatchResult) -> None:
    await engine.with_retry(
        "record_outcomes",
        lambda: engine.store.record_outcomes(
            result.disbursed, result.scored, result.done_event_ids
        ),
    )


async def _open_loans(engine: Engine, result: BatchResult) -> None:
    # Opened (idempotently) before the claims are marked sent: see record_outcomes.
    await engine.with_retry("open_loans", lambda: engine.loans.open(result.opened_loans))
    await _record_outcomes(engine, result)


async def _until_redis_answers(
    engine: Engine, what: str, call: Callable[[], Awaitable[None]]
) -> None:
    delay = engine.settings.redis_retry_base_s
    while True:
        try:
            await call()
            return
        except RedisUnavailable as exc:
            log.error("%s waits for redis (%s), next try in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _REDIS_WAIT_CAP_S)


def incoming_from_events(events: Sequence[faust.EventT]) -> list[Incoming]:
    """Raw messages (topic, partition, offset, key, value) of a Faust batch."""
    out = []
    for event in events:
        message = event.message
        out.append(
            Incoming(message.topic, message.partition, message.offset, message.key, message.value)
        )
    return out
