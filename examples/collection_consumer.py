"""How a collection system subscribes to delinquency escalations.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT python examples/collection_consumer.py

It joins its own consumer group, decodes each escalation (Confluent wire format, Avro),
drops redeliveries by event_id, and routes by `collection_mode`: AUTOMATIC escalations go
to the messaging robot (app push, SMS, auto-debit retry), MANUAL ones to the agents' work
queue (phone call, agency, legal). CURED / RESOLVED close the case in both. Offsets are
committed only after an escalation was handled, so a crash replays rather than loses.
Outside this repository, decode with any Avro library and the schema the id names
(Schema Registry, or schemas/manifest.json).
"""

from __future__ import annotations

import os
import signal
import sys

from confluent_kafka import Consumer

from greencredit.streams.codec import AvroCodec
from greencredit.streams.errors import CodecError

TOPIC = "greencredit.delinquency-escalations"


def handle(escalation: dict, seen: set[str]) -> None:
    """Route one escalation; print what a real system would enqueue."""
    if escalation["event_id"] in seen:
        return  # at-least-once delivery: the same escalation can arrive twice
    seen.add(escalation["event_id"])
    queue = {"AUTOMATIC": "robot", "MANUAL": "agents", "NONE": "close"}[
        escalation["collection_mode"]
    ]
    print(
        f"[{queue:>6}] {escalation['loan_id']} {escalation['transition']:<11} "
        f"{escalation['previous_level']} -> {escalation['level']} via {escalation['channel']} "
        f"(dpd {escalation['days_past_due']}, contact {escalation.get('contact_phone_masked')})",
        flush=True,
    )


def main() -> int:
    """Consume until interrupted (or until idle for IDLE_SECONDS, for demos)."""
    consumer = Consumer(
        {
            "bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            "group.id": os.environ.get("GROUP_ID", "collection-system"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,  # short: the embedded broker's first join waits half of it
        }
    )
    codec, seen = AvroCodec(), set[str]()
    idle_limit = float(os.environ.get("IDLE_SECONDS", "0")) or None
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    consumer.subscribe([TOPIC])
    idle = 0.0
    try:
        while not stop:
            message = consumer.poll(1.0)
            if message is None:
                idle += 1.0
                if idle_limit and idle >= idle_limit:
                    break
                continue
            idle = 0.0
            if message.error():
                print(f"kafka error: {message.error()}", file=sys.stderr)
                continue
            try:
                handle(codec.decode(message.value(), TOPIC).value, seen)
            except CodecError as exc:
                print(
                    f"skipping undecodable message at offset {message.offset()}: {exc}",
                    file=sys.stderr,
                )
            consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
