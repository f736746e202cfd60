"""The console's Kafka I/O: a background reader feeding the case store, and the publishers.

The reader assigns every partition of the alert, review, feedback and lender-config topics
from their beginning, without a consumer group: each console sees everything retained (no
join wait, no offsets to manage), and the bounded store keeps the newest cases. Labels and
configs are published with confluent-kafka and flushed before the answer, so "published"
means the broker has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from greencredit.streams.codec import AvroCodec
from greencredit.streams.errors import CodecError
from greencredit.streams.masking import scrub_text
from greencredit.streams.publish import EventPublisher

from .cases import (
    Case,
    CaseLabel,
    CaseStore,
    analyst_id_checked,
    case_from_alert,
    case_from_review,
    feedback_record,
    labels_of,
)
from .lenders import EditedConfig, LenderBook, edit_config

__all__ = [
    "ALERTS",
    "CONSOLE_TOPICS",
    "FEEDBACK",
    "LENDER_CONFIG",
    "REVIEWS",
    "CaseNotFound",
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


class CaseNotFound(LookupError):
    """No such case in the store (unknown, or older than the newest ``max_cases``)."""


class LabelConflict(ValueError):
    """The case was already closed with the other label; relabelling is not done here."""


class PublishFailed(RuntimeError):
    """The broker did not take the event; nothing changed."""


@dataclass(frozen=True)
class LabelOutcome:
    """What a label request did: published a feedback event, or found it already there."""

    case: Case
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
    """Case store and lender book fed from Kafka; labels and configs published to Kafka."""

    def __init__(
        self,
        client_config: Mapping[str, Any],
        codec: AvroCodec,
        *,
        max_cases: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Nothing connects until :meth:`start`."""
        self._client_config = {**_RECONNECT, **client_config}
        self._codec = codec
        self._clock = clock
        self.cases = CaseStore(max_cases)
        self.lenders = LenderBook()
        self.status = ReaderStatus()
        self._publisher: EventPublisher | None = None
        self._publish_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Create the producer and start the background reader."""
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
                        self.ingest(message.topic() or "", message.value())
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

    def ingest(self, topic_name: str, raw: bytes | None) -> None:
        """Decode one message and apply it; undecodable ones are counted, never fatal."""
        self.status.messages += 1
        self.status.per_topic[topic_name] = self.status.per_topic.get(topic_name, 0) + 1
        try:
            event = self._codec.decode(raw, topic_name).value
            if topic_name == ALERTS:
                self.cases.add(case_from_alert(event))
            elif topic_name == REVIEWS:
                self.cases.add(case_from_review(event))
            elif topic_name == FEEDBACK:
                for key, label in labels_of([event]):
                    self.cases.record_label(key, label)
            elif topic_name == LENDER_CONFIG:
                self.lenders.apply(event)
        except (CodecError, KeyError, TypeError, ValueError):
            self.status.undecodable += 1

    # -- writing -----------------------------------------------------------------------
    async def label_case(self, case_id: str, verdict: str, analyst_id: Any) -> LabelOutcome:
        """Publish the feedback event that labels the case, once; close the case.

        A repeat of the same label answers with the first event (nothing republished);
        the other label on a closed case is a LabelConflict.
        """
        analyst = analyst_id_checked(analyst_id)
        async with self._publish_lock:  # a double click waits here, then finds it closed
            case = self.cases.get(case_id)
            if case is None:
                raise CaseNotFound(f"no case {case_id!r} (unknown, or no longer kept)")
            record = feedback_record(case, verdict, analyst, self._clock())
            if case.label is not None:
                if case.label.label != record["label"]:
                    raise LabelConflict(
                        f"case {case_id!r} is already closed as {case.label.label} by "
                        f"{case.label.analyst_id}"
                    )
                return LabelOutcome(case, case.label.event_id, case.label.label, published=False)
            await self._publish(FEEDBACK, record)
            label = CaseLabel(record["label"], analyst, record["occurred_at"], record["event_id"])
            closed = self.cases.record_label(case_id, label) or case
            return LabelOutcome(closed, record["event_id"], record["label"], published=True)

    async def publish_config(
        self, tenant_id: str, base_version: Any, matrices: Any
    ) -> EditedConfig:
        """Validate edited judgements and publish them as the lender's next config version."""
        async with self._publish_lock:
            edited = edit_config(self.lenders, tenant_id, base_version, matrices, self._clock())
            await self._publish(LENDER_CONFIG, edited.event)
            self.lenders.apply(edited.event)  # the reader will see it too; newer-only apply
            return edited

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
