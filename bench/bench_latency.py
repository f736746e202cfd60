"""Latency from an application's timestamp to its decision, under offered loads.

Targets (issue): p99 <= 35 ms (p50 <= 10 ms) at 500 events/s; report the load at which p99
crosses 100 ms. Each load is offered for a fixed time at a steady pace, then drained before
the next. Latency = the decision record's Kafka timestamp (set by the worker's producer)
minus the application's scheduled `occurred_at`, which is also its Kafka timestamp. The bare
passthrough is measured the same way on a topic of its own, as context.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from bench.harness import Bench, Recorder, bench_stack, start_passthrough, stop_process
from bench.load import APPLICATIONS, Load
from bench.offer import Offer, by_decision, by_value, measure_loads
from bench.plots import plot_latency
from bench.probes import wait_processed
from bench.results_io import RESULTS_DIR, write_result
from greencredit.infra.embedded import free_port
from greencredit.infra.worker_process import WorkerProcess, health_page
from greencredit.streams.codec import AvroCodec

__all__ = ["crossing", "main", "passthrough_latency", "pipeline_latency"]

RESULTS = RESULTS_DIR / "latency.json"
PLOT = RESULTS_DIR / "latency_vs_load.png"
PASS_IN, PASS_OUT = "bench.passthrough-in", "bench.passthrough-out"
DECISIONS = "greencredit.decisions"
THRESHOLD_MS = 100.0


def passthrough_latency(
    bench: Bench, load: Load, loads: list[int], seconds: float
) -> list[dict[str, Any]]:
    """The bare passthrough's latency per load, on topics of its own."""
    recorder = Recorder(bench.endpoints.kafka, PASS_OUT, from_end=True)
    port = free_port()
    proc = start_passthrough(bench, "passthrough", PASS_IN, PASS_OUT, port)

    def finished(total: int, timeout: float) -> None:
        alive = lambda: proc.poll() is None  # noqa: E731
        wait_processed(lambda: [health_page(port)], PASS_IN, total, timeout, alive)

    offer = Offer(bench.endpoints.kafka, load, recorder, PASS_IN, by_value, finished)
    try:
        return measure_loads(offer, loads, seconds)
    finally:
        stop_process(proc)


def pipeline_latency(
    bench: Bench, load: Load, loads: list[int], seconds: float, first_customer: int = 10**7
) -> list[dict[str, Any]]:
    """One worker's event-to-decision latency per load.

    Customers from `first_customer` on (10 million): never seen by the passthrough run, so
    no ID number applies twice.
    """
    recorder = Recorder(bench.endpoints.kafka, DECISIONS, from_end=True)
    worker = WorkerProcess(bench.endpoints, bench.work, "bench-latency-worker").start()

    def finished(total: int, timeout: float) -> None:
        wait_processed(lambda: [worker.health()], APPLICATIONS, total, timeout, worker.alive)

    match = by_decision(AvroCodec())
    offer = Offer(bench.endpoints.kafka, load, recorder, None, match, finished, first_customer)
    try:
        worker.wait_assigned(90)
        return measure_loads(offer, loads, seconds)
    finally:
        worker.stop()


def crossing(points: list[dict[str, Any]], threshold_ms: float = THRESHOLD_MS) -> dict[str, Any]:
    """The first load whose p99 exceeds the threshold, linearly interpolated from below.

    A load where some events got no output at all within the drain time counts as crossed.
    """
    below = None
    for point in points:
        rate = point["offered_events_per_second"]
        complete = point.get("observed") == point["offered"]
        p99 = point["p99_ms"] if complete else float("inf")
        if p99 > threshold_ms:
            if below is None:
                return {"first_load_over": rate, "text": f"at or below {rate} events/s"}
            low_rate, low_p99 = below
            estimate = None
            if complete:
                estimate = round(
                    low_rate + (threshold_ms - low_p99) * (rate - low_rate) / (p99 - low_p99)
                )
            text = f"between {low_rate} and {rate} events/s"
            if estimate is not None:
                text += f" (~{estimate} by linear interpolation)"
            return {
                "first_load_over": rate,
                "last_load_under": low_rate,
                "interpolated": estimate,
                "text": text,
            }
        below = (rate, p99)
    last = points[-1]["offered_events_per_second"] if points else None
    return {"first_load_over": None, "text": f"not crossed up to {last} events/s"}


def main(
    loads: list[int] | None = None, seconds: float = 20.0, plot: Path | None = PLOT
) -> dict[str, Any]:
    """Measure passthrough and pipeline latency per load; write latency.json and the plot."""
    loads = sorted(loads or [100, 200, 300, 500, 1000, 2000])
    load = Load(run=f"bench-{uuid.uuid4().hex[:8]}")
    with bench_stack([PASS_IN, PASS_OUT]) as bench:
        print("passthrough", flush=True)
        passthrough = passthrough_latency(bench, load, loads, seconds)
        print("pipeline", flush=True)
        pipeline = pipeline_latency(bench, load, loads, seconds)
    at_500 = next((p for p in pipeline if p["offered_events_per_second"] == 500), None)
    result: dict[str, Any] = {
        "benchmark": "latency_vs_load",
        "latency": "decision Kafka timestamp - application occurred_at (its scheduled send time)",
        "pipeline": pipeline,
        "passthrough": passthrough,
        "pipeline_p99_over_100ms": crossing(pipeline),
        "passthrough_p99_over_100ms": crossing(passthrough),
        "targets": {"at_events_per_second": 500, "p50_ms": 10, "p99_ms": 35},
        "met": bool(
            at_500
            and at_500.get("observed") == at_500["offered"]
            and at_500["p99_ms"] <= 35
            and at_500["p50_ms"] <= 10
        ),
        "setup": "broker + Redis + one worker + load generator + recorder on one box",
    }
    if plot is not None:
        result["plot"] = plot_latency(result, plot)
    return write_result(RESULTS, result)


if __name__ == "__main__":
    main()
