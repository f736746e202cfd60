"""A console in-process on a real broker and a real PostgreSQL, and signed-in API clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from greencredit.console.auth import Users
from greencredit.console.db import connect
from greencredit.console.service import ConsoleService
from greencredit.console.web import CSRF_HEADER, WebSettings, build_app
from greencredit.infra.endpoints import Endpoints
from greencredit.streams.codec import AvroCodec

CODEC = AvroCodec()
PASSWORD = "correct horse battery staple"  # noqa: S105 - test users only
WAIT_S = 45.0


@dataclass
class Client:
    """One signed-in user (own cookie jar); ``call`` sends the CSRF token unless told not to."""

    http: aiohttp.ClientSession
    server: TestServer
    csrf: str = ""
    username: str = ""

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        if csrf and self.csrf:
            sent[CSRF_HEADER] = self.csrf
        async with self.http.request(
            method, self.server.make_url(path), json=body, headers=sent
        ) as response:
            try:
                data = await response.json()
            except aiohttp.ContentTypeError:
                data = await response.text()
            return response.status, data

    async def sign_in(self, username: str, password: str = PASSWORD) -> tuple[int, Any]:
        status, body = await self.call(
            "POST", "/api/session", {"username": username, "password": password}, csrf=False
        )
        if status == 200:
            self.csrf, self.username = body["csrf_token"], username
        return status, body

    async def until(
        self, path: str, predicate: Callable[[Any], bool], timeout: float = WAIT_S
    ) -> Any:
        deadline = time.monotonic() + timeout
        body: Any = None
        while time.monotonic() < deadline:
            status, body = await self.call("GET", path)
            if status == 200 and predicate(body):
                return body
            await asyncio.sleep(0.2)
        raise AssertionError(f"{path}: condition not met after {timeout}s; last answer {body}")


@dataclass
class Console:
    service: ConsoleService
    server: TestServer
    sessions: list[aiohttp.ClientSession]

    async def client(self, username: str | None = None) -> Client:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sessions.append(http)
        client = Client(http, self.server)
        if username is not None:
            status, body = await client.sign_in(username)
            assert status == 200, body
        return client


@asynccontextmanager
async def running_console(
    endpoints: Endpoints | None,
    db_url: str,
    web_settings: WebSettings | None = None,
    **user_policy: Any,
) -> AsyncIterator[Console]:
    """A started console (migrated database, Kafka reader) under a test HTTP server."""
    engine = connect(db_url)
    users = Users(engine, **user_policy)
    kafka = endpoints.kafka if endpoints is not None else "127.0.0.1:1"
    service = ConsoleService({"bootstrap.servers": kafka}, CODEC, engine, users=users)
    server = TestServer(build_app(service, web_settings))
    await server.start_server()
    console = Console(service, server, [])
    try:
        if endpoints is not None:
            probe = await console.client()
            await probe.until("/api/health", lambda h: h["reader"]["assigned"])
        yield console
    finally:
        for http in console.sessions:
            await http.close()
        await server.close()


async def ensure_users(console: Console, *specs: tuple[str, list[str], list[str]]) -> None:
    """Create (name, roles, lenders) users unless they exist (a module shares its database)."""
    for name, roles, lenders in specs:
        if await console.service.users.get(name) is None:
            await console.service.users.add(name, PASSWORD, roles, lenders)


def short_policy() -> dict[str, Any]:
    """Throttling and expiry small enough to test in seconds."""
    return {
        "session_idle": timedelta(seconds=60),
        "max_failures_user": 3,
        "max_failures_address": 5,
        "window": timedelta(minutes=5),
    }
