"""Redis feature store: velocity windows, device state and amount statistics for scoring.

Each ``record_*`` call sends its whole batch as ONE ``EVALSHA`` of a Lua script: one network
round trip, and no other client ever sees a half-applied batch (scripts run atomically). The
scripts live in ``infra/lua/``: ``common.lua`` (settings, helpers) is prepended to each of
``applications.lua``, ``transactions.lua`` and ``device_signals.lua``, since Redis scripts cannot
import. Windows count by event time (``occurred_at``), never wall clock, so replays are
deterministic. Processing is at-least-once: sorted-set members are event ids (ZADD NX) or
last-seen times (ZADD GT), and the amount statistics are guarded by a per-event SET NX marker.

A transaction's done marker (the engine state's ``done:`` key, see infra/engine_store.py) says
its outputs were acknowledged, so a redelivery is skipped. The transactions script reads the
markers of its batch and writes those of earlier batches whose outputs were acknowledged since
(:meth:`FeatureStore.mark_done_later`): a transaction batch costs one round trip, not three.
The applications script reads its batch's markers too (:meth:`record_new_applications`);
theirs are written with the batch's outcomes (infra/engine_store.py ``record_outcomes``).

Key layout (``P`` = prefix, default ``gc:``; ``*_ref`` are HMAC pseudonyms, never raw PII;
windows, caps and TTLs are the defaults of :class:`Retention`):

    key                                  type    content                             cap   TTL
    P app:dev:{device_ref}               zset    application event id -> time        1000  8 d
    P app:id:{id_ref}                    zset    (same, per ID number)               1000  8 d
    P app:phone:{phone_ref}              zset    (same, per phone)                   1000  8 d
    P txn:card:{card_ref}                zset    transaction event id -> time        1000  2 d
    P dev:{device_ref}:ids               zset    id_ref -> last seen (30 d)          200   31 d
    P dev:{device_ref}:customers         zset    customer_id -> last seen (30 d)     200   31 d
    P dev:{device_ref}:fingerprints      zset    fingerprint_ref -> last seen        100   31 d
    P dev:{device_ref}:state             hash    latest signal: flags, SIM, country  9 f   31 d
    P acct:{account_id}:amount           hash    n, mean, m2 (Welford)               3 f   180 d
    P acct:{account_id}:merchants        zset    merchant_id -> last seen (180 d)    500   180 d
    P seen:txn:{event_id}                string  "before" snapshot (replay guard)    -     7 d
    P done:{event_id}                    string  "1": outputs acknowledged           -     8 d

Sorted sets are trimmed on every write: members older than the window before the set's newest
member go (ZREMRANGEBYSCORE), then all but the newest ``cap`` (ZREMRANGEBYRANK). A count at
the cap therefore means "at least the cap"; every cap is far above the count where its risk
ramp saturates. Every write refreshes its key's TTL, which is the window plus a day of slack
for late events, so idle subjects disappear on their own.

The scripts build key names from the prefix instead of receiving them as KEYS: a batch spans
many hash slots, so this layout needs one Redis node (a primary), not Redis Cluster.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from greencredit.models.features import (
    AmountStats,
    ApplicationVelocity,
    DeviceState,
    TransactionFeatures,
    WindowCounts,
    epoch_ms,
    from_epoch_ms,
    geo_mismatch,
)

__all__ = [
    "ApplicationKeys",
    "DeviceSignalKeys",
    "DoneLater",
    "FeatureStore",
    "Retention",
    "TransactionKeys",
]

log = logging.getLogger(__name__)

_LUA_DIR = Path(__file__).parent / "lua"
# What greencredit.streams.masking.pseudonym produces: "<kind>_<32 hex>". Anything else in a
# *_ref field is refused, so a raw ID number or phone cannot reach a Redis key by mistake.
_PSEUDONYM = re.compile(r"[A-Za-z][\w-]*_[0-9a-f]{32}")


def _require_pseudonym(value: str, what: str) -> None:
    if not _PSEUDONYM.fullmatch(value):
        # The value itself stays out of the message: it may be the raw PII we are guarding.
        raise ValueError(f"{what} must be a pseudonym (see streams.masking.pseudonym)")


# Ids and codes travel in space-separated script arguments and replies.
_TOKEN = re.compile(r"\S+")


def _require_id(value: str, what: str) -> None:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{what} must be a non-empty id without whitespace, got {value!r}")


@dataclass(frozen=True, slots=True)
class ApplicationKeys:
    """What the store needs from a loan application; refs are pseudonyms made by the caller."""

    event_id: str
    occurred_at: datetime
    device_ref: str
    id_ref: str
    phone_ref: str
    customer_id: str

    def __post_init__(self) -> None:
        """Refuse raw PII and naive times before anything reaches Redis."""
        _require_id(self.event_id, "event_id")
        _require_id(self.customer_id, "customer_id")
        epoch_ms(self.occurred_at)
        for name in ("device_ref", "id_ref", "phone_ref"):
            _require_pseudonym(getattr(self, name), name)


@dataclass(frozen=True, slots=True)
class TransactionKeys:
    """What the store needs from a transaction (amount in minor units; refunds negative)."""

    event_id: str
    occurred_at: datetime
    account_id: str
    customer_id: str
    card_ref: str
    merchant_id: str
    amount_minor: int
    device_ref: str | None = None
    ip_country: str | None = None
    merchant_country: str | None = None

    def __post_init__(self) -> None:
        """Refuse raw PII, naive times and non-integer amounts (money is never a float)."""
        for name in ("event_id", "account_id", "customer_id", "merchant_id"):
            _require_id(getattr(self, name), name)
        epoch_ms(self.occurred_at)
        _require_pseudonym(self.card_ref, "card_ref")
        if self.device_ref is not None:
            _require_pseudonym(self.device_ref, "device_ref")
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise ValueError(f"amount_minor must be an int, got {self.amount_minor!r}")


@dataclass(frozen=True, slots=True)
class DeviceSignalKeys:
    """A device signal's risk facts; the device and fingerprint are pseudonyms.

    The signal's account_id is not kept: one customer's several accounts on their own phone are
    normal, so only customers count towards a device farm.
    """

    event_id: str
    occurred_at: datetime
    device_ref: str
    fingerprint_ref: str
    customer_id: str | None
    is_emulator: bool
    is_rooted: bool
    is_jailbroken: bool
    vpn_active: bool
    proxy_active: bool
    sim_change_age_hours: int | None = None
    geo_country: str | None = None

    def __post_init__(self) -> None:
        """Refuse raw device ids, naive times and negative SIM ages."""
        _require_id(self.event_id, "event_id")
        if self.customer_id is not None:
            _require_id(self.customer_id, "customer_id")
        epoch_ms(self.occurred_at)
        _require_pseudonym(self.device_ref, "device_ref")
        _require_pseudonym(self.fingerprint_ref, "fingerprint_ref")
        if self.sim_change_age_hours is not None and self.sim_change_age_hours < 0:
            raise ValueError(f"sim_change_age_hours must be >= 0, got {self.sim_change_age_hours}")
        if self.geo_country is not None:
            _require_id(self.geo_country, "geo_country")


# Late events arrive after their key's last write; a day of slack on every TTL keeps their
# windows intact.
_SLACK = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Retention:
    """Windows, caps and TTLs of the store; the Lua scripts read them from here.

    Caps bound memory per key (a zset member is ~100 bytes, so 1000 members ~100 KB) and sit
    far above where the risk ramps in models/features.py saturate, so capping never hides risk.
    """

    hour: timedelta = timedelta(hours=1)
    day: timedelta = timedelta(days=1)
    week: timedelta = timedelta(days=7)
    link_window: timedelta = timedelta(days=30)  # distinct ids / customers / fingerprints
    merchant_window: timedelta = timedelta(days=180)  # "new merchant" memory
    velocity_cap: int = 1000  # events per device / ID / phone / card
    link_cap: int = 200  # distinct ids or customers per device (farm rule fires at 3)
    fingerprint_cap: int = 100  # distinct fingerprints per device (rule fires at 2)
    merchant_cap: int = 500  # merchants remembered per account
    velocity_ttl: timedelta = timedelta(days=7) + _SLACK
    card_ttl: timedelta = timedelta(days=1) + _SLACK
    link_ttl: timedelta = timedelta(days=30) + _SLACK  # also the device state hash
    account_ttl: timedelta = timedelta(days=180)  # amount statistics and merchants
    # Replay guard of the amount statistics: at least the input topics' retention (7 d), the
    # furthest back a consumer can be rewound.
    marker_ttl: timedelta = timedelta(days=7)
    # Done markers outlive the input topics' retention (7 d) too, so a rewound consumer skips
    # what was finished (the engine state's StoreTtl.done, which the application path uses).
    done_ttl: timedelta = timedelta(days=8)

    def settings(self) -> list[str]:
        """``[k, name, value, ...]`` as the Lua header expects: times in ms, caps as ints."""
        out = [str(len(fields(self)))]
        for f in fields(self):
            value = getattr(self, f.name)
            ms = value // timedelta(milliseconds=1) if isinstance(value, timedelta) else value
            if ms <= 0:
                raise ValueError(f"{f.name} must be positive, got {value}")
            out += [f.name, str(ms)]
        return out


def _script(name: str) -> str:
    return (_LUA_DIR / "common.lua").read_text() + "\n" + (_LUA_DIR / f"{name}.lua").read_text()


def _fields(raw: bytes | str) -> list[str]:
    """One event's reply (a space-separated string), whether or not the client decodes."""
    return (raw.decode() if isinstance(raw, bytes) else raw).split(" ")


