"""Where the agents' outputs go: librdkafka (confluent-kafka) rather than Faust's producer.

Faust consumes; producing 2-3 records per application through Faust's Python producer
path cost more CPU than the scoring itself. librdkafka batches and compresses in C; the
engine enqueues a batch's records, then waits for every acknowledgement in a thread so
the event loop keeps running. The partitioner is murmur2, as Java clients and Faust use,
so keyed records land where any other producer of the same topic would put them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

__all__ = ["KafkaSink", "Sink"]


class Sink(Protocol):
    """Enqueue records, then wait until all of them are acknowledged."""

    def produce(self, topic: str, key: bytes, value: bytes, partition: int | None) -> None:
        """Queue one record (an explicit partition, or None to partition by key)."""
        ...

    async def flush(self) -> None:
        """Return once every queued record is acknowledged; raise if any failed."""
        ...


class KafkaSink:
    """A Sink over one librdkafka producer (acks from all in-sync replicas)."""

    def __init__(self, client_config: Mapping[str, Any], flush_timeout_s: float = 30.0) -> None:
        self._producer = Producer(
            {
                **client_config,
                "acks": "all",
                "linger.ms": 1,
                "partitioner": "murmur2_random",
                # Idempotent producing needs broker support the embedded broker lacks; outputs
                # are de-duplicated by event id downstream instead.
                "enable.idempotence": False,
            }
        )
        self._timeout = flush_timeout_s
        self._failures: list[str] = []

    def produce(self, topic: str, key: bytes, value: bytes, partition: int | None) -> None:
        """Queue one record; a full local queue is drained before retrying."""
        while True:
            try:
                if partition is None:
                    self._producer.produce(topic, value=value, key=key, on_delivery=self._done)
                else:
                    self._producer.produce(
                        topic, value=value, key=key, partition=partition, on_delivery=self._done
                    )
                return
            except BufferError:
                self._producer.poll(0.05)

    def _done(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error.str()}")

    async def flush(self) -> None:
        """Wait (in a thread) for all acknowledgements."""
        remaining = await asyncio.to_thread(self._producer.flush, self._timeout)
        failures, self._failures = self._failures, []
        if remaining:
            raise RuntimeError(f"{remaining} records not acknowledged in {self._timeout:.0f}s")
        if failures:
            raise RuntimeError(f"{len(failures)} records failed: {failures[:3]}")
