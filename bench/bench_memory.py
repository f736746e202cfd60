"""Worker memory under a long stream: RSS sampled as events are processed.

Target (issue): worker RSS <= 400 MB after 1 million events, with no growth trend. The
stream is a mix per new customer (device signal, application, three card payments), pushed
as fast as the worker takes it with at most BACKLOG events waiting, so the broker does not
hold the whole run. The trend is a least-squares line over the second half of the samples,
once caches and allocator pools have filled.
"""

from __future__ import annotations

import time
import uuid
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import psutil  # type: ignore[import-untyped]  # no stubs installed

from bench.harness import bench_stack, bulk_producer, produce_all
from bench.load import APPLICATIONS, DEVICE_SIGNALS, PAYMENTS_PER_CUSTOMER, TRANSACTIONS, Load
from bench.plots import plot_memory
from bench.results_io import RESULTS_DIR, write_result
from greencredit.infra.worker_process import WorkerProcess

__all__ = ["main", "trend"]

RESULTS = RESULTS_DIR / "memory.json"
PLOT = RESULTS_DIR / "memory.png"
CHUNK = 5_000
BACKLOG = 20_000
TARGET_MB = 400
STALL_S = 120


def trend(samples: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Least-squares RSS slope over the second half of the run (by events processed)."""
    if not samples:
        return None
    half = samples[-1]["events"] / 2
    tail = [s for s in samples if s["events"] >= half]
    if len(tail) < 3:
        return None
    slope, intercept = np.polyfit([s["events"] for s in tail], [s["rss_mb"] for s in tail], 1)
    return {
        "from_events": tail[0]["events"],
        "mb_per_event": float(slope),
        "mb_per_100k_events": round(float(slope) * 100_000, 2),
        "intercept_mb": round(float(intercept), 1),
    }


def _processed(worker: WorkerProcess) -> int:
    """Input events the worker finished; -1 when its page did not answer in time."""
    health = worker.health()
    if health is None:
        if not worker.alive():
            raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
        return -1  # busy: try again
    # Only the topics pushed: the worker also consumes its own disbursements (to open loans).
    done = health.get("processed_by_topic") or {}
    return sum(done.get(name, 0) for name in (APPLICATIONS, DEVICE_SIGNALS, TRANSACTIONS))


def _rss_mb(pid: int) -> float:
    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def main(events: int = 1_000_000, every: int | None = None, plot: Path | None = PLOT) -> dict:
    """Push `events`, sample the worker's RSS; write bench/results/memory.json and the plot."""
    every = every or max(1_000, events // 200)
    load = Load(run=f"bench-{uuid.uuid4().hex[:8]}")
    samples: list[dict[str, Any]] = []
    with bench_stack() as bench:
        worker = WorkerProcess(bench.endpoints, bench.work, "bench-worker").start()
        try:
            worker.wait_assigned(90)
            assert worker.proc is not None
            pid = worker.proc.pid
            samples.append({"events": 0, "rss_mb": _rss_mb(pid), "seconds": 0.0})
            stream = load.mixed(events)
            producer = bulk_producer(bench.endpoints.kafka)
            produced = processed = 0
            started = progressed = time.monotonic()
            while processed < events:
                if produced < events and produced - processed < BACKLOG:
                    produced += produce_all(
                        bench.endpoints.kafka, islice(stream, CHUNK), producer=producer
                    )
                    continue
                time.sleep(0.25)
                now = _processed(worker)
                if now > processed:
                    processed, progressed = now, time.monotonic()
                elif time.monotonic() - progressed > STALL_S:
                    raise RuntimeError(
                        f"worker stalled at {processed} events:\n{worker.log_tail()}"
                    )
                if processed - samples[-1]["events"] >= every or processed >= events:
                    elapsed = round(time.monotonic() - started, 1)
                    samples.append(
                        {"events": processed, "rss_mb": _rss_mb(pid), "seconds": elapsed}
                    )
            servers = {p.name: _rss_mb(p.pid) for p in bench.state.processes}
            by_topic = (worker.health() or {}).get("processed_by_topic")
        finally:
            worker.stop()
    seconds = samples[-1]["seconds"]
    line = trend(samples)
    peak = max(s["rss_mb"] for s in samples)
    result: dict[str, Any] = {
        "benchmark": "worker_memory",
        "events": events,
        "mix": f"per customer: 1 device signal, 1 application, {PAYMENTS_PER_CUSTOMER} payments",
        "seconds": seconds,
        "events_per_second": round(events / seconds) if seconds else None,
        "rss_mb_start": samples[0]["rss_mb"],
        "rss_mb_end": samples[-1]["rss_mb"],
        "rss_mb_peak": peak,
        "second_half_trend": line,
        "servers_rss_mb_at_end": servers,
        "worker_processed_by_topic": by_topic,
        "targets": {"rss_mb": TARGET_MB, "growth": "none"},
        "met_rss": peak <= TARGET_MB,
        "samples": samples,
    }
    if plot is not None:
        result["plot"] = plot_memory(result, plot)
    return write_result(RESULTS, result)


if __name__ == "__main__":
    main()
