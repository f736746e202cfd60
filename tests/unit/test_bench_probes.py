"""The benchmark's CPU reading of a process tree (/proc), on this test's own process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.probes import process_tree_cpu

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_own_cpu_grows_with_work() -> None:
    before = process_tree_cpu(os.getpid())
    _spin(0.2)
    assert process_tree_cpu(os.getpid()) - before >= 0.15


def test_live_children_are_counted() -> None:
    # A worker that starts helper processes is charged for them while they run.
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        own = time.process_time() + sum(os.times()[2:4])
        assert process_tree_cpu(os.getpid()) - own >= 0.1
    finally:
        child.kill()
        child.wait()


def test_a_missing_process_is_an_error() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(OSError):
        process_tree_cpu(child.pid)
