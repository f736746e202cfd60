"""The worker keeps the root logger at the level asked for (no spinner forcing DEBUG)."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

import faust

from greencredit.agents.kafka_compat import QuietWorker


def _root_level_after_setup(worker_class: type[faust.Worker]) -> int:
    app = faust.App("quiet-worker-test", broker="kafka://127.0.0.1:1", store="memory://")
    worker = worker_class(app, loglevel="warn", stdout=io.StringIO(), stderr=io.StringIO())
    root = logging.Logger("root-under-test", logging.WARNING)
    root.addHandler(logging.StreamHandler(io.StringIO()))
    worker.on_setup_root_logger(root, logging.WARNING)
    return root.level


def test_faust_worker_at_warn_puts_the_root_logger_at_debug() -> None:
    # Why QuietWorker exists: every library's debug call would build a record.
    assert _root_level_after_setup(faust.Worker) == logging.DEBUG


def test_quiet_worker_keeps_warn() -> None:
    assert _root_level_after_setup(QuietWorker) == logging.WARNING


def test_the_engine_app_uses_the_quiet_worker() -> None:
    # In a child process: importing the app module builds the app from the environment.
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "REDIS_URL": "redis://127.0.0.1:1",
    }
    code = "from greencredit.agents.app import app; print(app.conf.Worker.__qualname__)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == QuietWorker.__qualname__
