"""The console's I/O: a Kafka reader feeding the PostgreSQL case store, and the publishers.

The reader assigns every partition of the alert, review, feedback and lender-config topics
from their beginning, without a consumer group: each console sees everything retained (no
join wait, no offsets to manage); ingestion into PostgreSQL is idempotent by event id, so
re-reading after a restart adds nothing twice. Labels and configs are published with
confluent-kafka and flushed before the answer, so "published" means the broker has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from confluent_kafka import Consumer, KafkaException, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from greencredit.streams.codec import AvroCodec
from greencredit.streams.errors import CodecError
from greencredit.streams.masking import scrub_text
from greencredit.streams.publish import EventPublisher

from . import db
from .auth import User, Users
from .cases import (
    CaseLabel,
    case_from_alert,
    case_from_review,
    feedback_record,
    labels_of,
)
from .db import migrate
from .lenders import EditedConfig, LenderBook
from .policy import Proposals
from .store import CaseStore, as_case

__all__ = [
    "ALERTS",
    "CONSOLE_TOPICS",
    "FEEDBACK",
    "LENDER_CONFIG",
    "REVIEWS",
    "ConsoleService",
    "LabelConflict",
    "LabelOutcome",
    "PublishFailed",
    "ReaderStatus",
]

log = logging.getLogger(__name__)

ALERTS = "greencredit.fraud-alerts"
REVIEWS = "greencredit.reviews"
FEEDBACK = "greencredit.analyst-feedback"
LENDER_CONFIG = "greencredit.lender-config"
CONSOLE_TOPICS = (ALERTS, REVIEWS, FEEDBACK, LENDER_CONFIG)

_BATCH = 500
_POLL_S = 0.5
_PUBLISH_TIMEOUT_S = 10.0
# librdkafka retries a refused connection every ~50 ms by default, which floods the console's
# log while the broker is down; a console can wait a few seconds more to reconnect.
_RECONNECT = {"reconnect.backoff.ms": 1000, "reconnect.backoff.max.ms": 10000}


class LabelConflict(ValueError):
    """The case was already closed with the other label; relabelling is not done here."""


class PublishFailed(RuntimeError):
    """The broker did not take the event; nothing changed."""


@dataclass(frozen=True)
class LabelOutcome:
    """What a label request did: published a feedback event, or found it already there."""

    case_id: str
    event_id: str
    label: str
    published: bool


@dataclass
class ReaderStatus:
    """What the background reader has done, for /api/health."""

    assigned: bool = False
    messages: int = 0
    undecodable: int = 0
    last_error: str | None = None
    per_topic: dict[str, int] = field(default_factory=dict)


class ConsoleService:
    """Cases, users and proposals in PostgreSQL fed from Kafka; labels and configs to Kafka."""

    def __init__(
        self,
        client_config: Mapping[str, Any],
        codec: AvroCodec,
        engine: AsyncEngine,
        *,
        users: Users | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Nothing connects until :meth:`start`; the service disposes of ``engine`` at stop."""
        self._client_config = {**_RECONNECT, **client_config}
        self._codec = codec
        self._clock = clock
        self.engine = engine
        self.cases = CaseStore(engine)
        self.users = users or Users(engine)
        self.proposals = Proposals(engine)
        self.lenders = LenderBook()
        self.status = ReaderStatus()
        self._publisher: EventPublisher | None = None
        self._publish_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Migrate the database, create the producer and start the background reader."""
        await migrate(self.engine)
        self._publisher = EventPublisher(self._client_config, self._codec)
        self._stopping.clear()
        self._task = asyncio.create_task(self._read_forever(), name="console-reader")

    async def stop(self) -> None:
        """Stop the reader (it finishes its current poll) and flush the producer."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._publisher is not None:
            publisher, self._publisher = self._publisher, None
            try:
                await asyncio.to_thread(publisher.flush, _PUBLISH_TIMEOUT_S)
            except RuntimeError as exc:  # broker gone at shutdown: say so, exit anyway
                log.warning("console stopping with unsent events: %s", scrub_text(str(exc)))
        await self.engine.dispose()

    # -- reading -----------------------------------------------------------------------
    async def _read_forever(self) -> None:
        consumer = Consumer(
            {
                **self._client_config,
                "group.id": "greencredit-console",  # required by librdkafka, never joined
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        try:
            while not self._stopping.is_set():
                if not self.status.assigned:
                    self.status.assigned = await asyncio.to_thread(self._assign, consumer)
                    if not self.status.assigned:
                        await self._pause(1.0)
                    continue
                messages = await asyncio.to_thread(consumer.consume, _BATCH, _POLL_S)
                for message in messages:
                    if message.error() is None:
                        await self._ingest_retrying(message.topic() or "", message.value())
        except Exception as exc:  # never let the reader die silently: say why on /api/health
            self.status.assigned = False
            self.status.last_error = scrub_text(f"reader stopped: {type(exc).__name__}: {exc}")
            log.exception("console reader stopped")
        finally:
            await asyncio.to_thread(consumer.close)

    def _assign(self, consumer: Consumer) -> bool:
        """Assign every partition of the console's topics; False while a topic is missing."""
        try:
            metadata = consumer.list_topics(timeout=5)
        except KafkaException as exc:
            self.status.last_error = scrub_text(str(exc))
            return False
        partitions = []
        for name in CONSOLE_TOPICS:
            meta = metadata.topics.get(name)
            if meta is None or meta.error is not None or not meta.partitions:
                self.status.last_error = (
                    f"topic {name} does not exist yet (greencredit topics create)"
                )
                return False
            partitions += [TopicPartition(name, p, -2) for p in meta.partitions]  # -2: beginning
        consumer.assign(partitions)
        self.status.last_error = None
        return True

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):  # woken early by stop()
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _ingest_retrying(self, topic_name: str, raw: bytes | None) -> None:
        """Ingest, waiting out a database outage (the message is kept, never skipped)."""
        while not self._stopping.is_set():
            try:
                await self.ingest(topic_name, raw)
                return
            except (sa.exc.OperationalError, sa.exc.InterfaceError, OSError) as exc:
                self.status.last_error = scrub_text(f"database: {type(exc).__name__}: {exc}")
                log.warning("console cannot write to the database; retrying in 1 s")
                await self._pause(1.0)

    async def ingest(self, topic_name: str, raw: bytes | None) -> None:
        """Decode one message and apply it; undecodable ones are counted, never fatal."""
        self.status.messages += 1
        self.status.per_topic[topic_name] = self.status.per_topic.get(topic_name, 0) + 1
        try:
            event = self._codec.decode(raw, topic_name).value
            if topic_name == ALERTS:
                case = case_from_alert(event)
            elif topic_name == REVIEWS:
                case = case_from_review(event)
            elif topic_name == FEEDBACK:
                labels = labels_of([event])
            elif topic_name == LENDER_CONFIG:
                self.lenders.apply(event)
                return
        except (CodecError, KeyError, TypeError, ValueError):
            self.status.undecodable += 1
            return
        if topic_name == FEEDBACK:
            for key, label in labels:
                await self.cases.ingest_label(key, label)
        elif topic_name in (ALERTS, REVIEWS):
            await self.cases.ingest_case(case)
        if self.status.last_error and self.status.last_error.startswith("database"):
            self.status.last_error = None

    # -- writing -----------------------------------------------------------------------
    async def label_case(self, case_id: str, verdict: str, user: User) -> LabelOutcome:
        """Publish the feedback event that labels the case, as ``user``, once; close the case.

        The analyst id is the signed-in user's name, never a typed one. A repeat of the same
        label answers with the first event (nothing republished); the other label on a
        labelled case is a LabelConflict. A case of another lender is NoSuchCase.
        """
        async with self._publish_lock:  # a double click waits here, then finds it labelled
            row = await self.cases.get(case_id, user.lenders)
            record = feedback_record(as_case(row), verdict, user.username, self._clock())
            if row.label is not None:
                if row.label != record["label"]:
                    raise LabelConflict(
                        f"case {case_id!r} is already labelled {row.label} by {row.labelled_by}"
                    )
                return LabelOutcome(case_id, row.label_event_id, row.label, published=False)
            await self._publish(FEEDBACK, record)
            label = CaseLabel(
                record["label"], user.username, record["occurred_at"], record["event_id"]
            )
            await self.cases.record_label(case_id, label, user.username, published=True)
            return LabelOutcome(case_id, record["event_id"], record["label"], published=True)

    async def approve_proposal(self, proposal_id: int, user: User) -> EditedConfig:
        """Publish a proposal approved by ``user`` as the lender's next config version."""

        async def publish(event: dict[str, Any]) -> None:
            await self._publish(LENDER_CONFIG, event)
            self.lenders.apply(event)  # the reader will see it too; newer-only apply

        async with self._publish_lock:
            return await self.proposals.approve(
                proposal_id, user.lenders, user.username, self.lenders, publish
            )

    async def audit_page(self, before: int | None, limit: int) -> list[dict[str, Any]]:
        """Audit entries newest first, with ids below ``before`` when given."""
        a = db.audit.c
        query = sa.select(db.audit).order_by(a.id.desc()).limit(limit)
        if before is not None:
            query = query.where(a.id < before)
        async with self.engine.connect() as connection:
            rows = await connection.execute(query)
            return [
                {
                    "id": r.id,
                    "at": r.at.astimezone(UTC).isoformat(),
                    "actor": r.actor,
                    "action": r.action,
                    "tenant_id": r.tenant_id,
                    "target": r.target,
                    "address": r.address,
                    "detail": r.detail,
                }
                for r in rows
            ]

    async def _publish(self, topic_name: str, record: Mapping[str, Any]) -> None:
        publisher = self._publisher
        if publisher is None:
            raise PublishFailed("the console is not started")

        def send() -> None:
            publisher.publish(topic_name, record)
            publisher.flush(_PUBLISH_TIMEOUT_S)

        try:
            await asyncio.to_thread(send)
        except (RuntimeError, KafkaException, BufferError) as exc:
            # Not confirmed: the event may still be delivered later. That is harmless, as its
            # id is deterministic (the engine learns a label once; a config version once).
            raise PublishFailed(scrub_text(f"{topic_name}: {exc}")) from None
