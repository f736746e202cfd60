"""The benchmark's Recorder on the real broker: it reads only inside `collect`.

The stream benchmarks read a stage's outputs after it ran (bench/harness.py), so nothing
fetches from the shared broker while the process under test works. Reading later must
still give exactly the records that followed the recorder's creation, all of them.
"""

from __future__ import annotations

import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.harness import Recorder
from greencredit.infra.endpoints import Endpoints


def _topic(stack: Endpoints) -> str:
    name = f"bench.test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack.kafka})
    for future in admin.create_topics([NewTopic(name, 3, 1)]).values():
        future.result(10)
    return name


def _produce(stack: Endpoints, topic: str, count: int, tag: str) -> None:
    # A long linger: records leave in batches of many, as a busy producer sends them.
    producer = Producer({"bootstrap.servers": stack.kafka, "linger.ms": 50})
    for i in range(count):
        producer.produce(topic, f"{tag}-{i}".encode(), key=str(i).encode())
    assert producer.flush(30) == 0


def test_a_recorder_reads_afterwards_only_what_followed_it(stack: Endpoints) -> None:
    topic = _topic(stack)
    _produce(stack, topic, 50, "before")
    recorder = Recorder(stack.kafka, topic, from_end=True)
    _produce(stack, topic, 400, "first")
    assert recorder.collect(400, 30) == 400
    _produce(stack, topic, 100, "second")
    # Collecting again goes on from where the last read stopped.
    assert recorder.collect(500, 30) == 500
    values = sorted(v.decode() for v, _ in recorder.messages)
    assert values == sorted(
        [f"first-{i}" for i in range(400)] + [f"second-{i}" for i in range(100)]
    )
    # Nothing more: the read stops once the topic is quiet instead of waiting out the timeout.
    assert recorder.collect(10**6, 30, quiet_s=1.0) == 500
