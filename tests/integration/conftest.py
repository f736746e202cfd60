"""Pipeline fixtures: a fresh embedded stack per module and real worker processes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from greencredit.infra.embedded import EmbeddedStack
from greencredit.infra.endpoints import Endpoints
from greencredit.infra.topic_admin import ensure_topics
from greencredit.infra.worker_process import WorkerProcess
from greencredit.streams.codec import AvroCodec
from greencredit.streams.publish import EventPublisher, read_topic

CODEC = AvroCodec()


@pytest.fixture(scope="module")
def fresh_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """A broker and Redis of this module's own: no other test's events or state."""
    stack = EmbeddedStack(tmp_path_factory.mktemp("pipeline-stack"))
    state = stack.up()
    try:
        ensure_topics({"bootstrap.servers": state.kafka})
        yield Endpoints(str(state.kafka), str(state.redis))
    finally:
        stack.down()


class Worker(WorkerProcess):
    """A worker whose failures read as test failures."""

    def wait_assigned(self, timeout: float = 60.0) -> dict[str, Any]:
        try:
            return super().wait_assigned(timeout)
        except RuntimeError as exc:
            raise AssertionError(str(exc)) from None


@pytest.fixture
def start_worker(fresh_stack: Endpoints, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers on the module's stack; all are stopped after the test."""
    workers: list[Worker] = []

    def start(name: str = "worker", via_faust: bool = False, **env: str) -> Worker:
        worker = Worker(fresh_stack, tmp_path, name, **env).start(via_faust=via_faust)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def publish(endpoints: Endpoints, topic: str, records: list[dict[str, Any]]) -> None:
    """Encode and publish Avro-native records."""
    publisher = EventPublisher({"bootstrap.servers": endpoints.kafka}, CODEC)
    for record in records:
        publisher.publish(topic, record)
    publisher.flush()


def publish_raw(endpoints: Endpoints, topic: str, value: bytes, key: bytes) -> None:
    publisher = EventPublisher({"bootstrap.servers": endpoints.kafka}, CODEC)
    publisher.publish_raw(topic, value, key=key)
    publisher.flush()


def read_all(endpoints: Endpoints, topic: str) -> list[Any]:
    """Every message of a topic now (decoded results, errors included)."""
    return list(read_topic({"bootstrap.servers": endpoints.kafka}, topic, CODEC, idle_timeout=1.0))


def wait_for(
    endpoints: Endpoints,
    topic: str,
    predicate: Callable[[dict[str, Any]], bool],
    count: int,
    timeout: float = 60.0,
) -> list[dict[str, Any]]:
    """Poll a topic until `count` decoded events match `predicate` (or fail with what we saw)."""
    deadline = time.monotonic() + timeout
    matched: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = [r.event.value for r in read_all(endpoints, topic) if r.event is not None]
        matched = [e for e in events if predicate(e)]
        if len(matched) >= count:
            return matched
        time.sleep(0.5)
    raise AssertionError(f"{topic}: {len(matched)} of {count} expected events after {timeout}s")
