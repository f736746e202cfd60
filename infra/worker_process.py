"""Workers in child processes (one, or N under a supervisor): for the demo, benchmarks, tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .embedded import free_port
from .endpoints import Endpoints

__all__ = ["WorkerPool", "WorkerProcess", "free_port_range", "health_page"]


def health_page(port: int, host: str = "127.0.0.1") -> dict[str, Any] | None:
    """A worker's /health/ document (200 ready or 503 not ready); None when it does not answer."""
    url = f"http://{host}:{port}/health/"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        try:
            return dict(json.loads(exc.read()))
        except ValueError:
            return None
    except (OSError, ValueError):
        return None


class WorkerProcess:
    """Start, probe and stop one worker against explicit endpoints."""

    def __init__(
        self, endpoints: Endpoints, work_dir: Path, name: str = "worker", **env: str
    ) -> None:
        self.port = free_port()
        work_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = work_dir / f"{name}.log"
        self.env = _worker_env(endpoints, work_dir, name, self.port, env)
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
        """The worker's health page (also when it says 503 not ready), None when silent."""
        return health_page(self.port)

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


def free_port_range(count: int, attempts: int = 50) -> int:
    """A base port with `count` consecutive ports free on 127.0.0.1 right now."""
    for _ in range(attempts):
        base = free_port()
        if base + count > 65_535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports found")


class WorkerPool:
    """`greencredit worker --processes N` in a child process: N workers under one supervisor.

    Worker i serves /health/ on `base_port + i`; the supervisor restarts any that dies.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        work_dir: Path,
        processes: int,
        name: str = "workers",
        **env: str,
    ) -> None:
        self.processes = processes
        self.base_port = free_port_range(processes)
        work_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = work_dir / f"{name}.log"
        self.env = _worker_env(endpoints, work_dir, name, self.base_port, env)
        self.cwd = work_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, loglevel: str = "warning") -> WorkerPool:
        """Launch the supervisor (in a session of its own, so a crash cleanup reaches all)."""
        argv = [sys.executable, "-m", "greencredit", "worker", "--loglevel", loglevel]
        argv += ["--processes", str(self.processes)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.cwd),
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        """Whether the supervisor is still running."""
        return self.proc is not None and self.proc.poll() is None

    def health(self, slot: int) -> dict[str, Any] | None:
        """Worker `slot`'s health page, or None when it does not answer."""
        return health_page(self.base_port + slot)

    def pages(self) -> list[dict[str, Any]]:
        """The health pages of the workers that answer."""
        return [p for p in (self.health(n) for n in range(self.processes)) if p]

    def wait_assigned(self, timeout: float = 90.0) -> None:
        """Block until every worker owns partitions; raise with the log when that fails."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"worker supervisor exited:\n{self.log_tail()}")
            pages = [self.health(n) for n in range(self.processes)]
            if all(p and p["assigned_partitions"] for p in pages):
                return
            time.sleep(0.3)
        raise RuntimeError(f"workers got no partitions in {timeout:.0f}s:\n{self.log_tail()}")

    def kill(self, slot: int) -> dict[str, Any]:
        """SIGKILL worker `slot` (a crash; the supervisor restarts it); its last health page."""
        page = self.health(slot)
        if not page:
            raise RuntimeError(f"worker {slot} does not answer its health page")
        os.kill(int(page["pid"]), signal.SIGKILL)
        return page

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the supervisor (it stops its workers cleanly); SIGKILL all if it hangs."""
        if not self.alive():
            return
        assert self.proc is not None  # noqa: S101 - alive() checked it
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the supervisor's (and its workers') log."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


def _worker_env(
    endpoints: Endpoints, work_dir: Path, name: str, web_port: int, extra: dict[str, str]
) -> dict[str, str]:
    """The environment of a worker (or supervisor) process started against `endpoints`."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka,
        "REDIS_URL": endpoints.redis,
        "WORKER_WEB_PORT": str(web_port),
        "GREENCREDIT_STATE_DIR": str(work_dir / f"{name}-state"),
        **extra,
    }
