"""Throughput per stage on one embedded broker: bare passthrough, decode-only, full pipeline.

Target (issue): the full application pipeline >= 0.8x a bare Faust passthrough measured in
the same run. The same pre-loaded applications are read by each stage in turn (each with
its own consumer group); the rate is taken from the output records' timestamps, first to
last. Broker, Redis, the consumer under test and the recorder share this machine's cores.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from bench.harness import (
    Recorder,
    bench_stack,
    produce_all,
    rate_of,
    start_passthrough,
    stop_process,
)
from bench.load import APPLICATIONS, Load
from bench.plots import plot_throughput
from bench.results_io import RESULTS_DIR, write_result
from greencredit.infra.worker_process import WorkerProcess

__all__ = ["main"]

RESULTS = RESULTS_DIR / "pipeline.json"
PLOT = RESULTS_DIR / "throughput.png"
DECISIONS = "greencredit.decisions"
TARGET_RATIO = 0.8


def _bare_stage(bench: Any, stage: str, events: int) -> float:
    sink = f"bench.{stage}-out"
    recorder = Recorder(bench.endpoints.kafka, sink)
    proc = start_passthrough(bench, stage, APPLICATIONS, sink)
    try:
        seen = recorder.collect(events, 300)
    finally:
        stop_process(proc)
        recorder.close()
    if seen < events:
        raise RuntimeError(f"{stage} produced {seen} of {events} records in 300 s")
    return rate_of(ts for _, ts in recorder.messages)


def _pipeline_stage(bench: Any, events: int) -> float:
    recorder = Recorder(bench.endpoints.kafka, DECISIONS)
    worker = WorkerProcess(bench.endpoints, bench.work, "bench-worker").start()
    try:
        worker.wait_assigned(90)
        seen = recorder.collect(events, 900)
    finally:
        worker.stop()
        recorder.close()
    if seen < events:
        raise RuntimeError(f"the pipeline decided {seen} of {events} applications in 900 s")
    return rate_of(ts for _, ts in recorder.messages)


def main(events: int = 20_000, plot: Path | None = PLOT) -> dict[str, Any]:
    """Measure the three stages; write bench/results/pipeline.json and throughput.png."""
    load = Load(run=f"bench-{uuid.uuid4().hex[:8]}")
    with bench_stack(["bench.passthrough-out", "bench.decode-out"]) as bench:
        produce_all(bench.endpoints.kafka, load.applications(events))
        passthrough = _bare_stage(bench, "passthrough", events)
        decode = _bare_stage(bench, "decode", events)
        pipeline = _pipeline_stage(bench, events)
    result = {
        "benchmark": "throughput_per_stage",
        "events": events,
        "input": "loan applications, pre-loaded, each stage reads all of them",
        "events_per_second": {
            "passthrough": round(passthrough),
            "decode_only": round(decode),
            "pipeline": round(pipeline),
        },
        "decode_vs_passthrough": round(decode / passthrough, 3),
        "pipeline_vs_passthrough": round(pipeline / passthrough, 3),
        "targets": {"pipeline_vs_passthrough": TARGET_RATIO},
        "met": pipeline / passthrough >= TARGET_RATIO,
        "setup": "broker + Redis + the consumer under test + a recording consumer on one box",
    }
    if plot is not None:
        result["plot"] = plot_throughput(result, plot)
    return write_result(RESULTS, result)


if __name__ == "__main__":
    main()
