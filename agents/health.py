"""The worker's health page (GET /health/ on the Faust web server) for probes and operators."""

from __future__ import annotations

from typing import Any

__all__ = ["register"]


def register(app: Any, topics: dict[str, Any], runtime: Any) -> None:
    """Serve liveness plus simple counters; no PII, nothing that needs auth."""

    @app.page("/health/")
    async def health(web: Any, request: Any) -> Any:
        assignment = app.consumer.assignment() if app.consumer else set()
        return web.json(
            {
                "status": "ok",
                "processed": runtime.processed,
                "dead_lettered": runtime.dead_lettered,
                "assigned_partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in assignment),
            }
        )
