"""Read audit chains back from Kafka: a partition's head hash, and whole partitions to verify.

A restarted writer continues its partitions' chains from the last record already in
Kafka (``last_record_hash``, read from the message's bytes); ``greencredit audit
verify`` reads every message of a partition in offset order (``read_partition``) and
checks the stored bytes against the rule of streams/audit.py (``verify_partition``).

Consumers here never join a group: they assign partitions directly, so there is no
join wait and no committed offsets. Any topic name is accepted (not only registered
ones) and messages are decoded by their schema id, so copies of a topic can be checked.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from greencredit.streams.audit import (
    GENESIS_HASH,
    ChainEntry,
    ChainLayoutError,
    ChainReport,
    NotChained,
    chain_entry,
    chain_tail,
    check_chain_layout,
    verify_chain,
)
from greencredit.streams.codec import HEADER_SIZE, AvroCodec, DecodedEvent
from greencredit.streams.errors import CodecError

__all__ = [
    "PartitionAudit",
    "entry_of_message",
    "last_record_hash",
    "partitions_of",
    "read_partition",
    "verify_partition",
]


@contextmanager
def _group_less_consumer(client_config: Mapping[str, Any]) -> Iterator[Consumer]:
    consumer = Consumer(
        {
            **client_config,
            "group.id": "greencredit-audit",  # required by librdkafka, never joined
            "enable.auto.commit": False,
            # The end of a partition is where a fetch reaches the high watermark the
            # broker returns with the data. ListOffsets(latest) is not used for it:
            # Tansu answers it with the last batch's base offset + 1.
            "enable.partition.eof": True,
            # Readers here stop at the end, so do not let the broker hold an empty fetch.
            "fetch.wait.max.ms": 10,
            "auto.offset.reset": "earliest",  # retention moved the start while we looked
        }
    )
    try:
        yield consumer
    finally:
        consumer.close()


def partitions_of(client_config: Mapping[str, Any], topic: str, timeout: float = 10.0) -> list[int]:
    """The partition numbers of `topic`; raises LookupError when the topic does not exist."""
    with _group_less_consumer(client_config) as consumer:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise LookupError(f"topic {topic} does not exist")
    return sorted(metadata.partitions)


def last_record_hash(
    client_config: Mapping[str, Any],
    topic: str,
    partition: int,
    codec: AvroCodec,
    timeout: float = 10.0,
) -> str:
    """The record_hash of the partition's last message, or GENESIS_HASH when it is empty.

    Blocking (the agent runs it in a thread). Raises CodecError when the last message
    is not a chained record and TimeoutError when the partition's end is not reached:
    a writer must not guess its head, or the chain breaks.
    """
    with _group_less_consumer(client_config) as consumer:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout, cached=False
        )
        # Start one before the reported end and read on to the real end, in case the
        # reported end lags (see _group_less_consumer); on Kafka this reads one message.
        consumer.assign([TopicPartition(topic, partition, max(low, high - 1))])
        tail = deque(_to_end_of_partition(consumer, topic, partition, timeout), maxlen=1)
    if not tail:
        return GENESIS_HASH
    offset, last = tail[0]
    if last is None:
        raise CodecError(f"{topic}[{partition}]@{offset} is a tombstone, not a chained record")
    try:
        _, writer = codec.writer_of(last)
        check_chain_layout(writer.raw)
        # Both rules keep record_hash in the last 64 bytes, so legacy heads read the same.
        return chain_tail(memoryview(last)[HEADER_SIZE:])[1]
    except (ChainLayoutError, NotChained) as exc:
        raise CodecError(f"{topic}[{partition}]@{offset} is not a chained record: {exc}") from None


def entry_of_message(codec: AvroCodec, data: bytes | None) -> ChainEntry | str:
    """What verification needs from one message, or why it is not a chained record."""
    if data is None:
        return "message has no value (tombstone)"
    try:
        event = codec.decode(data)
        writer = codec.ids.writer_schema(event.schema_id)
        check_chain_layout(writer.raw)
        return chain_entry(
            memoryview(data)[HEADER_SIZE:],
            codec.fingerprint(event.schema_id),
            _as_written(codec, event),
        )
    except CodecError as exc:
        return f"message does not decode as a record ({exc.error_type})"
    except (ChainLayoutError, NotChained) as exc:
        return f"not a chained record: {exc}"


def read_partition(
    client_config: Mapping[str, Any],
    topic: str,
    partition: int,
    codec: AvroCodec,
    timeout: float = 10.0,
) -> Iterator[tuple[int, ChainEntry | str]]:
    """(offset, chain entry) for every message in the partition, in offset order.

    Stops at the first end of partition, so later writes do not keep it going. A
    message that is not a chained record yields the reason (verify_chain reports it).
    Raises TimeoutError if the end is not reached: a short read must never pass as
    verified.
    """
    with _group_less_consumer(client_config) as consumer:
        # An explicit offset: starting at OFFSET_BEGINNING costs librdkafka a 0.5 s
        # offset-query timer per partition.
        low, _ = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout, cached=False
        )
        consumer.assign([TopicPartition(topic, partition, low)])
        for offset, data in _to_end_of_partition(consumer, topic, partition, timeout):
            yield offset, entry_of_message(codec, data)


def _as_written(codec: AvroCodec, event: DecodedEvent) -> dict[str, Any]:
    """The record with the writer schema's top-level fields only (for the legacy rule).

    A legacy producer hashed the record in its writer schema's shape; fields a newer
    reader schema adds (with their defaults) were not part of it. A field removed by a
    newer schema cannot be restored here: such legacy records fail verification. The
    byte rule has no such limit: it hashes the stored bytes.
    """
    written = codec.ids.writer_schema(event.schema_id).raw["fields"]
    return {f["name"]: event.value[f["name"]] for f in written if f["name"] in event.value}


def _to_end_of_partition(
    consumer: Consumer, topic: str, partition: int, timeout: float
) -> Iterator[tuple[int, bytes | None]]:
    """(offset, value) from the assigned partition until its end; `timeout` idle seconds max."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = consumer.poll(min(1.0, timeout))
        if message is None:
            continue
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return
            if error.fatal() or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise KafkaException(error)
            continue  # transient (broker reconnects): librdkafka retries by itself
        yield message.offset() or 0, message.value()
        deadline = time.monotonic() + timeout
    raise TimeoutError(f"{topic}[{partition}]: end of partition not reached within {timeout}s")


@dataclass(frozen=True)
class PartitionAudit:
    """The verdict on one partition, with the offset its stored records start at."""

    partition: int
    first_offset: int | None  # > 0: retention deleted the older records
    report: ChainReport


def verify_partition(
    client_config: Mapping[str, Any],
    topic: str,
    partition: int,
    codec: AvroCodec,
    timeout: float = 10.0,
) -> PartitionAudit:
    """Verify one partition's chain as it is stored now.

    When retention has deleted the oldest records (the first offset is above 0), the
    first remaining record's prev_hash is taken as the chain start: it cannot be
    checked, everything after it still is.
    """
    records = read_partition(client_config, topic, partition, codec, timeout)
    first = next(records, None)
    if first is None:
        return PartitionAudit(partition, None, verify_chain([]))
    offset, entry = first
    start = GENESIS_HASH
    if offset > 0 and isinstance(entry, ChainEntry):
        start = entry.prev_hash
    report = verify_chain(itertools.chain([first], records), start_hash=start)
    return PartitionAudit(partition, offset, report)
