"""Console users, roles, sign-in with throttling, server-side sessions, and the audit.

Passwords are hashed with Argon2id (argon2-cffi's defaults). A session is a random token
in an httponly cookie; the database keeps only its SHA-256, with the session's CSRF token
and its idle and absolute expiry. Failed sign-ins are counted per user name and per client
address over a window; past either limit sign-in is refused (even with the right password)
until the window has passed, so guessing is slowed to a few tries per window.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import db

__all__ = [
    "ADMIN",
    "ANALYST",
    "POLICY_APPROVER",
    "POLICY_MAKER",
    "ROLES",
    "SUPERVISOR",
    "AuthError",
    "Session",
    "SignInThrottled",
    "User",
    "UserError",
    "Users",
    "record_audit",
]

ANALYST = "analyst"
SUPERVISOR = "supervisor"
POLICY_MAKER = "policy-maker"
POLICY_APPROVER = "policy-approver"
ADMIN = "admin"
ROLES = (ANALYST, SUPERVISOR, POLICY_MAKER, POLICY_APPROVER, ADMIN)

MIN_PASSWORD = 12
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
_LENDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_HASHER = PasswordHasher()
# Verified against when the user is unknown, so an unknown name costs as long as a known one.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A user request that cannot be done (bad name, weak password, unknown user ...)."""


class AuthError(PermissionError):
    """Sign-in refused: wrong name or password, or a disabled user (never says which)."""


