"""Watching a process from outside while it works: its CPU time (/proc) and a health counter.

Both run in a thread of the benchmark process and keep (wall-clock time, value) samples for
the pure functions of bench/stats.py. Reading /proc costs the watched process nothing; a
health-page poll costs it one small HTTP request, so polls are spaced (100 ms).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import Sample
from greencredit.infra.worker_process import health_page

__all__ = ["CpuSampler", "HealthPoller", "process_tree_cpu", "processed", "wait_processed"]

_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return found


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of `pid`, its waited-for children (cutime, cstime) and its
    live descendants. A descendant that exits between two readings is counted only if
    its parent waits for it (the kernel then adds it to the parent's cutime/cstime).
    """
    total = 0.0
    pending = [pid]
    first = True
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
        except OSError:
            if first:
                raise
            continue
        # Field 2 (comm) may hold spaces; the fields after its closing parenthesis are fixed.
        fields = stat.rsplit(")", 1)[1].split()
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        total += (utime + stime + cutime + cstime) / _TICKS
        pending += _children(current)
        first = False
    return total


class _Sampler:
    """Calls `read` every `interval` s in a daemon thread, keeping (time.time(), value)."""

    def __init__(self, read: Callable[[], float | None], interval: float) -> None:
        self.samples: list[Sample] = []
        self._read = read
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def start(self) -> _Sampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self._read()
            except OSError:  # the process is gone
                return
            if value is not None:
                # Stamped when the answer came: the value is what it was then.
                with self._lock:
                    self.samples.append((time.time(), value))
            self._stop.wait(self._interval)

    def snapshot(self) -> list[Sample]:
        """The samples so far."""
        with self._lock:
            return list(self.samples)

    def last(self) -> float | None:
        """The latest value, None before the first."""
        with self._lock:
            return self.samples[-1][1] if self.samples else None

    def stop(self) -> list[Sample]:
        """Stop sampling; every sample taken."""
        self._stop.set()
        self._thread.join(5)
        return self.snapshot()


class CpuSampler(_Sampler):
    """CPU seconds of a process tree, every 20 ms."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(lambda: process_tree_cpu(pid), interval)


class HealthPoller(_Sampler):
    """One counter of a health page (the worker's or the passthrough's), every 100 ms.

    `pick` takes the page and returns the counter; a page that does not answer is skipped.
    """

    def __init__(
        self, port: int, pick: Callable[[dict[str, Any]], float], interval: float = 0.1
    ) -> None:
        def read() -> float | None:
            page = health_page(port)
            return None if page is None else pick(page)

        super().__init__(read, interval)

    def wait_for(self, total: int, timeout: float, alive: Callable[[], bool]) -> float:
        """Until the counter reaches `total`; raise if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.last()
            if value is not None and value >= total:
                return value
            if not alive():
                raise RuntimeError("the process under test exited")
            time.sleep(0.1)
        raise RuntimeError(f"counter at {self.last()} of {total} after {timeout:.0f} s")


def wait_processed(
    pages: Callable[[], list[dict[str, Any] | None]],
    topic: str,
    total: int,
    timeout: float,
    alive: Callable[[], bool],
) -> None:
    """Until the processes' pages together count `total` messages of `topic` finished.

    Raise if a process dies or time runs out. Polls every 200 ms; a silent page counts 0.
    """
    pick = processed(topic)
    deadline = time.monotonic() + timeout
    done = 0.0
    while time.monotonic() < deadline:
        done = sum(pick(page) for page in pages() if page is not None)
        if done >= total:
            return
        if not alive():
            raise RuntimeError("the process under test exited")
        time.sleep(0.2)
    raise RuntimeError(f"{done:.0f} of {total} {topic} messages finished after {timeout:.0f} s")


def processed(topic: str) -> Callable[[dict[str, Any]], float]:
    """Picks the input messages finished on `topic` from a health page."""
    return lambda page: float((page.get("processed_by_topic") or {}).get(topic, 0))
