"""`greencredit demo --kill-worker-at-day N`: crash one worker mid-stream and time the takeover.

The takeover time is measured from the kill to the first decision (by broker timestamp)
on an application of a loan-applications partition the killed worker owned: whoever
decides it (a surviving worker, or the killed one restarted by its supervisor), that is
when the stream on those partitions moved again.
"""

from __future__ import annotations

import time
from typing import Any

from greencredit.infra.worker_process import WorkerPool

from .observer import Observer

__all__ = ["WorkerKill"]

APPLICATIONS = "greencredit.loan-applications"


class WorkerKill:
    """SIGKILLs worker `slot` of `pool` once, when day `day` starts (never when `day` is None)."""

    def __init__(self, pool: WorkerPool, slot: int, day: int | None) -> None:
        self.pool = pool
        self.slot = slot
        self.day = day
        self.killed_ms: int | None = None
        self.pid: int | None = None
        self.partitions: set[int] = set()  # its loan-applications partitions

    def at_day(self, day: int) -> None:
        """The demo's per-day hook: kill on the chosen day."""
        if day != self.day or self.killed_ms is not None:
            return
        page = self.pool.kill(self.slot)
        self.killed_ms = int(time.time() * 1000)
        self.pid = int(page["pid"])
        self.partitions = {
            int(p.rsplit(":", 1)[1])
            for p in page.get("assigned_partitions", [])
            if p.startswith(APPLICATIONS + ":")
        }

    def report(self, observer: Observer) -> dict[str, Any]:
        """What was killed and how long until its partitions were decided on again."""
        if self.killed_ms is None:
            return {"killed": None, "reason": f"the demo never reached day {self.day}"}
        with observer.lock:
            stamps = [
                stamp
                for stamp, app in observer.decision_records
                if stamp > self.killed_ms
                and observer.application_partition.get(app) in self.partitions
            ]
        first = (min(stamps) - self.killed_ms) / 1000 if stamps else None
        return {
            "killed": f"worker {self.slot} (pid {self.pid}) at day {self.day}",
            "its_application_partitions": sorted(self.partitions),
            "kill_to_first_decision_on_its_partitions_s": first,
        }
