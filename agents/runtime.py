"""The loop every agent runs: take a batch, process it, emit, and never die on bad input.

A processing bug in one batch must not stop the stream or lose the events: the batch's
raw messages go to the dead-letter topic with the error, and the agent moves on. Emitting
retries with backoff (the broker may be rebalancing) before it gives up the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import faust
from redis.exceptions import RedisError

from greencredit.models.monitoring import snapshot
from greencredit.settings import Settings
from greencredit.streams import topics
from greencredit.streams.masking import scrub_text

from .batch import BatchResult, finish_batch, incoming_from_events
from .engine import Engine
from .heap import settle_heap
from .messages import Incoming, Outgoing, dead_letter
from .metrics import EngineMetrics
from .resources import Resources
from .retry import RedisUnavailable
from .sink import KafkaSink

__all__ = ["BoundProcessor", "Processor", "Runtime"]

log = logging.getLogger(__name__)

D = TypeVar("D")
# A processor takes its own dependency object (built from the worker's Resources) and a batch.
Processor = Callable[[D, Sequence[Incoming]], Awaitable[BatchResult]]
# A processor with its dependencies given: what the agent loop runs for each batch.
BoundProcessor = Callable[[Sequence[Incoming]], Awaitable[BatchResult]]
_EMIT_ATTEMPTS = 4
_REDIS_WAIT_CAP_S = 30.0  # longest pause between tries of a batch while Redis is down
_TICK_NAMESPACE = uuid.UUID("5e8d2c4b-1a3f-4e6d-9b7c-0f2e4d6a8c1b")


class Runtime:
    """Lazily built engine plus the agent loop; one per worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sink: KafkaSink | None = None
        self._engine: Engine | None = None
        self._lock = asyncio.Lock()
        self.processed_by_topic: Counter[str] = Counter()  # finished and emitted, per topic
        # "topic:partition" -> the offset after the last message this worker finished
        # (emitted or dead-lettered). Unlike the counts, these stay true when partitions move
        # to another worker or this one dies: a driver merges them over workers by max.
        self.finished_offsets: dict[str, int] = {}
        self.dead_lettered = 0
        self.metrics = EngineMetrics(self.monitoring_snapshot)
        # A worker waits for its first assignment like for any other rebalance.
        self.awaiting_assignment = True
        self._rebalance_since: float | None = time.monotonic()

    @property
    def processed(self) -> int:
        """Input messages finished (processed and their outputs acknowledged)."""
        return self.processed_by_topic.total()

    async def engine(self) -> Engine:
        """The worker's engine, created and started on first use."""
        async with self._lock:
            if self._engine is None:
                engine = Engine.create(self.settings)
                await engine.start()
                self._sink = KafkaSink(engine.kafka_config)
                self._engine = engine
                # The long-lived objects exist now: out of the collector's way (heap.py).
                settle_heap(self.settings.worker_gc_young_threshold)
            return self._engine

    async def daily_tick(self) -> None:
        """Publish today's loan-ageing tick once per day across all workers (SET NX)."""
        engine = await self.engine()
        today = datetime.now(ZoneInfo(self.settings.local_timezone)).date()
        try:
            first = await engine.resources.state.mark_tick(today.isoformat())
        except (RedisError, OSError):
            return  # try again at the next poll
        if not first:
            return
        tick = {
            "event_id": str(uuid.uuid5(_TICK_NAMESPACE, today.isoformat())),
            "tenant_id": "*",
            "occurred_at": datetime.now(UTC),
            "schema_version": 1,
            "as_of": today,
        }
        await engine.emit(
            [Outgoing(topics.LOAN_CLOCK.name, today.isoformat(), tick)], self._require_sink()
        )

    def _require_sink(self) -> KafkaSink:
        if self._sink is None:
            raise RuntimeError("the engine was not started")
        return self._sink

    def monitoring_snapshot(self) -> dict[str, dict[str, Any]]:
        """Per-tenant model-monitoring metrics of this worker (empty before any scoring)."""
        if self._engine is None:
            return {}
        monitors = self._engine.resources.lenders.monitors
        return {tenant: snapshot(m) for tenant, m in monitors.items()}

    def on_rebalance(self) -> None:
        """Partitions moved: forget audit-chain heads (they are re-read from Kafka)."""
        self.awaiting_assignment = True
        if self._rebalance_since is None:
            self._rebalance_since = time.monotonic()
        if self._engine is not None:
            self._engine.forget_chain_heads()

    def on_assigned(self) -> None:
        """The group handed this worker its (possibly empty) share of the partitions."""
        self.awaiting_assignment = False

    def rebalancing_for(self, recovering: bool) -> float | None:
        """Seconds this worker has been in a rebalance, None when it is not in one.

        `recovering` is Faust's own flag: it stays up after the assignment until the
        assigned partitions are resumed, so a hang in that step counts as well.
        """
        if not (self.awaiting_assignment or recovering):
            self._rebalance_since = None
            return None
        if self._rebalance_since is None:
            self._rebalance_since = time.monotonic()
        return time.monotonic() - self._rebalance_since

    def attach(
        self,
        app: faust.App,
        channel: faust.TopicT,
        name: str,
        process: Processor[D],
        deps_of: Callable[[Resources], D],
        *,
        pipelined: bool = False,
        quiet: bool = False,
    ) -> None:
        """Register a Faust agent named `name` that runs `process` over `channel` in batches.

        `deps_of` picks the processor's dependencies from the worker's resources.
        `pipelined` processes the next batch while one is finishing (see `run`): for
        processors whose next batch does not read what finishing the last one writes,
        beyond the done markers `run` guards. `quiet` marks a low-volume stream, whose
        batches wait up to WORKER_QUIET_BATCH_WITHIN_S (an idle agent wakes that often).
        """
        settings = self.settings
        within = settings.worker_quiet_batch_within_s if quiet else settings.worker_batch_within_s

        async def agent(stream: faust.StreamT) -> None:
            await self.run(stream, process, deps_of, pipelined=pipelined, within=within)

        app.agent(channel, name=name)(agent)

    async def run(
        self,
        stream: faust.StreamT,
        process: Processor[D],
        deps_of: Callable[[Resources], D],
        *,
        pipelined: bool = False,
        within: float | None = None,
    ) -> None:
        """Consume `stream` in batches with `process` until the worker stops.

        A batch is taken when it holds WORKER_BATCH_SIZE events or `within` seconds passed
        (default WORKER_BATCH_WITHIN_S).

        Pipelined, batch N+1 is processed while batch N's outputs wait for the broker's acks
        and its bookkeeping is written, so the worker does not sit idle on those round
        trips (Faust's `take_events` holds the next batch back until N returned). At most
        one batch finishes at a time, in order (the audit chains and committed offsets stay
        in order), and a batch's offsets are acked only once its outputs are acknowledged
        and its bookkeeping done: at-least-once, as without pipelining.
        """
        size = self.settings.worker_batch_size
        within = within or self.settings.worker_batch_within_s
        bound: BoundProcessor | None = None
        finishing: _Finishing | None = None
        try:
            # noack_take leaves acking to us (_finish_and_ack); it is in faust-streaming's
            # Stream but not in its StreamT interface.
            async for events in stream.noack_take(size, within=within):  # type: ignore[attr-defined]
                engine = await self.engine()
                if bound is None:
                    # Once per agent: the engine (and its resources) is made on the first batch.
                    bound = partial(process, deps_of(engine.resources))
                finishing = await self._next(stream, events, engine, bound, finishing)
                if finishing is not None and not pipelined:
                    await finishing.task
                    finishing = None
        finally:
            if finishing is not None:
                # Stopping: let the batch in flight finish and ack (it is not cancelled).
                await asyncio.shield(finishing.task)
            if self._engine is not None:
                # Done markers waiting for the next batch's call would otherwise be lost at
                # a clean stop (harmless, but the restart would re-send those outputs).
                await self._engine.flush()

    async def _next(
        self,
        stream: faust.StreamT,
        events: Sequence[faust.EventT],
        engine: Engine,
        process: BoundProcessor,
        finishing: _Finishing | None,
    ) -> _Finishing | None:
        """Process a batch while `finishing` finishes; start finishing it (None if recovered)."""
        messages = incoming_from_events(events)
        self.metrics.consumed(messages)
        outcome = await self._try_process(messages, process)
        if finishing is not None and finishing.overlaps(outcome):
            # An event of the batch still finishing came again before its done marker was
            # written: let that batch finish, then process this one again (idempotent by
            # event id), so that the event is not sent twice.
            await finishing.task
            outcome = await self._try_process(messages, process)
        if finishing is not None:
            await finishing.task
        if not isinstance(outcome, BatchResult):
            await self._recover(engine, messages, process, outcome)
            await _ack(stream, events)
            self._finished(messages)
            return None
        task = asyncio.create_task(self._finish_and_ack(stream, events, engine, messages, outcome))
        return _Finishing(task, frozenset(outcome.done_event_ids))

    async def _finish_and_ack(
        self,
        stream: faust.StreamT,
        events: Sequence[faust.EventT],
        engine: Engine,
        messages: list[Incoming],
        result: BatchResult,
    ) -> None:
        """Emit and record a processed batch, then ack its offsets (never before)."""
        try:
            await self._complete(engine, messages, result)
        except Exception:  # _complete dead-letters what it cannot send: this is a bug
            log.exception("finishing a batch of %d failed", len(messages))
        await _ack(stream, events)
        self._finished(messages)

    def _finished(self, messages: Sequence[Incoming]) -> None:
        # handle() returns only once every message is emitted or dead-lettered.
        for message in messages:
            key = f"{message.topic}:{message.partition}"
            self.finished_offsets[key] = max(self.finished_offsets.get(key, 0), message.offset + 1)

    async def handle(
        self,
        engine: Engine,
        messages: list[Incoming],
        process: BoundProcessor,
        *,
        counted: bool = False,
    ) -> None:
        """One batch, start to end: process and emit, or dead-letter it if that keeps failing."""
        if not counted:
            self.metrics.consumed(messages)
        outcome = await self._try_process(messages, process)
        if isinstance(outcome, BatchResult):
            await self._complete(engine, messages, outcome)
        else:
            await self._recover(engine, messages, process, outcome)

    async def _try_process(
        self, messages: list[Incoming], process: BoundProcessor
    ) -> BatchResult | Exception:
        """The batch's result, or the error processing it raised (a bug must not stop us)."""
        try:
            return await self._process_while_redis_is_down(messages, process)
        except Exception as exc:
            return exc

    async def _recover(
        self, engine: Engine, messages: list[Incoming], process: BoundProcessor, exc: Exception
    ) -> None:
        """A batch whose processing failed: one by one, so only the culprit is dead-lettered."""
        if len(messages) > 1:
            # One bad message must not take the good ones of its batch with it: retry one by
            # one (inputs are idempotent by event id), so only the culprit fails.
            log.warning(
                "batch of %d failed (%s): retrying one by one", len(messages), type(exc).__name__
            )
            for message in messages:
                await self.handle(engine, [message], process, counted=True)
            return
        log.error("processing failed for 1 message", exc_info=exc)
        await self._dead_letter_all(engine, messages, exc)

    async def _complete(
        self, engine: Engine, messages: list[Incoming], result: BatchResult
    ) -> None:
        """Emit a processed batch and record it, retrying; dead-letter it if that keeps failing."""
        delay = 0.2
        for attempt in range(1, _EMIT_ATTEMPTS + 1):
            try:
                await finish_batch(
                    engine.emit,
                    engine.books,
                    result,
                    self._require_sink(),
                    lambda done: self._count_emitted(done.outputs, done.occurred_at),
                )
                self.processed_by_topic.update(m.topic for m in messages)
                self.dead_lettered += sum(
                    o.topic == topics.DEAD_LETTER.name for o in result.outputs
                )
                return
            except Exception as exc:
                if attempt == _EMIT_ATTEMPTS:
                    log.error("emit failed %d times: %s", attempt, scrub_text(str(exc)))
                    await self._dead_letter_all(engine, messages, exc)
                    return
                await asyncio.sleep(delay)
                delay *= 2

    async def _process_while_redis_is_down(
        self, messages: list[Incoming], process: BoundProcessor
    ) -> BatchResult:
        """Run `process`, waiting out a Redis outage instead of failing the batch.

        RedisUnavailable reaches here only from steps that must not guess (the disbursement
        claim, funder reservations): the events are fine, a dependency is not, so they are
        neither dead-lettered nor skipped. Processing is idempotent by event id, so the
        whole batch simply runs again once Redis answers; the stream waits meanwhile.
        """
        delay = self.settings.redis_retry_base_s
        while True:
            try:
                return await process(messages)
            except RedisUnavailable as exc:
                log.error(
                    "redis unavailable (%s): batch of %d waits %.1f s", exc, len(messages), delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _REDIS_WAIT_CAP_S)

    async def _dead_letter_all(
        self, engine: Engine, messages: list[Incoming], error: BaseException
    ) -> None:
        letters = [dead_letter(m, _ProcessingError(error)) for m in messages]
        try:
            await engine.emit(letters, self._require_sink())
            self.dead_lettered += len(letters)
            self._count_emitted(letters, {})
        except Exception:
            # Nothing left to try in-process: the offsets were not committed past these
            # messages by us, but Faust may have; the log line is the operator's cue.
            log.exception("could not dead-letter %d messages", len(messages))

    def _count_emitted(
        self, outputs: Sequence[Outgoing], occurred_at: Mapping[str, datetime]
    ) -> None:
        """Feed acknowledged outputs to the metrics; a metrics bug must not fail the batch."""
        try:
            self.metrics.emitted(outputs, datetime.now(UTC), occurred_at)
        except Exception:  # the outputs are out: re-sending them over a metric would be wrong
            log.exception("metrics update failed")


@dataclass(frozen=True)
class _Finishing:
    """The batch being emitted and recorded while the next one is processed."""

    task: asyncio.Task[None]
    done_event_ids: frozenset[str]

    def overlaps(self, outcome: BatchResult | Exception) -> bool:
        """Whether `outcome` would send an event of this batch again (it is not done yet)."""
        return (
            isinstance(outcome, BatchResult)
            and not self.task.done()
            and not self.done_event_ids.isdisjoint(outcome.done_event_ids)
        )


async def _ack(stream: faust.StreamT, events: Sequence[faust.EventT]) -> None:
    """Mark the events processed, so Faust may commit their offsets."""
    for event in events:
        await stream.ack(event)


class _ProcessingError(Exception):
    """Wraps an unexpected error so the dead-letter record says what happened."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error_type = "ProcessingError"
