"""Publishing and reading events with confluent-kafka: used by the CLI, tests and the simulator.

The agents use Faust; these helpers are for everything around them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from .codec import AvroCodec, DecodedEvent
from .errors import CodecError
from .topics import topic

__all__ = ["EventPublisher", "ReadResult", "read_result", "read_topic"]


class EventPublisher:
    """Validate, encode and produce events keyed by their topic's key field."""

    def __init__(self, client_config: Mapping[str, Any], codec: AvroCodec) -> None:
        self._codec = codec
        self._producer = Producer({**client_config, "enable.idempotence": False, "linger.ms": 5})
        self._failures: list[str] = []
        # (topic, partition) -> the offset after the last acknowledged message: how far a
        # consumer must get to have seen everything published here.
        self.written: dict[tuple[str, int], int] = {}

    def publish(self, topic_name: str, record: Mapping[str, Any]) -> None:
        """Queue one event; raises InvalidEvent before anything is sent."""
        spec = topic(topic_name)
        value = self._codec.encode(topic_name, record)
        key = str(record[spec.key_field]).encode()
        self._produce(topic_name, key, value)

    def publish_raw(self, topic_name: str, value: bytes, key: bytes | None = None) -> None:
        """Queue raw bytes (tests and the demo use it for poison messages)."""
        self._produce(topic_name, key, value)

    def _produce(self, topic_name: str, key: bytes | None, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(
                    topic_name, value=value, key=key, on_delivery=self._on_delivery
                )
                break
            except BufferError:  # local queue full: let deliveries drain
                self._producer.poll(0.1)
        self._producer.poll(0)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error.str()}")
            return
        where, offset = (str(message.topic()), message.partition() or 0), message.offset() or 0
        self.written[where] = max(self.written.get(where, 0), offset + 1)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued event; raise if any was not delivered."""
        remaining = self._producer.flush(timeout)
        if remaining:
            raise RuntimeError(f"{remaining} events not delivered within {timeout:.0f}s")
        if self._failures:
            failures, self._failures = self._failures, []
            raise RuntimeError(f"{len(failures)} events failed: {failures[:3]}")


@dataclass(frozen=True)
class ReadResult:
    """One consumed message: decoded, or the codec error explaining why not."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes | None
    event: DecodedEvent | None
    error: CodecError | None
    timestamp_ms: int | None = None  # the broker record's timestamp (producer create time)


def read_result(message: Message, topic_name: str, codec: AvroCodec) -> ReadResult:
    """One consumed message as a ReadResult: decoded, or with the codec's error."""
    raw = message.value()
    try:
        event: DecodedEvent | None = codec.decode(raw, topic_name)
        error: CodecError | None = None
    except CodecError as exc:
        event, error = None, exc
    kind, stamp = message.timestamp()
    return ReadResult(
        topic_name,
        message.partition() or 0,
        message.offset() or 0,
        message.key(),
        raw,
        event,
        error,
        stamp if kind else None,
    )


def read_topic(
    client_config: Mapping[str, Any],
    topic_name: str,
    codec: AvroCodec,
    max_messages: int | None = None,
    idle_timeout: float = 3.0,
    from_beginning: bool = True,
) -> Iterator[ReadResult]:
    """Read a topic without a consumer group (assign all partitions), decoding each message.

    Stops after `max_messages`, or when nothing arrives for `idle_timeout` seconds.
    No group means no join wait on the broker and no committed offsets to clean up.
    """
    consumer = Consumer(
        {
            **client_config,
            "group.id": "greencredit-reader",  # required by librdkafka, never joined
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic_name, timeout=10)
        partitions = metadata.topics[topic_name].partitions
        start = -2 if from_beginning else -1  # OFFSET_BEGINNING / OFFSET_END
        consumer.assign([TopicPartition(topic_name, p, start) for p in partitions])
        seen = 0
        while max_messages is None or seen < max_messages:
            message = consumer.poll(idle_timeout)
            if message is None:
                return
            if message.error():
                continue
            seen += 1
            yield read_result(message, topic_name, codec)
    finally:
        consumer.close()
