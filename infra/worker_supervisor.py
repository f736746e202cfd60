"""`greencredit worker --processes N`: N worker processes in one consumer group, kept alive.

A child that dies is restarted after a backoff that doubles while it keeps dying quickly
(and resets once it has run for a while), with one log line saying who died, how and when
it comes back. A child whose /health/ says not ready (a rebalance stuck past
WORKER_REBALANCE_STUCK_S) is stopped and restarted the same way: rejoining the group is
what gets a stuck member going again. SIGTERM or SIGINT stops every child cleanly
(SIGTERM, then SIGKILL after a grace period) and the supervisor exits 0.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = ["Backoff", "Supervisor", "describe_exit"]

log = logging.getLogger(__name__)

Probe = Callable[[int], Mapping[str, Any] | None]  # slot -> its health page, None if silent


@dataclass
class Backoff:
    """Restart delays: `base`, doubling per quick death up to `cap`; reset after `stable_s`."""

    base: float = 1.0
    cap: float = 30.0
    stable_s: float = 60.0
    failures: int = 0

    def next_delay(self, ran_for: float) -> float:
        """The delay before restarting a child that ran `ran_for` seconds."""
        if ran_for >= self.stable_s:
            self.failures = 0
        delay = min(self.cap, self.base * 2**self.failures)
        self.failures += 1
        return delay


def describe_exit(returncode: int) -> str:
    """'killed by SIGKILL' or 'exited with code 1'."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class _Slot:
    number: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float | None = None
    restarts: int = 0
    kill_at: float | None = None  # SIGTERM sent for a restart: SIGKILL if still alive then
    backoff: Backoff = field(default_factory=Backoff)


class Supervisor:
    """Runs `processes` children made by `command(slot)`; see the module docstring."""

    def __init__(
        self,
        processes: int,
        command: Callable[[int], tuple[Sequence[str], Mapping[str, str]]],
        *,
        probe: Probe | None = None,
        probe_every_s: float = 5.0,
        stop_grace_s: float = 30.0,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self.command = command
        self.probe = probe
        self.probe_every_s = probe_every_s
        self.stop_grace_s = stop_grace_s
        self.slots = [_Slot(n, backoff=backoff()) for n in range(processes)]
        self._stop = threading.Event()

    def run(self, handle_signals: bool = True) -> int:
        """Supervise until SIGTERM/SIGINT (or stop()); returns 0 after a clean stop.

        `handle_signals` False lets a thread other than the main one run it (tests).
        """
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        previous = {s: signal.signal(s, self._on_signal) for s in signals}
        try:
            for slot in self.slots:
                self._start(slot)
            next_probe = time.monotonic() + self.probe_every_s
            while not self._stop.wait(0.2):
                now = time.monotonic()
                for slot in self.slots:
                    self._check(slot, now)
                if self.probe is not None and now >= next_probe:
                    next_probe = now + self.probe_every_s
                    for slot in self.slots:
                        self._probe(slot)
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0

    def stop(self) -> None:
        """Ask run() to stop the children and return (also what SIGTERM/SIGINT do)."""
        self._stop.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.warning("supervisor: %s: stopping all workers", signal.Signals(signum).name)
        self._stop.set()

    def _start(self, slot: _Slot) -> None:
        argv, env = self.command(slot.number)
        slot.proc = subprocess.Popen(list(argv), env=dict(env))  # noqa: S603 - our own command
        slot.started, slot.restart_at = time.monotonic(), None
        log.warning("supervisor: worker %d started (pid %d)", slot.number, slot.proc.pid)

    def _check(self, slot: _Slot, now: float) -> None:
        if slot.restart_at is not None:
            if now >= slot.restart_at and not self._stop.is_set():
                slot.restarts += 1
                self._start(slot)
            return
        if slot.proc is None or slot.proc.poll() is None:
            if slot.proc is not None and slot.kill_at is not None and now >= slot.kill_at:
                log.error("supervisor: worker %d ignored SIGTERM: killing it", slot.number)
                slot.proc.kill()
                slot.kill_at = None
            return
        slot.kill_at = None
        ran_for = now - slot.started
        delay = slot.backoff.next_delay(ran_for)
        slot.restart_at = now + delay
        log.error(
            "supervisor: worker %d (pid %d) %s after %.0fs; restarting in %.1fs (restart %d)",
            slot.number,
            slot.proc.pid,
            describe_exit(slot.proc.returncode),
            ran_for,
            delay,
            slot.restarts + 1,
        )

    def _probe(self, slot: _Slot) -> None:
        if self.probe is None or slot.proc is None or slot.proc.poll() is not None:
            return
        page = self.probe(slot.number)
        if page is None or page.get("ready", True):
            return  # a silent worker is starting or dying: the exit check handles the latter
        log.error(
            "supervisor: worker %d (pid %d) not ready (%s): stopping it for a restart",
            slot.number,
            slot.proc.pid,
            page.get("status"),
        )
        slot.proc.send_signal(signal.SIGTERM)
        slot.kill_at = time.monotonic() + self.stop_grace_s

    def _stop_all(self) -> None:
        running = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        self._terminate(running)
        log.warning("supervisor: all workers stopped")

    def _terminate(self, procs: list[subprocess.Popen[bytes]]) -> None:
        """SIGTERM, wait up to the grace period, then SIGKILL what is left."""
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace_s
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("supervisor: worker pid %d ignored SIGTERM: killing it", proc.pid)
                proc.kill()
                proc.wait(timeout=10)
