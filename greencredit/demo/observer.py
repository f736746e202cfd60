"""A background reader of every topic: what went in, what came out, and when.

It reads without a consumer group (all partitions assigned), so it never delays the
workers' group and sees every record, including redeliveries (kept apart: outputs are
deduplicated by event id here, as any downstream consumer should). With a dump directory it
writes each decoded record, masked, to <dir>/<topic>.jsonl.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import IO, Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from greencredit.streams.codec import AvroCodec
from greencredit.streams.errors import CodecError
from greencredit.streams.jsonform import to_json_form
from greencredit.streams.masking import mask_record
from greencredit.streams.topics import TOPICS

__all__ = ["Observer"]

INPUTS = (
    "greencredit.loan-applications",
    "greencredit.transactions",
    "greencredit.device-signals",
    "greencredit.repayments",
    "greencredit.loan-servicing",
    "greencredit.analyst-feedback",
    "greencredit.lender-config",
    "greencredit.loan-clock",
)


class Observer(threading.Thread):
    """Consumes all topics into counters and indexes; thread-safe snapshots via `lock`."""

    def __init__(self, client_config: dict[str, Any], codec: AvroCodec, dump: Path | None) -> None:
        super().__init__(name="demo-observer", daemon=True)
        self._config = client_config
        self._codec = codec
        self._halt = threading.Event()
        self.lock = threading.Lock()
        self.records: dict[str, int] = Counter()  # topic -> records read (with redeliveries)
        self.seen: dict[str, set[str]] = defaultdict(set)  # topic -> distinct event ids
        self.decisions: dict[str, dict[str, Any]] = {}  # application event id -> decision
        self.alerts: dict[str, dict[str, Any]] = {}  # alert event id -> alert
        self.disbursements: dict[str, dict[str, Any]] = {}  # event id -> disbursement
        self.escalations: dict[str, dict[str, Any]] = {}  # event id -> escalation
        self.dead_letters: dict[str, dict[str, Any]] = {}
        self.loan_of_transaction: dict[str, str] = {}  # txn event id -> loan id
        self.input_ms: dict[str, int] = {}  # application event id -> broker timestamp
        self.decided_ms: dict[str, int] = {}  # application event id -> decision's timestamp
        self.decision_order: list[str] = []  # application event ids in decision order
        self.errors = 0
        # Every decision record read, redeliveries included: (broker timestamp ms, application
        # event id), to time a takeover; and each application's input partition.
        self.decision_records: list[tuple[int, str]] = []
        self.application_partition: dict[str, int] = {}
        self._dump_dir = dump
        self._files: dict[str, IO[bytes]] = {}

    def stop(self) -> None:
        """Ask the thread to finish after its current poll."""
        self._halt.set()

    def run(self) -> None:
        consumer = Consumer(
            {**self._config, "group.id": "greencredit-demo-observer", "enable.auto.commit": False}
        )
        try:
            partitions = []
            metadata = consumer.list_topics(timeout=10)
            for spec in TOPICS:
                name = spec.name
                if name in metadata.topics:
                    partitions += [
                        TopicPartition(name, p, -2) for p in metadata.topics[name].partitions
                    ]
            consumer.assign(partitions)
            while not self._halt.is_set():
                for message in consumer.consume(500, timeout=0.2):
                    if message.error() is None:
                        self._take(message)
        finally:
            consumer.close()
            for handle in self._files.values():
                handle.close()

    def _take(self, message: Any) -> None:
        topic = message.topic()
        try:
            decoded = self._codec.decode(message.value(), topic)
        except CodecError:
            with self.lock:
                self.records[topic] += 1
                self.errors += 1
            self._dump(
                topic,
                {"undecodable": True, "partition": message.partition(), "offset": message.offset()},
            )
            return
        event = decoded.value
        _, stamp = message.timestamp()
        with self.lock:
            self.records[topic] += 1
            if topic == "greencredit.decisions":
                self.decision_records.append((stamp, event["application_event_id"]))
            elif topic == "greencredit.loan-applications":
                self.application_partition[event["event_id"]] = message.partition()
            new = event["event_id"] not in self.seen[topic]
            self.seen[topic].add(event["event_id"])
            if new:
                self._index(topic, event, stamp)
        if new:
            self._dump(topic, to_json_form(None, mask_record(event)))

    def _index(self, topic: str, event: dict[str, Any], stamp: int) -> None:
        if topic == "greencredit.loan-applications":
            self.input_ms[event["event_id"]] = stamp
        elif topic == "greencredit.transactions" and event.get("loan_id"):
            self.loan_of_transaction[event["event_id"]] = event["loan_id"]
        elif topic == "greencredit.decisions":
            app_event = event["application_event_id"]
            if app_event not in self.decisions:
                self.decisions[app_event] = event
                self.decision_order.append(app_event)
                self.decided_ms[app_event] = stamp
        elif topic == "greencredit.fraud-alerts":
            self.alerts[event["event_id"]] = event
        elif topic == "greencredit.disbursements":
            self.disbursements[event["event_id"]] = event
        elif topic == "greencredit.delinquency-escalations":
            self.escalations[event["event_id"]] = event
        elif topic == "greencredit.dead-letter":
            self.dead_letters[event["event_id"]] = event

    def latencies_ms(self, last: int | None = None) -> list[float]:
        """Application -> decision latencies from broker timestamps, newest `last`.

        Both timestamps come from their producers' clocks on this machine; decisions whose
        application record was not seen are left out.
        """
        with self.lock:
            order = self.decision_order if last is None else self.decision_order[-last:]
            return [
                float(self.decided_ms[e] - self.input_ms[e]) for e in order if e in self.input_ms
            ]

    def _dump(self, topic: str, record: Any) -> None:
        if self._dump_dir is None:
            return
        handle = self._files.get(topic)
        if handle is None:
            self._dump_dir.mkdir(parents=True, exist_ok=True)
            handle = self._files[topic] = (self._dump_dir / f"{topic}.jsonl").open("ab")
        handle.write(orjson.dumps(record, default=str) + b"\n")
