"""The worker's web pages on the Faust server: /health/ for probes, /metrics for Prometheus."""

from __future__ import annotations

import os
from typing import Any

from .metrics import CONTENT_TYPE

__all__ = ["readiness", "register"]


def readiness(rebalancing_for: float | None, stuck_after: float) -> tuple[bool, str]:
    """Ready unless one rebalance has lasted longer than `stuck_after` seconds.

    A worker inside a rebalance owns no partitions it may process: past the bound the
    group (or this worker's part in it) is stuck, and only a restart helps.
    """
    if rebalancing_for is None:
        return True, "ok"
    if rebalancing_for <= stuck_after:
        return True, "rebalancing"
    return False, f"rebalance stuck for {rebalancing_for:.0f}s (limit {stuck_after:.0f}s)"


def register(app: Any, topics: dict[str, Any], runtime: Any) -> None:
    """Serve liveness plus simple counters, and the Prometheus metrics; no PII, no auth."""

    @app.page("/health/")
    async def health(web: Any, request: Any) -> Any:
        assignment = app.consumer.assignment() if app.consumer else set()
        rebalancing_for = runtime.rebalancing_for(bool(app.rebalancing))
        ready, status = readiness(rebalancing_for, runtime.settings.worker_rebalance_stuck_s)
        return web.json(
            {
                "status": status,
                "ready": ready,
                "pid": os.getpid(),
                "rebalancing_for_s": None if rebalancing_for is None else round(rebalancing_for, 1),
                "processed": runtime.processed,
                # Batches finished (outputs acknowledged), per input topic: lets a driver such
                # as the demo know a tick was fully applied before it publishes the next day.
                "processed_by_topic": dict(runtime.processed_by_topic),
                # Per "topic:partition": the offset after the last finished message. Survives
                # reassignment (merge the pages of all workers, dead ones included, by max).
                "finished_offsets": dict(runtime.finished_offsets),
                "dead_lettered": runtime.dead_lettered,
                # Per tenant: rolling AUC of BP and online LR on labelled outcomes, label counts.
                "models": runtime.monitoring_snapshot(),
                "assigned_partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in assignment),
            },
            status=200 if ready else 503,
        )

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type=, so the header is set as is.
        return web.bytes(runtime.metrics.render(), headers={"Content-Type": CONTENT_TYPE})
