"""The worker supervisor on stand-in children (sleeping interpreters): restart, probe, stop;
readiness and the `greencredit health` exit code."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from greencredit.agents.health import readiness
from greencredit.cli import app
from greencredit.infra.worker_supervisor import Backoff, Supervisor, describe_exit

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_backoff_doubles_while_children_die_quickly_and_resets_after_a_stable_run():
    backoff = Backoff(base=1.0, cap=5.0, stable_s=60.0)
    assert [backoff.next_delay(ran_for=2.0) for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.next_delay(ran_for=61.0) == 1.0


def test_exits_are_described_by_signal_name_or_code():
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exited with code 3"


def test_readiness_fails_only_for_a_rebalance_longer_than_the_limit():
    assert readiness(None, 30.0) == (True, "ok")
    assert readiness(12.0, 30.0) == (True, "rebalancing")
    ready, status = readiness(31.0, 30.0)
    assert not ready and "stuck" in status


def _wait(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def supervised(request: pytest.FixtureRequest) -> Iterator[Supervisor]:
    pages: dict[int, Mapping[str, Any]] = getattr(request, "param", {})
    supervisor = Supervisor(
        2,
        lambda slot: (SLEEPER, dict(os.environ)),
        probe=pages.get,
        probe_every_s=0.2,
        stop_grace_s=5.0,
        backoff=lambda: Backoff(base=0.1),
    )
    runner = threading.Thread(target=supervisor.run, kwargs={"handle_signals": False})
    runner.start()
    _wait(lambda: all(s.proc is not None for s in supervisor.slots))
    yield supervisor
    supervisor.stop()
    runner.join(20)
    assert not runner.is_alive()


def test_a_killed_child_is_restarted_with_a_log_line(supervised, caplog):
    caplog.set_level(logging.INFO)
    slot = supervised.slots[1]
    first = slot.proc
    assert first is not None
    first.kill()
    _wait(lambda: slot.proc is not first and slot.proc is not None)
    assert slot.restarts == 1
    assert f"worker 1 (pid {first.pid}) killed by SIGKILL" in caplog.text
    assert supervised.slots[0].restarts == 0


@pytest.mark.parametrize("supervised", [{0: {"ready": False, "status": "stuck"}}], indirect=True)
def test_a_child_whose_health_says_not_ready_is_restarted(supervised):
    slot = supervised.slots[0]
    first = slot.proc
    _wait(lambda: slot.restarts >= 1)
    assert first is not None and first.returncode == -signal.SIGTERM
    assert supervised.slots[1].restarts == 0


def test_stop_terminates_every_child():
    supervisor = Supervisor(2, lambda slot: (SLEEPER, dict(os.environ)), stop_grace_s=5.0)
    runner = threading.Thread(target=supervisor.run, kwargs={"handle_signals": False})
    runner.start()
    _wait(lambda: all(s.proc is not None for s in supervisor.slots))
    procs = [s.proc for s in supervisor.slots]
    supervisor.stop()
    runner.join(20)
    assert all(p is not None and p.returncode == -signal.SIGTERM for p in procs)


class _Page(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = json.dumps({"ready": self.status == 200, "status": "x"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("status", "exit_code"), [(200, 0), (503, 1)])
def test_the_health_command_exits_non_zero_when_the_worker_is_not_ready(status, exit_code):
    handler = type("Page", (_Page,), {"status": status})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/health/"
        result = CliRunner().invoke(app, ["health", "--url", url])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == exit_code
    assert '"ready"' in result.output  # the page is shown either way
