"""A bare librdkafka (confluent-kafka) loop: the Faust passthrough's twin without Faust.

What Faust costs per event is the difference between bench/passthrough_app.py and this
loop on the same broker and the same pre-loaded messages. Same work per batch as the
Faust app: take up to 256 messages (5 ms at most), copy each to the sink topic (same key,
same partition), wait for every ack, and only then commit the batch's offsets
(at-least-once, like the engine). "consume" commits without writing anything.

Like the Faust apps it serves GET /health/ with `processed_by_topic` (input messages
finished), so bench/stages.py times both the same way. Run as a script with the
environment variables bench/harness.py sets (BENCH_STAGE, BENCH_SOURCE_TOPIC, ...).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer

BATCH, WITHIN_S = 256, 0.005  # as the Faust passthrough's take_events(256, within=0.005)
processed_by_topic: Counter[str] = Counter()
failures: list[str] = []


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"pid": os.getpid(), "processed_by_topic": dict(processed_by_topic)})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the benchmark polls every 100 ms


def _delivered(error: KafkaError | None, message: Message) -> None:
    if error is not None:
        failures.append(error.str())


def _consumer(kafka: str, group: str, source: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": kafka,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # The engine's fetch bound (KAFKA_FETCH_MAX_WAIT_MS), as for the Faust apps.
            "fetch.wait.max.ms": int(os.environ.get("KAFKA_FETCH_MAX_WAIT_MS", "10")),
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([source])
    return consumer


def run(kafka: str, group: str, source: str, sink: str, copies: bool) -> None:
    """Hop until SIGTERM: take a batch, copy it, wait for the acks, commit."""
    consumer = _consumer(kafka, group, source)
    producer = Producer({"bootstrap.servers": kafka, "acks": "all", "linger.ms": 1})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            batch = [m for m in consumer.consume(BATCH, WITHIN_S) if m.error() is None]
            if not batch:
                continue
            if copies:
                for m in batch:
                    producer.produce(
                        sink, m.value(), m.key(), m.partition(), on_delivery=_delivered
                    )
                producer.flush(30)
                if failures:
                    raise RuntimeError(f"{len(failures)} copies failed: {failures[:3]}")
            consumer.commit(asynchronous=True)
            processed_by_topic[source] += len(batch)
    finally:
        consumer.close()


def main() -> None:
    """Serve /health/ in a thread and hop in the main thread."""
    port = int(os.environ.get("WORKER_WEB_PORT", "6067"))
    server = ThreadingHTTPServer(("127.0.0.1", port), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stage = os.environ.get("BENCH_STAGE", "passthrough")
    if stage not in ("passthrough", "consume"):
        raise SystemExit(f"BENCH_STAGE must be passthrough or consume, not {stage!r}")
    run(
        os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        os.environ.get("BENCH_APP_ID", f"bench-rdkafka-{stage}"),
        os.environ.get("BENCH_SOURCE_TOPIC", "greencredit.loan-applications"),
        os.environ.get("BENCH_SINK_TOPIC", "bench.passthrough-out"),
        copies=stage == "passthrough",
    )


if __name__ == "__main__":
    main()
