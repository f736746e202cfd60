"""Reading a topic to its current end, or following it: what `greencredit tail` runs on.

"The end" is each partition's end when the reader got there (librdkafka's partition-EOF
event), not a pause in traffic, so a non-following read of a busy topic still stops and an
idle one stops at once. Following polls in short steps so Ctrl-C is honoured promptly.

Starting "from the end" also waits for that event: the offset a broker lists as the end is
only where reading starts, and whatever is read before the end-of-partition event is
skipped. Tansu lists too early an end for partitions written in multi-record batches, so
trusting the listed offset would replay old events; on Kafka nothing is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from .codec import AvroCodec
from .publish import ReadResult, read_result

__all__ = ["tail_topic"]

_OFFSET_BEGINNING, _OFFSET_END = -2, -1


def tail_topic(
    client_config: Mapping[str, Any],
    topic_name: str,
    codec: AvroCodec,
    *,
    from_beginning: bool = True,
    follow: bool = False,
    limit: int | None = None,
    idle_timeout: float = 10.0,
    poll_interval: float = 0.5,
) -> Generator[ReadResult, None, None]:
    """Decoded messages (or their decode errors) of every partition, in arrival order.

    Without `follow`, stops once every partition reached its end; `idle_timeout` is only a
    safety net for a broker that stops answering. With `follow`, runs until `limit`
    messages or until the caller stops iterating (the consumer is closed either way).
    """
    consumer = Consumer(
        {
            **client_config,
            "group.id": "greencredit-tail",  # required by librdkafka, never joined
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        metadata = consumer.list_topics(topic_name, timeout=10)
        partitions = sorted(metadata.topics[topic_name].partitions)
        start = _OFFSET_BEGINNING if from_beginning else _OFFSET_END
        consumer.assign([TopicPartition(topic_name, p, start) for p in partitions])
        not_at_end = set(partitions)
        skipping = set() if from_beginning else set(partitions)
        seen = 0
        last_activity = time.monotonic()
        while limit is None or seen < limit:
            if not follow and not not_at_end:
                return
            message = consumer.poll(poll_interval)
            if message is None:
                if not follow and time.monotonic() - last_activity > idle_timeout:
                    return
                continue
            last_activity = time.monotonic()
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    not_at_end.discard(message.partition() or 0)
                    skipping.discard(message.partition() or 0)
                continue
            if message.partition() in skipping:
                continue  # before the end we were asked to start from
            seen += 1
            yield read_result(message, topic_name, codec)
    finally:
        consumer.close()
