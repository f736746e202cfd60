"""``greencredit users add|passwd|disable|enable|list|migrate``: the console's users.

The first administrator is created here; there is no default user or password. Passwords
are typed at a hidden prompt (twice), or read from standard input with --password-stdin for
scripts; they never appear on the command line.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from greencredit.infra.embedded import StackError
from greencredit.settings import get_settings

from ._output import fail, print_json

users_app = typer.Typer(help="Console users: the first admin, roles, lenders, passwords.")
T = TypeVar("T")


def _with_users(action: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``action(Users)`` on the migrated database of DATABASE_URL or the embedded stack."""
    from greencredit.console.auth import UserError, Users
    from greencredit.console.db import connect, database_url, migrate

    settings = get_settings()
    try:
        url = database_url(settings)
    except StackError as exc:
        fail(str(exc))

    async def run() -> T:
        engine = connect(url)
        try:
            await migrate(engine)
            return await action(Users(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except UserError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot reach PostgreSQL: {exc}")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="Login name: lower-case letters, digits, . _ -"),
    role: list[str] = typer.Option(
        ..., "--role", help="analyst, supervisor, policy-maker, policy-approver or admin; repeat."
    ),
    lender: list[str] = typer.Option(
        [], "--lender", help="A lender (tenant id) whose cases/policy the user works; repeat."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
) -> None:
    """Create a user (the first one should be an admin)."""
    password = _password(password_stdin)
    user = _with_users(lambda users: users.add(username, password, role, lender))
    print_json({"added": user.public()})


@users_app.command("passwd")
def users_passwd(
    username: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin"),
) -> None:
    """Set a new password; the user's sessions end."""
    password = _password(password_stdin)
    _with_users(lambda users: users.passwd(username, password))
    print_json({"password_changed": username})


@users_app.command("disable")
def users_disable(username: str = typer.Argument(...)) -> None:
    """Disable a user: no sign-in, sessions end (the history keeps their name)."""
    user = _with_users(lambda users: users.update(username, actor="cli", disabled=True))
    print_json({"disabled": user.public()})


@users_app.command("enable")
def users_enable(username: str = typer.Argument(...)) -> None:
    """Enable a disabled user again."""
    user = _with_users(lambda users: users.update(username, actor="cli", disabled=False))
    print_json({"enabled": user.public()})


@users_app.command("list")
def users_list() -> None:
    """Every user with roles, lenders and whether disabled."""
    users = _with_users(lambda users: users.all())
    print_json([user.public() for user in users])


@users_app.command("migrate")
def users_migrate() -> None:
    """Bring the console's database schema to the newest version (the console does it too)."""

    async def nothing(_: Any) -> None:
        return None

    _with_users(nothing)
    print_json({"migrated": True})
