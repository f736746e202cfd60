"""The simulated analysts' desk: the real console, a demo user, and labels through its API.

The demo starts `greencredit console` (a child process, on the demo's broker and PostgreSQL),
creates or refreshes a demo analyst with a fresh random password (printed, so a person can
sign in next to the simulated team), and the simulated analysts label through the same
authenticated path as a person: sign in, CSRF token, POST /api/cases/<id>/label. The
feedback event then carries the demo user's id, as any console label does.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from greencredit.infra.embedded import free_port

__all__ = ["DEMO_USER", "ConsoleDesk", "DeskError", "demo_user", "start_console"]

DEMO_USER = "demo-analyst"
_POSITIVE = frozenset({"FRAUD", "DEFAULTED"})  # the labels a "confirm fraud" click sends


class DeskError(RuntimeError):
    """The console could not be started, signed into, or did not take a label."""


def demo_user(db_url: str, lenders: Iterable[str]) -> str:
    """Create (or reset) the demo analyst of ``lenders``; returns its new random password."""
    from greencredit.console.auth import ANALYST, Users
    from greencredit.console.db import connect, migrate

    password = secrets.token_urlsafe(12)

    async def make() -> None:
        engine = connect(db_url)
        try:
            await migrate(engine)
            users = Users(engine)
            if await users.get(DEMO_USER) is None:
                await users.add(DEMO_USER, password, [ANALYST], lenders)
            else:
                await users.passwd(DEMO_USER, password)
                await users.update(
                    DEMO_USER, actor="demo", roles=[ANALYST], lenders=lenders, disabled=False
                )
        finally:
            await engine.dispose()

    asyncio.run(make())
    return password


def start_console(
    kafka: str, db_url: str, work: Path, timeout: float = 60.0
) -> tuple[subprocess.Popen[bytes], str]:
    """`greencredit console` on a free loopback port; (process, base URL) once it reads."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": db_url}
    with (work / "console.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "greencredit", "console", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DeskError(f"the console exited (code {proc.returncode}); see {work}/console.log")
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=2) as response:  # noqa: S310
                if json.loads(response.read())["reader"]["assigned"]:
                    return proc, base
        except OSError:
            pass
        time.sleep(0.2)
    stop_console(proc)
    raise DeskError(f"the console did not start within {timeout:.0f}s")


def stop_console(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (aiohttp shuts down cleanly), then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ConsoleDesk:
    """A signed-in console session of the demo user."""

    def __init__(self, base: str, username: str, password: str) -> None:
        """Sign in at once: a wrong password fails the demo early."""
        self.base = base
        self._cookie = ""
        self._csrf = ""
        self.labelled = 0
        status, body = self._call(
            "POST", "/api/session", {"username": username, "password": password}
        )
        if status != 200:
            raise DeskError(f"demo user cannot sign in: {body}")
        self._csrf = body["csrf_token"]

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if self._cookie:
            headers["Cookie"] = self._cookie
        if self._csrf:
            headers["X-CSRF-Token"] = self._csrf
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - our console on loopback
            self.base + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                cookie = response.headers.get("Set-Cookie")
                if cookie:
                    self._cookie = cookie.split(";", 1)[0]
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def label(self, case_id: str, label: str, timeout: float = 30.0) -> bool:
        """Label a case as the demo user; waits for the console to have ingested it."""
        verdict = "fraud" if label in _POSITIVE else "legitimate"
        path = f"/api/cases/{quote(case_id, safe='')}/label"
        deadline = time.monotonic() + timeout
        while True:
            status, body = self._call("POST", path, {"verdict": verdict})
            if status == 200:
                self.labelled += int(body["published"])
                return bool(body["published"])
            if status == 409:  # labelled already (the other way): the first label stands
                return False
            if status != 404 or time.monotonic() > deadline:
                raise DeskError(f"console refused to label {case_id}: {status} {body}")
            time.sleep(0.1)  # the console has not read the case from Kafka yet

    def label_all(self, feedback: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Label every case the simulated analysts decided on; how many were published."""
        return sum(self.label(event["case_id"], event["label"]) for _, event in feedback)
