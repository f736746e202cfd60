"""Faults while events flow: a worker killed with SIGKILL, Redis killed and restarted, a
worker started before its broker. Nothing may be lost, nothing disbursed twice.

Outputs are at-least-once with deterministic event ids: a consumer de-duplicates on
`event_id`, so the checks here de-duplicate first and then demand exactly one decision
per application and at most one disbursement per application.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from greencredit.infra.embedded import EmbeddedStack
from greencredit.infra.endpoints import Endpoints
from greencredit.infra.stores import DEFAULT_KEY_PREFIX as PREFIX
from greencredit.infra.topic_admin import ensure_topics
from greencredit.models.fusion import HardFlag
from greencredit.streams.codec import AvroCodec
from greencredit.streams.publish import EventPublisher
from greencredit.streams.records import output_event_id
from greencredit.streams.topics import TOPICS
from tests.factories import application
from tests.integration.conftest import Worker, read_all
from tests.pii_scan import PiiSecrets, raw_messages

APPLICATIONS = "greencredit.loan-applications"
DECISIONS = "greencredit.decisions"
DISBURSEMENTS = "greencredit.disbursements"
UNAVAILABLE = HardFlag.FEATURES_UNAVAILABLE.value
CODEC = AvroCodec()


class PacedPublisher(threading.Thread):
    """Publishes events one by one at a steady pace, so a fault lands mid-stream.

    `sent` counts events acknowledged by the broker: event `i` was published after any
    moment at which `sent` was still <= i - 1.
    """

    def __init__(self, endpoints: Endpoints, events: list[dict[str, Any]], pause_s: float):
        super().__init__(daemon=True)
        self.publisher = EventPublisher({"bootstrap.servers": endpoints.kafka}, CODEC)
        self.events = events
        self.pause_s = pause_s
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for event in self.events:
                self.publisher.publish(APPLICATIONS, event)
                self.publisher.flush()
                self.sent += 1
                time.sleep(self.pause_s)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self, timeout: float = 60.0) -> None:
        self.join(timeout)
        assert not self.is_alive(), "publisher did not finish"
        assert self.error is None, f"publishing failed: {self.error}"


def _poll(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Wait until `condition()` is truthy and return it (fail naming `what`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _processed(worker: Worker) -> int:
    health = worker.health() or {}
    return int(health.get("processed", 0))


def _events(endpoints: Endpoints, topic: str) -> list[dict[str, Any]]:
    return [r.event.value for r in read_all(endpoints, topic) if r.event is not None]


def _wait_all_decided(
    endpoints: Endpoints, apps: list[dict[str, Any]], timeout: float = 120.0
) -> list[dict[str, Any]]:
    """Every decision once each input application has at least one."""
    wanted = {a["event_id"] for a in apps}
    decisions: list[dict[str, Any]] = []

    def all_in() -> bool:
        decisions[:] = _events(endpoints, DECISIONS)
        return wanted <= {d["application_event_id"] for d in decisions}

    deadline = time.monotonic() + timeout
    while not all_in():
        if time.monotonic() > deadline:
            seen = wanted & {d["application_event_id"] for d in decisions}
            raise AssertionError(f"{len(seen)} of {len(wanted)} applications decided")
        time.sleep(0.5)
    return decisions


def _one_decision_each(apps: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> dict:
    """De-duplicate by event id; demand exactly one decision per application event."""
    by_id: dict[str, dict[str, Any]] = {}
    for decision in decisions:
        # Output ids are derived from the input id: a re-sent decision is recognisable.
        assert decision["event_id"] == output_event_id("decision", decision["application_event_id"])
        first = by_id.setdefault(decision["event_id"], decision)
        assert first["decision"] == decision["decision"], "a redelivery changed the decision"
    per_app: dict[str, dict[str, Any]] = {}
    for decision in by_id.values():
        assert decision["application_event_id"] not in per_app, "two decisions for one input"
        per_app[decision["application_event_id"]] = decision
    assert set(per_app) == {a["event_id"] for a in apps}
    return per_app


def _disbursed_once(endpoints: Endpoints) -> dict[str, str]:
    """application_id -> its one disbursement event id (after de-duplication)."""
    ids_per_app: dict[str, set[str]] = {}
    for record in _events(endpoints, DISBURSEMENTS):
        ids_per_app.setdefault(record["application_id"], set()).add(record["event_id"])
    twice = sorted(a for a, ids in ids_per_app.items() if len(ids) > 1)
    assert twice == [], f"applications disbursed twice: {twice}"
    return {a: ids.pop() for a, ids in ids_per_app.items()}


def _loans_opened_once(endpoints: Endpoints, disbursed: dict[str, str]) -> None:
    """Every disbursed application has its loan, opened by that disbursement; no other loan."""
    client = redis.Redis.from_url(endpoints.redis)
    try:
        wanted = {f"loan-{a}": event_id for a, event_id in disbursed.items()}
        deadline = time.monotonic() + 60
        while True:
            stored = {
                k.decode().removeprefix(f"{PREFIX}loan:"): json.loads(client.get(k) or b"null")
                for k in client.scan_iter(match=f"{PREFIX}loan:*", count=500)
            }
            # Opened once the acks came back: the last batch may be a moment behind.
            if set(stored) >= set(wanted) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        client.close()
    assert set(stored) == set(wanted), "loans lost or opened without a disbursement"
    for loan_id, state in stored.items():
        assert state["applied_event_ids"][0] == wanted[loan_id]


def _assert_no_raw_pii(endpoints: Endpoints, apps: list[dict[str, Any]], logs: list[Path]) -> None:
    secrets = PiiSecrets().add_events(apps)
    outputs = [t.name for t in TOPICS if t.direction == "output" and "dead-letter" not in t.name]
    findings = []
    for message in raw_messages(endpoints.kafka, outputs):
        findings += secrets.scan(message.value, f"{message.topic}@{message.offset}")
    for log in logs:
        findings += secrets.scan(log.read_bytes(), log.name)
    assert findings == []


def _server_pid(stack: EmbeddedStack, name: str) -> int:
    state = stack.read_state()
    assert state is not None
    return next(p.pid for p in state.processes if p.name == name)


@pytest.fixture
def own_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EmbeddedStack, Endpoints]]:
    """A stack this test may break: servers are killed and restarted."""
    stack = EmbeddedStack(tmp_path_factory.mktemp("fault-stack"))
    state = stack.up()
    try:
        ensure_topics({"bootstrap.servers": state.kafka})
        yield stack, Endpoints(str(state.kafka), str(state.redis))
    finally:
        stack.down()


def test_a_worker_killed_mid_stream_loses_and_duplicates_nothing(fresh_stack, start_worker):
    apps = [application(20_000 + i) for i in range(200)]
    # Small batches: the kill lands between many batches, with offsets not yet committed.
    victim = start_worker("victim", WORKER_BATCH_SIZE="8")
    victim.wait_assigned()
    stream = PacedPublisher(fresh_stack, apps, pause_s=0.02)
    stream.start()
    # `processed` counts input messages (applications).
    _poll(lambda: _processed(victim) >= 40, "the first worker to process 40 messages")
    victim.stop(kill=True)  # SIGKILL: no clean shutdown, no final offset commit
    sent_at_kill = stream.sent
    successor = start_worker("successor", WORKER_BATCH_SIZE="8")
    stream.finish()
    assert 0 < sent_at_kill < len(apps), "the kill must land while events are still arriving"

    decisions = _one_decision_each(apps, _wait_all_decided(fresh_stack, apps))
    assert successor.alive()
    disbursed = _disbursed_once(fresh_stack)
    approved = {d["application_id"] for d in decisions.values() if d["decision"] == "APPROVE"}
    assert approved and set(disbursed) == approved  # nothing lost, nothing extra
    for app in apps:
        if app["application_id"] in disbursed:
            assert disbursed[app["application_id"]] == output_event_id(
                "disbursement", app["event_id"]
            )

    _loans_opened_once(fresh_stack, disbursed)

    # The audit chain survives the crash: the successor continues it from Kafka.
    run = subprocess.run(
        [sys.executable, "-m", "greencredit", "audit", "verify"],
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": fresh_stack.kafka,
            "REDIS_URL": fresh_stack.redis,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert sum(p["records"] for p in report[DECISIONS].values()) >= len(apps)
    _assert_no_raw_pii(fresh_stack, apps, [victim.log_path, successor.log_path])


def test_redis_killed_and_restarted_mid_stream(own_stack, tmp_path):
    stack, endpoints = own_stack
    before = [application(21_000 + i) for i in range(60)]
    after = [application(21_100 + i) for i in range(80)]
    worker = Worker(endpoints, tmp_path, "redis-fault", REDIS_RETRY_ATTEMPTS="2")
    worker.start()
    try:
        worker.wait_assigned()
        stream = PacedPublisher(endpoints, before, pause_s=0.025)
        stream.start()
        _poll(lambda: _processed(worker) >= 20, "20 messages processed before the fault")
        os.kill(_server_pid(stack, "redis"), signal.SIGKILL)
        blind_from = stream.sent + 1  # published, hence decided, after the kill
        stream.finish()
        assert blind_from < len(before), "the kill must land while events are still arriving"
        # All decided before Redis comes back: everything published after the kill was
        # scored without it.
        _wait_all_decided(endpoints, before)

        stream = PacedPublisher(endpoints, after, pause_s=0.025)
        stream.start()
        _poll(lambda: stream.sent >= 20, "20 applications published before the restart")
        stack.restart("redis")  # empty: memory only, like a failover to a fresh replica
        seeing_from = stream.sent + 1  # published, hence decided, after the restart
        stream.finish()
        assert seeing_from < len(after)
        decisions = _one_decision_each(before + after, _wait_all_decided(endpoints, before + after))
        assert worker.alive() and worker.health() is not None
    finally:
        worker.stop()
    codes = {e: {r["code"] for r in d["reasons"]} for e, d in decisions.items()}
    for event_id, decision in decisions.items():
        if UNAVAILABLE in codes[event_id]:
            assert decision["decision"] == "REVIEW"  # blind scoring never approves
    for index, app in enumerate(before[blind_from:], start=blind_from):
        assert UNAVAILABLE in codes[app["event_id"]], f"#{index} was scored without Redis"
    for index, app in enumerate(after[seeing_from:], start=seeing_from):
        assert UNAVAILABLE not in codes[app["event_id"]], f"#{index} came after the restart"
    disbursed = _disbursed_once(endpoints)
    blind = {d["application_id"] for e, d in decisions.items() if UNAVAILABLE in codes[e]}
    assert blind and not blind & set(disbursed)
    _assert_no_raw_pii(endpoints, before + after, [worker.log_path])


def test_a_worker_started_before_its_broker_waits_then_works(own_stack, tmp_path):
    stack, endpoints = own_stack
    os.kill(_server_pid(stack, "kafka"), signal.SIGKILL)  # the broker is not up yet
    worker = Worker(endpoints, tmp_path, "early")
    worker.start(loglevel="info")
    try:
        waiting = re.compile(
            rf"kafka broker not reachable at {re.escape(endpoints.kafka)}; "
            r"retrying in ([\d.]+) s \(attempt (\d+)\)"
        )
        _poll(
            lambda: len(waiting.findall(worker.log_tail(20_000))) >= 3 and worker.alive(),
            "three 'not reachable' lines from a live worker",
        )
        delays = [float(d) for d, _ in waiting.findall(worker.log_tail(20_000))]
        assert delays == sorted(delays) and delays[0] < delays[-1]  # backing off

        stack.restart("kafka")
        ensure_topics({"bootstrap.servers": endpoints.kafka})
        worker.wait_assigned()
        assert "ready after" in worker.log_tail(20_000)
        apps = [application(22_000 + i) for i in range(5)]
        publisher = EventPublisher({"bootstrap.servers": endpoints.kafka}, CODEC)
        for app in apps:
            publisher.publish(APPLICATIONS, app)
        publisher.flush()
        _one_decision_each(apps, _wait_all_decided(endpoints, apps, timeout=60))
        assert worker.alive()
    finally:
        worker.stop()