def _optional(field: str) -> str | None:
    return None if field == "-" else field


def _device_state(device_ref: str, f: Sequence[str]) -> DeviceState:
    signal_ms, sim_ms = _optional(f[0]), _optional(f[6])
    return DeviceState(
        device_ref=device_ref,
        last_signal_at=None if signal_ms is None else from_epoch_ms(int(signal_ms)),
        is_emulator=f[1] == "1",
        is_rooted=f[2] == "1",
        is_jailbroken=f[3] == "1",
        vpn_active=f[4] == "1",
        proxy_active=f[5] == "1",
        sim_changed_at=None if sim_ms is None else from_epoch_ms(int(sim_ms)),
        geo_country=_optional(f[7]),
        distinct_identities_30d=int(f[8]),
        distinct_customers_30d=int(f[9]),
        distinct_fingerprints_30d=int(f[10]),
    )


def _amount_stats(n: int, mean: float, m2: float) -> AmountStats:
    # m2 can dip a hair below 0 from rounding when all amounts are equal.
    return AmountStats(n=n, mean=mean, std=math.sqrt(max(m2, 0.0) / n) if n else 0.0)


# A worker that goes quiet writes its waiting done markers after this long on its own.
DONE_IDLE_FLUSH_S = 0.1


class DoneLater:
    """Event ids whose outputs were acknowledged and whose done markers wait to be written.

    The next transactions call writes them (no round trip of their own); if none comes within
    ``idle_s``, ``flush`` does. Until written, a redelivery of such an event is processed again
    and re-sends the same output ids: the at-least-once contract holds, as it does when a worker
    dies between the broker's ack and the marker.
    """

    def __init__(self, flush: Callable[[], Awaitable[None]], idle_s: float) -> None:
        """Buffer ids; ``flush`` writes the waiting ones, ``idle_s`` after the first one."""
        self._flush = flush
        self._idle_s = idle_s
        self._waiting: dict[str, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Future[None] | None = None

    def add(self, event_ids: Iterable[str]) -> None:
        """Buffer ids (their outputs are acknowledged) and arm the idle flush."""
        self._waiting.update(dict.fromkeys(event_ids))
        if self._waiting and self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop, no timer: the next call writes them
                return
            self._timer = loop.call_later(self._idle_s, self._fire)

    def waiting(self) -> list[str]:
        """The ids to write with the next call."""
        return list(self._waiting)

    def written(self, event_ids: Iterable[str]) -> None:
        """These markers are stored (ids buffered meanwhile stay)."""
        for event_id in event_ids:
            self._waiting.pop(event_id, None)

    def _fire(self) -> None:
        self._timer = None
        if self._waiting and (self._task is None or self._task.done()):
            self._task = asyncio.ensure_future(self._flush_quietly())

    async def _flush_quietly(self) -> None:
        try:
            await self._flush()
        except (RedisError, OSError) as exc:
            # Kept for the next call or timer; meanwhile a redelivery is processed again.
            log.warning("writing done markers failed (%s), retrying later", type(exc).__name__)
            self.add(())


def _transaction_features(t: TransactionKeys, reply: bytes | str) -> TransactionFeatures:
    f = _fields(reply)
    state = None if t.device_ref is None else _device_state(t.device_ref, f[6:])
    return TransactionFeatures(
        event_id=t.event_id,
        card=WindowCounts(int(f[0]), int(f[1])),
        amount_history=_amount_stats(int(f[2]), float(f[3]), float(f[4])),
        is_new_merchant=f[5] == "1",
        geo_mismatch=geo_mismatch(
            t.ip_country, state.geo_country if state else None, t.merchant_country
        ),
        device_state=state,
    )


def _application_velocity(a: ApplicationKeys, reply: Any) -> ApplicationVelocity:
    f = _fields(reply)
    return ApplicationVelocity(
        event_id=a.event_id,
        device=WindowCounts(int(f[0]), int(f[1]), int(f[2])),
        id_number=WindowCounts(int(f[3]), int(f[4]), int(f[5])),
        phone=WindowCounts(int(f[6]), int(f[7]), int(f[8])),
        device_state=_device_state(a.device_ref, f[9:]),
    )


class FeatureStore:
    """Async feature store over one Redis node; one EVALSHA per batch.

    Call :meth:`load_scripts` at start-up: afterwards every batch is exactly one round trip
    (without it the first batch pays a NOSCRIPT, SCRIPT LOAD and retry).
    """

    def __init__(
        self, redis: Redis, *, prefix: str = "gc:", retention: Retention | None = None
    ) -> None:
        """Wrap ``redis``; all keys start with ``prefix``."""
        if not prefix or any(c.isspace() for c in prefix):
            raise ValueError(f"prefix must be non-empty without whitespace, got {prefix!r}")
        self._redis = redis
        self._prefix = prefix
        self._header = [prefix, *(retention or Retention()).settings()]
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(_script(name))
            for name in ("applications", "transactions", "device_signals")
        }
        self._done_later = DoneLater(self.flush_done, DONE_IDLE_FLUSH_S)

    @property
    def prefix(self) -> str:
        """The key prefix of this store."""
        return self._prefix

    async def load_scripts(self) -> None:
        """Load the Lua scripts into Redis (idempotent) so batches never meet NOSCRIPT."""
        for script in self._scripts.values():
            script.sha = await self._redis.script_load(script.script)

    async def _run(self, name: str, events: list[str]) -> list[Any]:
        return list(await self._scripts[name](args=[*self._header, *events]))

    async def record_applications(
        self, batch: Sequence[ApplicationKeys]
    ) -> list[ApplicationVelocity]:
        """Record applications; return each one's velocity and its device's state.

        Counts include the application itself; the device state carries the distinct
        identities on the device in the last 30 days and the latest signal's flags.
        Done markers are not looked at (see :meth:`record_new_applications`).
        """
        return [v for v in await self._applications(batch, check_done=False) if v is not None]

    async def record_new_applications(
        self, batch: Sequence[ApplicationKeys]
    ) -> list[ApplicationVelocity | None]:
        """As :meth:`record_applications`, except for applications already done.

        Those (processed to the end before: the engine state's done marker exists) get None
        and change nothing; the lookup is in the same round trip.
        """
        return await self._applications(batch, check_done=True)

    async def _applications(
        self, batch: Sequence[ApplicationKeys], *, check_done: bool
    ) -> list[ApplicationVelocity | None]:
        if not batch:
            return []
        events: list[str] = ["1" if check_done else "0"]
        for a in batch:
            events += [
                a.event_id, str(epoch_ms(a.occurred_at)),
                a.device_ref, a.id_ref, a.phone_ref, a.customer_id,
            ]  # fmt: skip
        replies = await self._run("applications", events)
        return [
            _application_velocity(a, reply) if reply else None
            for a, reply in zip(batch, replies, strict=True)
        ]

    def mark_done_later(self, event_ids: Iterable[str]) -> None:
        """These transactions' outputs were acknowledged: mark them done with the next call.

        The next transactions call writes the markers, or :meth:`flush_done` once the worker
        has been idle for :data:`DONE_IDLE_FLUSH_S`.
        """
        self._done_later.add(event_ids)

    async def flush_done(self) -> None:
        """Write the waiting done markers now (one round trip, none when nothing waits)."""
        await self._transactions([], check_done=False)

    async def record_transactions(
        self, batch: Sequence[TransactionKeys]
    ) -> list[TransactionFeatures]:
        """Record transactions; return each one's features.

        Card velocity includes the transaction; the amount statistics exclude it (they are the
        account's history, for the anomaly); device state only when it carries a device.
        Done markers are not looked at (see :meth:`record_new_transactions`).
        """
        return [f for f in await self._transactions(batch, check_done=False) if f is not None]

    async def record_new_transactions(
        self, batch: Sequence[TransactionKeys]
    ) -> list[TransactionFeatures | None]:
        """As :meth:`record_transactions`, except for transactions already done.

        Those (processed to the end before) get None and change nothing; the lookup is in the
        same round trip.
        """
        return await self._transactions(batch, check_done=True)

    async def _transactions(
        self, batch: Sequence[TransactionKeys], *, check_done: bool
    ) -> list[TransactionFeatures | None]:
        finished = self._done_later.waiting()
        if not batch and not finished:
            return []
        args = ["1" if check_done else "0", str(len(finished)), *finished]
        for t in batch:
            args.append(
                f"{t.event_id} {epoch_ms(t.occurred_at)} {t.account_id} {t.customer_id} "
                f"{t.card_ref} {t.merchant_id} {t.amount_minor} {t.device_ref or '-'}"
            )
        replies = await self._run("transactions", args)
        self._done_later.written(finished)
        return [
            _transaction_features(t, reply) if reply else None
            for t, reply in zip(batch, replies, strict=True)
        ]

    async def record_device_signals(self, batch: Sequence[DeviceSignalKeys]) -> list[DeviceState]:
        """Store each device's flags, fingerprint and customer; return the state after each.

        Flags are those of the newest signal by event time (same millisecond: the greater event
        id), whatever the processing order, so replays and reordering give the same state.
        """
        if not batch:
            return []
        events: list[str] = []
        for s in batch:
            ts = epoch_ms(s.occurred_at)
            sim_changed = (
                "-"
                if s.sim_change_age_hours is None
                else str(ts - s.sim_change_age_hours * 3_600_000)
            )
            flags = (s.is_emulator, s.is_rooted, s.is_jailbroken, s.vpn_active, s.proxy_active)
            events.append(
                f"{s.event_id} {ts} {s.device_ref} {s.fingerprint_ref} {s.customer_id or '-'} "
                + " ".join("1" if f else "0" for f in flags)
                + f" {sim_changed} {(s.geo_country or '-').upper()}"
            )
        replies = await self._run("device_signals", events)
        return [
            _device_state(s.device_ref, _fields(r)) for s, r in zip(batch, replies, strict=True)
        ]
