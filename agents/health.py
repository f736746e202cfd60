"""The worker's web pages on the Faust server: /health/ for probes, /metrics for Prometheus."""

from __future__ import annotations

from typing import Any

from .metrics import CONTENT_TYPE

__all__ = ["register"]


def register(app: Any, topics: dict[str, Any], runtime: Any) -> None:
    """Serve liveness plus simple counters, and the Prometheus metrics; no PII, no auth."""

    @app.page("/health/")
    async def health(web: Any, request: Any) -> Any:
        assignment = app.consumer.assignment() if app.consumer else set()
        return web.json(
            {
                "status": "ok",
                "processed": runtime.processed,
                # Batches finished (outputs acknowledged), per input topic: lets a driver such
                # as the demo know a tick was fully applied before it publishes the next day.
                "processed_by_topic": dict(runtime.processed_by_topic),
                "dead_lettered": runtime.dead_lettered,
                # Per tenant: rolling AUC of BP and online LR on labelled outcomes, label counts.
                "models": runtime.monitoring_snapshot(),
                "assigned_partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in assignment),
            }
        )

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type=, so the header is set as is.
        return web.bytes(runtime.metrics.render(), headers={"Content-Type": CONTENT_TYPE})
