"""A `greencredit worker` in a child process: used by the demo, the benchmarks and the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from .embedded import free_port
from .endpoints import Endpoints

__all__ = ["WorkerProcess"]


class WorkerProcess:
    """Start, probe and stop one worker against explicit endpoints."""

    def __init__(
        self, endpoints: Endpoints, work_dir: Path, name: str = "worker", **env: str
    ) -> None:
        self.port = free_port()
        work_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = work_dir / f"{name}.log"
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka,
            "REDIS_URL": endpoints.redis,
            "WORKER_WEB_PORT": str(self.port),
            "GREENCREDIT_STATE_DIR": str(work_dir / f"{name}-state"),
            **env,
        }
        self.cwd = work_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, loglevel: str = "warning", via_faust: bool = False) -> WorkerProcess:
        """Launch the worker (or its `faust -A ... worker` form); output goes to `log_path`."""
        argv = [sys.executable, "-m", "greencredit", "worker", "--loglevel", loglevel]
        if via_faust:
            argv = [
                sys.executable,
                "-m",
                "faust",
                "-A",
                "greencredit.agents.app",
                "worker",
                "-l",
                "warn",
                "--web-port",
                str(self.port),
                "--web-host",
                "127.0.0.1",
            ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.cwd),
            )
        return self

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc is not None and self.proc.poll() is None

    def health(self) -> dict[str, Any] | None:
        """The worker's health page, or None when it does not answer."""
        try:
            url = f"http://127.0.0.1:{self.port}/health/"
            with urllib.request.urlopen(url, timeout=2) as response:
                return dict(json.loads(response.read()))
        except (OSError, ValueError):
            return None

    def wait_assigned(self, timeout: float = 60.0) -> dict[str, Any]:
        """Block until the worker owns partitions; raise with its log when it dies or stalls."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"worker exited:\n{self.log_tail()}")
            health = self.health()
            if health and health["assigned_partitions"]:
                return health
            time.sleep(0.3)
        raise RuntimeError(f"worker got no partitions in {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, kill: bool = False, timeout: float = 30.0) -> None:
        """SIGTERM (clean shutdown, offsets committed) or SIGKILL (a crash)."""
        if not self.alive():
            return
        assert self.proc is not None  # noqa: S101 - alive() checked it
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the worker's log, for error messages."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]
