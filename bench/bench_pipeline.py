"""Full application pipeline vs a bare Faust passthrough, and latency at 500 events/s.

Targets (issue): pipeline throughput >= 0.8x the passthrough measured in the same run;
p99 event-to-decision latency <= 35 ms and p50 <= 10 ms at 500 events/s offered.
Everything runs on this machine: broker, Redis, the worker and the load generator share
its cores, so the numbers are for the whole stack on one box.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.results_io import write_result
from greencredit.infra.embedded import EmbeddedStack, free_port
from greencredit.infra.endpoints import Endpoints
from greencredit.infra.topic_admin import ensure_topics
from greencredit.infra.worker_process import WorkerProcess
from greencredit.streams.codec import AvroCodec
from greencredit.streams.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "pipeline.json"
N_THROUGHPUT = int(os.environ.get("BENCH_EVENTS", "20000"))
RATE = 500
SECONDS = 20


def _timestamps(kafka: str, topic: str, expected: int, timeout: float) -> dict[bytes, int]:
    """Record timestamp (ms) per message key... keyed by value for uniqueness."""
    consumer = Consumer(
        {"bootstrap.servers": kafka, "group.id": "bench-reader", "enable.auto.commit": False}
    )
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, -2) for p in parts])
    seen: dict[bytes, int] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        seen[message.value()] = message.timestamp()[1]
    consumer.close()
    return seen


def _rate(stamps: list[int]) -> float:
    stamps = sorted(stamps)
    span = (stamps[-1] - stamps[0]) / 1000
    return (len(stamps) - 1) / span if span > 0 else float("inf")


def _preload(
    endpoints: Endpoints, codec: AvroCodec, sim: Simulator, count: int, start: int
) -> None:
    producer = Producer({"bootstrap.servers": endpoints.kafka, "linger.ms": 20})
    for app in sim.applications_only(count, start):
        while True:
            try:
                producer.produce(
                    "greencredit.loan-applications",
                    codec.encode("greencredit.loan-applications", app),
                    key=app["customer_id"].encode(),
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(60)


def _passthrough(
    endpoints: Endpoints, work: Path, codec: AvroCodec, sim: Simulator
) -> tuple[float, dict[str, Any]]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka,
        "WORKER_WEB_PORT": str(free_port()),
        "PYTHONPATH": str(ROOT),
    }
    with (work / "passthrough.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", "bench.passthrough_app", "worker", "-l", "warn"],
            env=env,
            cwd=str(work),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        stamps = _timestamps(endpoints.kafka, "bench.passthrough-out", N_THROUGHPUT, 300)
        if len(stamps) < N_THROUGHPUT:
            raise RuntimeError(f"passthrough produced {len(stamps)} of {N_THROUGHPUT}")
        sent = _paced(endpoints, codec, sim, 10 * N_THROUGHPUT)
        out = _timestamps(endpoints.kafka, "bench.passthrough-out", N_THROUGHPUT + len(sent), 120)
    finally:
        proc.terminate()
        proc.wait(30)
    latency = _summary([out[v] - ts for v, ts in sent.items() if v in out], len(sent))
    return _rate(list(stamps.values())), latency


def _decisions(kafka: str, codec: AvroCodec, expected: int, timeout: float) -> dict[str, int]:
    """application_event_id -> decision record timestamp."""
    raw = _timestamps(kafka, "greencredit.decisions", expected, timeout)
    return {codec.decode(v).value["application_event_id"]: ts for v, ts in raw.items()}


def _paced(endpoints: Endpoints, codec: AvroCodec, sim: Simulator, start: int) -> dict[bytes, int]:
    """Offer RATE applications per second for SECONDS; value bytes -> send time (ms)."""
    producer = Producer({"bootstrap.servers": endpoints.kafka, "linger.ms": 0})
    sent: dict[bytes, int] = {}
    interval = 1.0 / RATE
    t0 = time.perf_counter()
    for i, app in enumerate(sim.applications_only(RATE * SECONDS, start)):
        target = t0 + i * interval
        while (now := time.perf_counter()) < target:
            time.sleep(min(target - now, 0.001))
        value = codec.encode("greencredit.loan-applications", app)
        sent[value] = int(time.time() * 1000)
        producer.produce(
            "greencredit.loan-applications",
            value,
            key=app["customer_id"].encode(),
            timestamp=sent[value],
        )
        producer.poll(0)
    producer.flush(30)
    return sent


def _summary(latencies: list[int], offered: int) -> dict[str, Any]:
    latencies = sorted(latencies)
    return {
        "offered_events_per_second": RATE,
        "offered": offered,
        "observed": len(latencies),
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "max_ms": latencies[-1],
        "mean_ms": round(statistics.mean(latencies), 1),
    }


def main() -> dict[str, Any]:
    """Run both measurements on a fresh embedded stack; write bench/results/pipeline.json."""
    work = Path(tempfile.mkdtemp(prefix="greencredit-bench-"))
    stack = EmbeddedStack(work / "stack")
    state = stack.up()
    endpoints = Endpoints(str(state.kafka), str(state.redis))
    codec = AvroCodec()
    sim = Simulator(tenant_id="bench-lender", seed=1)
    try:
        ensure_topics({"bootstrap.servers": endpoints.kafka})
        admin = AdminClient({"bootstrap.servers": endpoints.kafka})
        admin.create_topics([NewTopic("bench.passthrough-out", 6, 1)])[
            "bench.passthrough-out"
        ].result(10)
        _preload(endpoints, codec, sim, N_THROUGHPUT, 0)
        passthrough, passthrough_latency = _passthrough(endpoints, work, codec, sim)
        worker = WorkerProcess(endpoints, work, "bench-worker").start()
        try:
            worker.wait_assigned(90)
            # The passthrough's latency run left `offered` more applications in the topic:
            # the engine decides the whole backlog before its own latency run starts.
            backlog = N_THROUGHPUT + passthrough_latency["offered"]
            pipeline = _rate(list(_decisions(endpoints.kafka, codec, backlog, 900).values()))
            sent = _paced(endpoints, codec, sim, 20 * N_THROUGHPUT)
            ids = {codec.decode(v).value["event_id"]: ts for v, ts in sent.items()}
            decided = _decisions(endpoints.kafka, codec, backlog + len(sent), 120)
            latency = _summary(
                [decided[e] - ts for e, ts in ids.items() if e in decided], len(sent)
            )
        finally:
            worker.stop()
    finally:
        stack.down()
    result = {
        "benchmark": "application_pipeline",
        "events": N_THROUGHPUT,
        "passthrough_events_per_second": round(passthrough),
        "pipeline_events_per_second": round(pipeline),
        "pipeline_vs_passthrough": round(pipeline / passthrough, 3),
        "latency_at_500_per_second": latency,
        "passthrough_latency_at_500_per_second": passthrough_latency,
        "targets": {"pipeline_vs_passthrough": 0.8, "p99_ms": 35, "p50_ms": 10},
        "machine": f"{os.cpu_count()} cores, broker + redis + worker + load generator together",
    }
    return write_result(RESULTS, result)


if __name__ == "__main__":
    main()
