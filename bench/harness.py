"""What the stream benchmarks share: a fresh embedded stack, producing, recording, statistics.

Every stream benchmark starts its own broker and Redis in a temporary directory, so runs do
not see each other's offsets, dedupe markers or velocity counters. The directory (worker and
server logs) is removed afterwards unless BENCH_KEEP_WORK is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.load import Outgoing
from greencredit.infra.embedded import EmbeddedStack, StackState, free_port
from greencredit.infra.endpoints import Endpoints
from greencredit.infra.topic_admin import ensure_topics

__all__ = [
    "Bench",
    "PacedRun",
    "Recorder",
    "bench_stack",
    "bulk_producer",
    "produce_all",
    "send_paced",
    "start_passthrough",
    "stop_process",
]

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Bench:
    """A running embedded stack and a scratch directory for logs."""

    endpoints: Endpoints
    work: Path
    state: StackState


@contextmanager
def bench_stack(extra_topics: Iterable[str] = ()) -> Iterator[Bench]:
    """A fresh broker + Redis with the registry's topics and `extra_topics` (6 partitions)."""
    work = Path(tempfile.mkdtemp(prefix="greencredit-bench-"))
    stack = EmbeddedStack(work / "stack")
    state = stack.up()
    try:
        endpoints = Endpoints(str(state.kafka), str(state.redis))
        ensure_topics({"bootstrap.servers": endpoints.kafka})
        extra = list(extra_topics)
        if extra:
            admin = AdminClient({"bootstrap.servers": endpoints.kafka})
            for future in admin.create_topics([NewTopic(t, 6, 1) for t in extra]).values():
                future.result(10)
        yield Bench(endpoints, work, state)
    finally:
        stack.down()
        if os.environ.get("BENCH_KEEP_WORK"):
            print(f"logs kept in {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


def bulk_producer(kafka: str) -> Producer:
    """A producer that batches (20 ms linger), for pre-loading."""
    return _producer(kafka, 20)


def _producer(kafka: str, linger_ms: int) -> Producer:
    return Producer(
        {
            "bootstrap.servers": kafka,
            "linger.ms": linger_ms,
            "queue.buffering.max.messages": 200_000,
        }
    )


def _produce(producer: Producer, out: Outgoing, topic: str, timestamp_ms: int = 0) -> None:
    while True:
        try:
            producer.produce(topic, out.value, key=out.key, timestamp=timestamp_ms)
            return
        except BufferError:  # local queue full: let librdkafka drain it
            producer.poll(0.05)


def produce_all(
    kafka: str,
    messages: Iterable[Outgoing],
    topic: str | None = None,
    producer: Producer | None = None,
) -> int:
    """Produce as fast as the broker takes them and wait for the acks; the count sent.

    `topic` overrides each message's topic; `producer` reuses a connection across calls.
    """
    producer = producer or bulk_producer(kafka)
    count = 0
    for out in messages:
        _produce(producer, out, topic or out.topic)
        producer.poll(0)
        count += 1
    if producer.flush(120):
        raise RuntimeError("the broker did not acknowledge every benchmark message")
    return count


@dataclass
class PacedRun:
    """What an offered-load run sent: scheduled time (ms) per event id and value."""

    rate: int
    scheduled_by_id: dict[str, int] = field(default_factory=dict)
    scheduled_by_value: dict[bytes, int] = field(default_factory=dict)
    achieved_rate: float = 0.0
    max_behind_ms: float = 0.0


def send_paced(
    kafka: str,
    build: Callable[[int, datetime], Outgoing],
    rate: int,
    seconds: float,
    topic: str | None = None,
) -> PacedRun:
    """Offer `rate` events/s for `seconds`; event i is stamped with its scheduled time.

    The event's `occurred_at` and Kafka timestamp are the time it was due, not the time the
    generator got to it: a generator that falls behind adds its lag to the measured latency
    instead of hiding it (no coordinated omission). The lag is reported too.
    """
    # librdkafka's default linger (5 ms), as an upstream app would run it: with 0 every
    # event is a produce request of its own, which on this broker costs more than the
    # engine (p99 at 1,000/s through the passthrough: 272 ms with 0, 72 ms with 5). The
    # linger is inside the measured latency: events carry their scheduled time.
    producer = _producer(kafka, 5)
    run = PacedRun(rate)
    count = int(rate * seconds)
    wall0, perf0 = time.time() + 0.2, time.perf_counter() + 0.2
    first = last = 0.0
    for i in range(count):
        offset = i / rate
        while (now := time.perf_counter()) < perf0 + offset:
            time.sleep(min(perf0 + offset - now, 0.001))
        run.max_behind_ms = max(run.max_behind_ms, (now - perf0 - offset) * 1000)
        due = datetime.fromtimestamp(wall0 + offset, UTC)
        out = build(i, due)
        stamp = int((wall0 + offset) * 1000)
        _produce(producer, out, topic or out.topic, stamp)
        producer.poll(0)
        run.scheduled_by_id[out.event_id] = stamp
        run.scheduled_by_value[out.value] = stamp
        first = first or time.perf_counter()
        last = time.perf_counter()
    producer.flush(60)
    run.achieved_rate = (count - 1) / (last - first) if last > first else 0.0
    return run


class Recorder:
    """Reads a topic when asked, keeping every message's value and timestamp (ms).

    From the topic's start, or with `from_end` only records produced after the constructor
    ran, so stages that share one broker see only their own. The offsets alone do not do
    that: Tansu's high watermark lags the log (measured: 522 reported, 531 readable, a
    second after the acks), and one older record in a stage's outputs stretches its
    first-to-last span by minutes. So reading starts at the reported end and any record
    whose timestamp is older than the constructor is skipped.

    A consumer exists only inside `collect`: an assigned librdkafka consumer keeps fetching
    in the background, and on Tansu's memory storage a fetch at the tail of a partition
    costs the broker more the more record batches the partition holds. Two recorders
    reading the worker's outputs live took the broker ~108 s of CPU over a 20,000-
    application stage (122 s against 14 s without them) on the two cores the worker
    shares, and halved the worker's rate (175 vs 399/s). So stages wait on the process's
    own counter and read the outputs afterwards: the timestamps are the producer's, the
    same whenever they are read.
    """

    def __init__(self, kafka: str, topic: str, from_end: bool = False) -> None:
        self.topic = topic
        self.messages: list[tuple[bytes, int]] = []
        self.skipped = 0
        self._kafka = kafka
        self._since_ms = int(time.time() * 1000) if from_end else None
        consumer = self._consumer()
        try:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            self._positions = {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
                if from_end
                else -2  # OFFSET_BEGINNING
                for p in meta.partitions
            }
        finally:
            consumer.close()

    def _consumer(self) -> Consumer:
        return Consumer(
            {"bootstrap.servers": self._kafka, "group.id": f"bench-recorder-{self.topic}"}
            | {"enable.auto.commit": False, "fetch.wait.max.ms": 10}
        )

    def collect(self, total: int, timeout: float, quiet_s: float | None = None) -> int:
        """Read until `total` messages were seen since creation or `timeout` s; the count.

        `quiet_s`: also stop once nothing came for that long (to read what is there).
        """
        deadline = time.monotonic() + timeout
        if len(self.messages) >= total:
            return len(self.messages)
        consumer = self._consumer()
        consumer.assign([TopicPartition(self.topic, p, o) for p, o in self._positions.items()])
        try:
            last_seen = time.monotonic()
            while len(self.messages) < total and time.monotonic() < deadline:
                batch = consumer.consume(1000, 0.5)
                if batch:
                    last_seen = time.monotonic()
                elif quiet_s is not None and time.monotonic() - last_seen > quiet_s:
                    break
                for message in batch:
                    if message.error() is not None:
                        continue
                    offset = message.offset()
                    if offset is not None:
                        self._positions[message.partition()] = offset + 1
                    stamp = message.timestamp()[1]
                    if self._since_ms is not None and stamp < self._since_ms:
                        self.skipped += 1
                        continue
                    self.messages.append((message.value() or b"", stamp))
        finally:
            consumer.close()
        return len(self.messages)


# The two bare hops: the Faust app the engine is compared with, and the same loop on librdkafka.
CLIENTS = {
    "faust": [sys.executable, "-m", "faust", "-A", "bench.passthrough_app", "worker", "-l", "warn"],
    "rdkafka": [sys.executable, "-m", "bench.rdkafka_hop"],
}


def start_passthrough(
    bench: Bench,
    stage: str,
    source: str,
    sink: str,
    web_port: int | None = None,
    app_id: str | None = None,
    client: str = "faust",
) -> subprocess.Popen[bytes]:
    """The bare Faust app of bench/passthrough_app.py ("passthrough", "decode", "consume").

    `web_port` serves its /health/ page; `app_id` (its consumer group) defaults to the stage.
    `client` "rdkafka" runs bench/rdkafka_hop.py instead: the same hop without Faust.
    """
    if client not in CLIENTS:
        raise ValueError(f"client must be one of {sorted(CLIENTS)}, not {client!r}")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bench.endpoints.kafka,
        "WORKER_WEB_PORT": str(web_port or free_port()),
        "BENCH_APP_ID": app_id or f"bench-{stage}",
        "PYTHONPATH": str(ROOT),
        "BENCH_STAGE": stage,
        "BENCH_SOURCE_TOPIC": source,
        "BENCH_SINK_TOPIC": sink,
    }
    with (bench.work / f"{client}-{stage}.log").open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our interpreter, our modules
            CLIENTS[client],
            env=env,
            cwd=str(bench.work),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
