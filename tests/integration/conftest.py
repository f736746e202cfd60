"""Pipeline fixtures: a fresh embedded stack per module and real worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from greencredit.infra.embedded import EmbeddedStack, free_port
from greencredit.infra.endpoints import Endpoints
from greencredit.infra.topic_admin import ensure_topics
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


class Worker:
    """A `greencredit worker` subprocess against the given endpoints."""

    def __init__(self, endpoints: Endpoints, log_dir: Path, name: str, **env: str) -> None:
        self.port = free_port()
        self.log_path = log_dir / f"{name}.log"
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka,
            "REDIS_URL": endpoints.redis,
            "WORKER_WEB_PORT": str(self.port),
            "GREENCREDIT_STATE_DIR": str(log_dir / f"{name}-state"),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "greencredit", "worker", "--loglevel", "warning"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
                cwd=str(self.log_path.parent),
            )
        return self

    def health(self) -> dict[str, Any] | None:
        try:
            url = f"http://127.0.0.1:{self.port}/health/"
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                return json.loads(response.read())
        except OSError:
            return None

    def wait_assigned(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            health = self.health()
            if health and health["assigned_partitions"]:
                return health
            time.sleep(0.3)
        raise AssertionError(f"worker got no partitions in {timeout}s\n{self.log_tail()}")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


@pytest.fixture
def start_worker(
    fresh_stack: Endpoints, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """Start workers on the module's stack; all are stopped after the test."""
    workers: list[Worker] = []

    def start(name: str = "worker", **env: str) -> Worker:
        worker = Worker(fresh_stack, tmp_path, name, **env).start()
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
    endpoints: Endpoints, topic: str, predicate: Callable[[dict[str, Any]], bool],
    count: int, timeout: float = 60.0,
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
