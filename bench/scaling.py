"""Scaling: decision throughput of 1 vs 2 workers on the 6-partition loan-applications topic.

The workers join first (all partitions assigned,
none idle), a warm-up batch is decided, then the measured applications are produced at
once and the rate is read from the decisions' timestamps (read once the workers' counters
say they are done). On a 2-core box the workers share the cores with the broker and Redis,
so this shows the overhead of a second worker more than its gain; on a box with spare cores
it shows the gain.
"""

from __future__ import annotations

import time
from typing import Any

from bench.harness import Bench, Recorder, produce_all
from bench.load import APPLICATIONS, Load
from bench.probes import wait_processed
from bench.stats import rate_of
from greencredit.infra.worker_process import WorkerProcess
from greencredit.streams.topics import topic

__all__ = ["measure_workers"]

DECISIONS = "greencredit.decisions"
WARM_UP = 500


def _wait_balanced(workers: list[WorkerProcess], partitions: int, timeout: float = 120) -> None:
    """Until every worker owns some of the topic's partitions and together all of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owned = []
        for worker in workers:
            if not worker.alive():
                raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
            health = worker.health() or {}
            owned.append(
                [p for p in health.get("assigned_partitions", []) if p.startswith(APPLICATIONS)]
            )
        if all(owned) and sum(map(len, owned)) == partitions:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{len(workers)} workers did not share {partitions} partitions")


def measure_workers(
    bench: Bench, load: Load, count: int, events: int, first_customer: int
) -> dict[str, Any]:
    """`count` workers in one group decide `events` applications produced once they share
    the partitions (and decided a warm-up); decisions per second from their timestamps.
    """
    partitions = topic(APPLICATIONS).partitions
    workers = [
        WorkerProcess(bench.endpoints, bench.work, f"bench-scaling-{count}-{i}").start()
        for i in range(count)
    ]

    def pages() -> list[dict[str, Any] | None]:
        return [w.health() for w in workers]

    def alive() -> bool:
        return all(w.alive() for w in workers)

    try:
        for worker in workers:
            worker.wait_assigned(90)
        _wait_balanced(workers, partitions)
        produce_all(bench.endpoints.kafka, load.applications(WARM_UP, first_customer))
        wait_processed(pages, APPLICATIONS, WARM_UP, 120, alive)
        # Encoded before the clock matters; the recorder keeps only what follows the warm-up.
        batch = list(load.applications(events, first_customer + WARM_UP))
        recorder = Recorder(bench.endpoints.kafka, DECISIONS, from_end=True)
        produce_all(bench.endpoints.kafka, batch)
        # Wait on the workers' counters; the decisions are read afterwards (Recorder).
        wait_processed(pages, APPLICATIONS, WARM_UP + events, 900, alive)
        shares = [
            ((w.health() or {}).get("processed_by_topic") or {}).get(APPLICATIONS, 0)
            for w in workers
        ]
    finally:
        for worker in workers:
            worker.stop()
    seen = recorder.collect(events, 120)
    if seen < events:
        raise RuntimeError(f"{count} worker(s) decided {seen} of {events}")
    return {
        "workers": count,
        "decisions_per_second": round(rate_of(ts for _, ts in recorder.messages)),
        "applications_per_worker_with_warm_up": shares,
    }