class SignInThrottled(PermissionError):
    """Too many failed sign-ins for this user or from this address; retry later."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class User:
    """A console user: roles and the lenders whose cases and policy they may see."""

    id: int
    username: str
    roles: frozenset[str]
    lenders: frozenset[str]
    disabled: bool

    def has(self, *roles: str) -> bool:
        """Whether the user holds any of ``roles``."""
        return bool(self.roles.intersection(roles))

    def public(self) -> dict[str, Any]:
        """What the API shows about a user."""
        return {
            "username": self.username,
            "roles": sorted(self.roles),
            "lenders": sorted(self.lenders),
            "disabled": self.disabled,
        }


@dataclass(frozen=True)
class Session:
    """A signed-in session: its user and the CSRF token state-changing requests must send."""

    token_hash: str
    user: User
    csrf_token: str


def _user(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        roles=frozenset(row.roles),
        lenders=frozenset(row.lenders),
        disabled=row.disabled,
    )


def check_username(raw: str) -> str:
    """A user name: lower-case letters, digits, ``._@-``, 2-64 characters."""
    name = raw.strip()
    if not _USERNAME.fullmatch(name):
        raise UserError("a user name is 2-64 lower-case letters, digits or . _ - characters")
    return name


def check_roles(roles: Iterable[str]) -> list[str]:
    """Known roles, sorted, at least one."""
    out = sorted(set(roles))
    unknown = [r for r in out if r not in ROLES]
    if unknown or not out:
        raise UserError(f"roles must be one or more of {', '.join(ROLES)}; got {unknown or out}")
    return out


def check_lenders(lenders: Iterable[str]) -> list[str]:
    """Lender ids (tenant ids), sorted."""
    out = sorted({lender.strip() for lender in lenders if lender.strip()})
    bad = [lender for lender in out if not _LENDER.fullmatch(lender)]
    if bad:
        raise UserError(f"not a lender id: {bad}")
    return out


def check_password(password: str) -> str:
    """At least MIN_PASSWORD characters (no other rule: length is what makes it strong)."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")
    return password


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def record_audit(
    connection: AsyncConnection,
    actor: str,
    action: str,
    *,
    at: datetime,
    tenant_id: str | None = None,
    target: str | None = None,
    address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit row, in the caller's transaction (so the action and its record commit together)."""
    await connection.execute(
        sa.insert(db.audit).values(
            at=at,
            actor=actor,
            action=action,
            tenant_id=tenant_id,
            target=target,
            address=address,
            detail=detail or {},
        )
    )


class Users:
    """Users, sessions and sign-in throttling in PostgreSQL."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        session_idle: timedelta = timedelta(minutes=30),
        session_max: timedelta = timedelta(hours=12),
        window: timedelta = timedelta(minutes=15),
        max_failures_user: int = 5,
        max_failures_address: int = 20,
    ) -> None:
        """Policy numbers come from Settings (console_session_*, console_login_*)."""
        self.engine = engine
        self.session_idle = session_idle
        self.session_max = session_max
        self.window = window
        self.max_failures_user = max_failures_user
        self.max_failures_address = max_failures_address

    # -- management (CLI and admin API) ------------------------------------------------
    async def add(
        self, username: str, password: str, roles: Iterable[str], lenders: Iterable[str]
    ) -> User:
        """Create a user; UserError if the name is taken or an argument is invalid."""
        name = check_username(username)
        role_list, lender_list = check_roles(roles), check_lenders(lenders)
        digest = await asyncio.to_thread(_HASHER.hash, check_password(password))
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            taken = await connection.scalar(
                sa.select(db.users.c.id).where(db.users.c.username == name)
            )
            if taken is not None:
                raise UserError(f"user {name!r} exists already")
            row = (
                await connection.execute(
                    sa.insert(db.users)
                    .values(
                        username=name,
                        password_hash=digest,
                        roles=role_list,
                        lenders=lender_list,
                        disabled=False,
                        created_at=now,
                        password_changed_at=now,
                    )
                    .returning(db.users)
                )
            ).one()
            await record_audit(
                connection, "cli", "user-added", at=now, target=name,
                detail={"roles": role_list, "lenders": lender_list},
            )  # fmt: skip
        return _user(row)

    async def passwd(self, username: str, password: str) -> None:
        """Set a new password; every session of the user ends."""
        digest = await asyncio.to_thread(_HASHER.hash, check_password(password))
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            user_id = await self._id(connection, username)
            await connection.execute(
                sa.update(db.users)
                .where(db.users.c.id == user_id)
                .values(password_hash=digest, password_changed_at=now)
            )
            await connection.execute(sa.delete(db.sessions).where(db.sessions.c.user_id == user_id))
            await record_audit(connection, "cli", "password-changed", at=now, target=username)

    async def update(
        self,
        username: str,
        *,
        actor: str,
        roles: Iterable[str] | None = None,
        lenders: Iterable[str] | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change roles, lenders or the disabled flag; disabling ends the user's sessions."""
        values: dict[str, Any] = {}
        if roles is not None:
            values["roles"] = check_roles(roles)
        if lenders is not None:
            values["lenders"] = check_lenders(lenders)
        if disabled is not None:
            values["disabled"] = disabled
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            user_id = await self._id(connection, username)
            row = (
                await connection.execute(
                    sa.update(db.users)
                    .where(db.users.c.id == user_id)
                    .values(**values)
                    .returning(db.users)
                )
            ).one()
            if disabled:
                await connection.execute(
                    sa.delete(db.sessions).where(db.sessions.c.user_id == user_id)
                )
            await record_audit(
                connection, actor, "user-changed", at=now, target=username,
                detail={k: v for k, v in values.items()},
            )  # fmt: skip
        return _user(row)

    async def all(self) -> list[User]:
        """Every user, by name."""
        async with self.engine.connect() as connection:
            rows = await connection.execute(sa.select(db.users).order_by(db.users.c.username))
            return [_user(row) for row in rows]

    async def get(self, username: str) -> User | None:
        """The user, or None."""
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(sa.select(db.users).where(db.users.c.username == username))
            ).one_or_none()
        return None if row is None else _user(row)

    async def _id(self, connection: AsyncConnection, username: str) -> int:
        user_id = await connection.scalar(
            sa.select(db.users.c.id).where(db.users.c.username == username)
        )
        if user_id is None:
            raise UserError(f"no user {username!r}")
        return int(user_id)

    # -- sign-in ---------------------------------------------------------------------
    async def sign_in(self, username: str, password: str, address: str) -> tuple[str, Session]:
        """Check the password; a new session and its cookie token. Throttled, audited."""
        now = datetime.now(UTC)
        name = username.strip().lower()[:64]
        async with self.engine.begin() as connection:
            retry = await self._throttled(connection, name, address, now)
            if retry is not None:
                await record_audit(
                    connection, name or "-", "sign-in-throttled", at=now, address=address
                )
        if retry is not None:
            raise SignInThrottled(retry)
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(sa.select(db.users).where(db.users.c.username == name))
            ).one_or_none()
        ok = await asyncio.to_thread(
            _verify, row.password_hash if row is not None else _DUMMY_HASH, password
        )
        ok = ok and row is not None and not row.disabled
        async with self.engine.begin() as connection:
            await connection.execute(
                sa.insert(db.login_attempts).values(username=name, address=address, at=now, ok=ok)
            )
            if not ok or row is None:
                await record_audit(
                    connection, name or "-", "sign-in-failed", at=now, address=address
                )
        if not ok or row is None:  # raised after the commit: the failure must be counted
            raise AuthError("wrong user name or password")
        async with self.engine.begin() as connection:
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            await connection.execute(
                sa.insert(db.sessions).values(
                    token_hash=_token_hash(token),
                    user_id=row.id,
                    csrf_token=csrf,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.session_max,
                )
            )
            await record_audit(connection, name, "sign-in", at=now, address=address)
        user = _user(row)
        return token, Session(_token_hash(token), user, csrf)

    async def _throttled(
        self, connection: AsyncConnection, name: str, address: str, now: datetime
    ) -> int | None:
        """Seconds to wait when either failure count is at its limit, else None."""
        since = now - self.window
        failed = sa.and_(db.login_attempts.c.at > since, db.login_attempts.c.ok.is_(False))
        for column, value, limit in (
            (db.login_attempts.c.username, name, self.max_failures_user),
            (db.login_attempts.c.address, address, self.max_failures_address),
        ):
            oldest = (
                await connection.execute(
                    sa.select(db.login_attempts.c.at)
                    .where(failed, column == value)
                    .order_by(db.login_attempts.c.at.desc())
                    .limit(limit)
                )
            ).all()
            if len(oldest) >= limit:
                # Free again once the oldest of the last `limit` failures leaves the window.
                free_at = oldest[-1].at + self.window
                return max(1, int((free_at - now).total_seconds()) + 1)
        return None

    async def session(self, token: str) -> Session | None:
        """The live session for a cookie token (its idle clock restarted), or None."""
        now = datetime.now(UTC)
        digest = _token_hash(token)
        async with self.engine.begin() as connection:
            row = (
                await connection.execute(
                    sa.select(db.sessions, db.users)
                    .join(db.users, db.users.c.id == db.sessions.c.user_id)
                    .where(db.sessions.c.token_hash == digest)
                )
            ).one_or_none()
            if row is None:
                return None
            if row.disabled or row.expires_at <= now or row.last_seen_at + self.session_idle <= now:
                await connection.execute(
                    sa.delete(db.sessions).where(db.sessions.c.token_hash == digest)
                )
                return None
            if now - row.last_seen_at > timedelta(seconds=30):  # spare a write per request
                await connection.execute(
                    sa.update(db.sessions)
                    .where(db.sessions.c.token_hash == digest)
                    .values(last_seen_at=now)
                )
        return Session(digest, _user(row), row.csrf_token)

    async def proxy_session(self, username: str, address: str) -> tuple[str, Session] | None:
        """A session for a user the trusted proxy vouched for (no password); None if unknown."""
        user = await self.get(username.strip().lower())
        if user is None or user.disabled:
            return None
        now = datetime.now(UTC)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        async with self.engine.begin() as connection:
            await connection.execute(
                sa.insert(db.sessions).values(
                    token_hash=_token_hash(token), user_id=user.id, csrf_token=csrf,
                    created_at=now, last_seen_at=now, expires_at=now + self.session_max,
                )
            )  # fmt: skip
            await record_audit(
                connection, user.username, "sign-in", at=now, address=address,
                detail={"via": "trusted proxy"},
            )  # fmt: skip
        return token, Session(_token_hash(token), user, csrf)

    async def sign_out(self, session: Session, address: str) -> None:
        """End the session."""
        async with self.engine.begin() as connection:
            await connection.execute(
                sa.delete(db.sessions).where(db.sessions.c.token_hash == session.token_hash)
            )
            await record_audit(
                connection, session.user.username, "sign-out", at=datetime.now(UTC), address=address
            )


def _verify(digest: str, password: str) -> bool:
    try:
        return _HASHER.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False
