"""Latency from an application's timestamp to its decision, under offered loads.

Targets (issue): p99 <= 35 ms (p50 <= 10 ms) at 500 events/s; report the load at which p99
crosses 100 ms. Each load is offered for a fixed time at a steady pace, then drained before
the next. Latency = the decision record's Kafka timestamp (set by the worker's producer)
minus the application's scheduled `occurred_at`, which is also its Kafka timestamp. The bare
passthrough is measured the same way on a topic of its own, as context.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.harness import (
    Bench,
    PacedRun,
    Recorder,
    bench_stack,
    latency_summary,
    send_paced,
    start_passthrough,
    stop_process,
)
from bench.load import APPLICATIONS, Load, Outgoing
from bench.plots import plot_latency
from bench.results_io import RESULTS_DIR, write_result
from greencredit.infra.worker_process import WorkerProcess
from greencredit.streams.codec import AvroCodec

__all__ = ["crossing", "main"]

RESULTS = RESULTS_DIR / "latency.json"
PLOT = RESULTS_DIR / "latency_vs_load.png"
PASS_IN, PASS_OUT = "bench.passthrough-in", "bench.passthrough-out"
DECISIONS = "greencredit.decisions"
WARM_UP = 200  # events before the first load: joins, model loading, first batches
THRESHOLD_MS = 100.0


class _Offer:
    """Offers loads to one consumer and matches its outputs to what was sent."""

    def __init__(
        self,
        kafka: str,
        load: Load,
        recorder: Recorder,
        topic: str | None,
        match: Callable[[PacedRun, list[tuple[bytes, int]]], list[float]],
        first_customer: int = 0,
    ) -> None:
        self.kafka, self.load, self.recorder, self.topic = kafka, load, recorder, topic
        self.match = match
        self.next_n = first_customer
        self.expected = 0

    def _build(self, base: int) -> Callable[[int, datetime], Outgoing]:
        return lambda i, due: self.load.encode(APPLICATIONS, self.load.application(base + i, due))

    def run(self, rate: int, seconds: float) -> tuple[PacedRun, list[tuple[bytes, int]], int]:
        start = len(self.recorder.messages)
        paced = send_paced(self.kafka, self._build(self.next_n), rate, seconds, self.topic)
        count = len(paced.scheduled_by_id)
        self.next_n += count
        self.expected += count
        # Drain: at most a minute plus the time a slow pipeline (200/s) would need.
        seen = self.recorder.collect(self.expected, 60 + count / 200)
        return paced, self.recorder.messages[start:seen], count


def _measure(offer: _Offer, loads: list[int], seconds: float) -> list[dict[str, Any]]:
    offer.run(50, WARM_UP / 50)
    points = []
    for rate in loads:
        paced, outputs, count = offer.run(rate, seconds)
        latencies = offer.match(paced, outputs)
        points.append(
            {
                "offered_events_per_second": rate,
                "seconds": seconds,
                "generator_events_per_second": round(paced.achieved_rate, 1),
                "generator_max_behind_ms": round(paced.max_behind_ms, 1),
                **latency_summary(latencies, count),
            }
        )
        print(f"  {rate}/s: {points[-1]}", flush=True)
    return points


def _by_value(paced: PacedRun, outputs: list[tuple[bytes, int]]) -> list[float]:
    return [ts - paced.scheduled_by_value[v] for v, ts in outputs if v in paced.scheduled_by_value]


def _by_decision(codec: AvroCodec) -> Callable[[PacedRun, list[tuple[bytes, int]]], list[float]]:
    def match(paced: PacedRun, outputs: list[tuple[bytes, int]]) -> list[float]:
        latencies: list[float] = []
        for value, ts in outputs:
            app_id = codec.decode(value).value["application_event_id"]
            if app_id in paced.scheduled_by_id:
                latencies.append(ts - paced.scheduled_by_id[app_id])
        return latencies

    return match


def _passthrough(bench: Bench, load: Load, loads: list[int], seconds: float) -> list[dict]:
    recorder = Recorder(bench.endpoints.kafka, PASS_OUT)
    proc = start_passthrough(bench, "passthrough", PASS_IN, PASS_OUT)
    offer = _Offer(bench.endpoints.kafka, load, recorder, PASS_IN, _by_value)
    try:
        return _measure(offer, loads, seconds)
    finally:
        stop_process(proc)
        recorder.close()


def _pipeline(bench: Bench, load: Load, loads: list[int], seconds: float) -> list[dict]:
    recorder = Recorder(bench.endpoints.kafka, DECISIONS)
    worker = WorkerProcess(bench.endpoints, bench.work, "bench-worker").start()
    # Customers from 10 million on: never seen by the passthrough run.
    offer = _Offer(bench.endpoints.kafka, load, recorder, None, _by_decision(AvroCodec()), 10**7)
    try:
        worker.wait_assigned(90)
        return _measure(offer, loads, seconds)
    finally:
        worker.stop()
        recorder.close()


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
        passthrough = _passthrough(bench, load, loads, seconds)
        print("pipeline", flush=True)
        pipeline = _pipeline(bench, load, loads, seconds)
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
