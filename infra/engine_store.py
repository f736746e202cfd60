"""Engine state in Redis: idempotency markers, lender configs, learned models, pending labels.

Everything is JSON (never pickle) under one prefix (``gc:`` unless Settings say otherwise),
and every key has a TTL.
Kafka has no transactions on the embedded broker, so effects are made idempotent here:
an input whose outputs were all acknowledged is marked done (a redelivery is skipped), and
a disbursement is claimed before it is sent and marked sent after the broker's ack.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from redis.asyncio import Redis

from greencredit.models.green import IntegrityState

__all__ = [
    "DecisionState",
    "Disbursed",
    "DisbursementClaim",
    "EngineStore",
    "FundingRequest",
    "StoreTtl",
]

# Apply a lender config only if its version is newer than the stored one (configs arrive
# on a compacted topic and are redelivered on every restart).
_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'config', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


# Reserve funders' capacity for a batch of applications, each once (a redelivery gets its
# first funder back), in order: KEYS are (funder usage, application's funding) pairs, ARGV
# the TTL then (amount, capacity, funder id) per pair. '' where the funder is full.
_RESERVE_FUNDING = """
local ttl, out = ARGV[1], {}
for k = 1, #KEYS, 2 do
  local a = 2 + 3 * (k - 1) / 2
  local existing = redis.call('GET', KEYS[k + 1])
  local used = tonumber(redis.call('GET', KEYS[k]) or '0')
  if existing then
    out[#out + 1] = existing
  elseif used + tonumber(ARGV[a]) > tonumber(ARGV[a + 1]) then
    out[#out + 1] = ''
  else
    redis.call('INCRBY', KEYS[k], ARGV[a])
    redis.call('EXPIRE', KEYS[k], ttl)
    redis.call('SET', KEYS[k + 1], ARGV[a + 2], 'EX', ttl)
    out[#out + 1] = ARGV[a + 2]
  end
end
return out
"""


# SET many keys in one call, in order: per key (KEYS[i]) its value, TTL in seconds and
# whether only to create it (ARGV[3i-2..3i], '1' for NX). One command instead of one per
# key: redis-py's per-command cost dominated a batch's bookkeeping.
_SET_MANY = """
for i = 1, #KEYS do
  local a = 3 * i - 2
  if ARGV[a + 2] == '1' then
    redis.call('SET', KEYS[i], ARGV[a], 'EX', ARGV[a + 1], 'NX')
  else
    redis.call('SET', KEYS[i], ARGV[a], 'EX', ARGV[a + 1])
  end
end
return #KEYS
"""

# Claim disbursements: SET NX each key; '' where the claim is new, else what is stored.
_CLAIM = """
local out = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[i + 1], 'NX', 'EX', ARGV[1]) then
    out[i] = ''
  else
    out[i] = redis.call('GET', KEYS[i])
  end
end
return out
"""

# Finding markers: SET NX with the claiming event's id; 1 where this event holds the marker
# (new, or claimed by this very event before: a redelivery re-sends the alert it may not
# have sent), 0 where another event holds it.
_FINDINGS = """
local out = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[i + 1], 'NX', 'EX', ARGV[1]) then
    out[i] = 1
  elseif redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# A day's tick marker outlives the day in every timezone, and a worker that restarts late.
_TICK_TTL = 3 * 86_400


@dataclass(frozen=True)
class StoreTtl:
    """How long each kind of state lives (seconds), with the reason."""

    done: int = int(timedelta(days=8).total_seconds())  # > input retention (7 d): replays skip
    disbursement: int = int(timedelta(days=400).total_seconds())  # > audit retention
    pending: int = int(timedelta(days=30).total_seconds())  # label wait, as PendingFeatures
    config: int = int(timedelta(days=400).total_seconds())  # refreshed on every config event
    model: int = int(timedelta(days=400).total_seconds())  # refreshed on every save
    case: int = int(timedelta(days=400).total_seconds())


@dataclass(frozen=True)
class DisbursementClaim:
    """Result of claiming an application's disbursement.

    ``payload``: what the claimer stored with a pending claim (the records it was about to
    send), so that a redelivery sends exactly those; None once sent, or for a new claim.
    """

    state: str  # "new" (we own it), "pending" (claimed, not confirmed sent), "sent"
    event_id: str
    payload: bytes | None = None


@dataclass(frozen=True)
class DecisionState:
    """What the store knows about a batch's applications before they are decided."""

    claims: dict[str, DisbursementClaim]  # application id -> an earlier delivery's claim
    held_funders: dict[str, str]  # application id -> the funder an earlier delivery reserved
    funder_used_minor: dict[str, dict[str, int]]  # tenant -> funder -> capacity used


@dataclass(frozen=True)
class FundingRequest:
    """Reserve `amount_minor` of a funder's capacity for one application."""

    tenant_id: str
    funder_id: str
    application_id: str
    amount_minor: int
    capacity_minor: int


@dataclass(frozen=True)
class Disbursed:
    """A disbursement the broker acknowledged, and the green-purpose watch its loan starts."""

    application_id: str
    event_id: str
    watch: IntegrityState | None = None
    term_months: int = 0  # the watch lasts the loan's term, and a case's lifetime after it


def pending_claim(event_id: str, payload: bytes) -> bytes:
    """The stored form of a new claim: ``pending:<event id>``, a newline, the payload."""
    return b"pending:" + event_id.encode() + b"\n" + payload


def parse_claim(value: bytes | str | None, event_id: str) -> DisbursementClaim | None:
    """The claim stored as ``state:event_id`` (``pending`` may carry a payload after a newline)."""
    if value is None:
        return None
    raw = value if isinstance(value, bytes) else value.encode()
    head, _, payload = raw.partition(b"\n")
    state, _, stored_id = head.decode().partition(":")
    return DisbursementClaim(state, stored_id or event_id, payload or None)


class EngineStore:
    """Async access to the engine's Redis state. One instance per worker."""

    def __init__(self, client: Redis, prefix: str = "gc:", ttl: StoreTtl | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl or StoreTtl()
        self._set_if_newer = client.register_script(_SET_IF_NEWER)
        self._reserve_funding = client.register_script(_RESERVE_FUNDING)
        self._set_many = client.register_script(_SET_MANY)
        self._claim = client.register_script(_CLAIM)
        self._findings = client.register_script(_FINDINGS)

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # -- idempotency ----------------------------------------------------------------------
    async def done_among(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these input events were fully processed before (one round trip)."""
        if not event_ids:
            return set()
        values = await self.client.mget([self._key("done", e) for e in event_ids])
        return {e for e, v in zip(event_ids, values, strict=True) if v is not None}

    async def decision_state(
        self, application_ids: Sequence[str], funders: Mapping[str, Sequence[str]]
    ) -> DecisionState:
        """Earlier claims and reservations of these applications and the funders' usage.

        One read before deciding: a redelivered application keeps the funder it holds
        (its amount is already in the usage) and the disbursement it claimed.
        """
        wanted = [(t, f) for t, ids in funders.items() for f in ids]
        keys = [self._key("disb", a) for a in application_ids]
        keys += [self._key("funding", a) for a in application_ids]
        keys += [self._key("funder", t, f) for t, f in wanted]
        if not keys:
            return DecisionState({}, {}, {})
        values = await self.client.mget(keys)
        n = len(application_ids)
        claims = {}
        for application_id, value in zip(application_ids, values[:n], strict=True):
            claim = parse_claim(value, "")
            if claim is not None:
                claims[application_id] = claim
        held = {
            a: v.decode() if isinstance(v, bytes) else str(v)
            for a, v in zip(application_ids, values[n : 2 * n], strict=True)
            if v is not None
        }
        used: dict[str, dict[str, int]] = {t: {} for t in funders}
        for (tenant, funder), value in zip(wanted, values[2 * n :], strict=True):
            used[tenant][funder] = int(value or 0)
        return DecisionState(claims, held, used)

    async def claim_disbursements(
        self, claims: Sequence[tuple[str, str, bytes]]
    ) -> list[DisbursementClaim]:
        """Claim (application_id, disbursement event id, payload) with SET NX, in one round trip.

        The payload (the records about to be sent) is kept with the pending claim: a
        redelivery that finds the claim pending sends exactly them again.
        """
        if not claims:
            return []
        keys = [self._key("disb", application_id) for application_id, _, _ in claims]
        values = [pending_claim(event_id, payload) for _, event_id, payload in claims]
        replies = await self._claim(keys=keys, args=[self.ttl.disbursement, *values])
        out = []
        for (_, event_id, _), current in zip(claims, replies, strict=True):
            claim = parse_claim(current, event_id) if current else None
            out.append(claim or DisbursementClaim("new", event_id))
        return out

    async def record_outcomes(
        self,
        disbursed: Sequence[Disbursed],
        scored: Mapping[str, Mapping[str, Any]],
        done: Sequence[str],
    ) -> None:
        """Record a batch's outcomes once its outputs were acknowledged (one atomic call).

        Starts the green loans' purpose watches, marks disbursements sent, keeps the scored
        features for late labels and marks the inputs done. Until it ran, the claims stay
        pending and a redelivery redoes the (idempotent) rest.
        """
        keys: list[str] = []
        args: list[bytes | str | int] = []

        def put(key: str, value: bytes | str, ttl: int, only_new: bool = False) -> None:
            keys.append(key)
            args.extend((value, ttl, "1" if only_new else "0"))

        for item in disbursed:
            if item.watch is not None:
                watch = orjson.dumps(item.watch.to_dict())
                ttl = item.term_months * 31 * 86_400 + self.ttl.case
                put(self._key("integrity", item.watch.loan_id), watch, ttl, True)
        for item in disbursed:
            sent = f"sent:{item.event_id}"
            put(self._key("disb", item.application_id), sent, self.ttl.disbursement)
        for event_id, entry in scored.items():
            put(self._key("pending", event_id), orjson.dumps(entry), self.ttl.pending)
        for event_id in done:
            put(self._key("done", event_id), b"1", self.ttl.done)
        if keys:
            await self._set_many(keys=keys, args=args)

    async def purpose_watches(self, loan_ids: Sequence[str]) -> dict[str, IntegrityState]:
        """Watched loans among these (non-green or unknown loans are absent)."""
        ids = list(dict.fromkeys(loan_ids))
        if not ids:
            return {}
        values = await self.client.mget([self._key("integrity", i) for i in ids])
        return {
            i: IntegrityState.from_dict(orjson.loads(v))
            for i, v in zip(ids, values, strict=True)
            if v
        }

    async def save_purpose_watches(self, states: Sequence[IntegrityState]) -> None:
        """Store updated watches, keeping their remaining lifetime."""
        if not states:
            return
        pipe = self.client.pipeline(transaction=False)
        for state in states:
            pipe.set(
                self._key("integrity", state.loan_id),
                orjson.dumps(state.to_dict()),
                xx=True,
                keepttl=True,
            )
        await pipe.execute()

    # -- funding partners -------------------------------------------------------------
    async def funder_usages(
        self, funders: Mapping[str, Sequence[str]]
    ) -> dict[str, dict[str, int]]:
        """Used capacity per tenant and funder, in one read for a whole batch's lenders."""
        wanted = [(t, f) for t, ids in funders.items() for f in ids]
        out: dict[str, dict[str, int]] = {t: {} for t in funders}
        if not wanted:
            return out
        values = await self.client.mget([self._key("funder", t, f) for t, f in wanted])
        for (tenant, funder), value in zip(wanted, values, strict=True):
            out[tenant][funder] = int(value or 0)
        return out

    async def reserve_fundings(self, requests: Sequence[FundingRequest]) -> list[str | None]:
        """Reserve capacity for each application in order, in one atomic call.

        Per request: the funder that holds the application's reservation (an earlier
        one wins: a redelivered application gets its first funder back), or None when
        the funder is full.
        """
        if not requests:
            return []
        keys: list[str] = []
        args: list[int | str] = [self.ttl.disbursement]
        for r in requests:
            keys.append(self._key("funder", r.tenant_id, r.funder_id))
            keys.append(self._key("funding", r.application_id))
            args += [r.amount_minor, r.capacity_minor, r.funder_id]
        replies = await self._reserve_funding(keys=keys, args=args)
        return [(r.decode() if isinstance(r, bytes) else str(r)) or None for r in replies]

    # -- lender configurations ---------------------------------------------------------------
    async def put_config_if_newer(
        self, tenant_id: str, version: int, config: Mapping[str, Any]
    ) -> bool:
        """Store a lender config unless an equal or newer version is stored."""
        applied = await self._set_if_newer(
            keys=[self._key("cfg", tenant_id)],
            args=[version, orjson.dumps(config), self.ttl.config],
        )
        return bool(applied)

    async def configs(self, tenant_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored configs of these tenants (missing tenants are absent)."""
        tenants = list(dict.fromkeys(tenant_ids))
        if not tenants:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for tenant in tenants:
            pipe.hget(self._key("cfg", tenant), "config")
        replies = await pipe.execute()
        return {t: orjson.loads(r) for t, r in zip(tenants, replies, strict=True) if r}

    # -- learned models ---------------------------------------------------------------------
    async def save_model(self, name: str, tenant_id: str, state: Mapping[str, Any]) -> None:
        """Persist a model's JSON state (the learner writes, scorers reload)."""
        await self.client.set(
            self._key("model", name, tenant_id), orjson.dumps(state), ex=self.ttl.model
        )

    async def load_models(self, name: str, tenant_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored states of model `name` for these tenants."""
        tenants = list(dict.fromkeys(tenant_ids))
        if not tenants:
            return {}
        values = await self.client.mget([self._key("model", name, t) for t in tenants])
        return {t: orjson.loads(v) for t, v in zip(tenants, values, strict=True) if v}

    # -- fusion: the LR weight adjustment model monitoring recommends ---------------------
    async def save_lr_adjustments(self, adjustments: Mapping[str, float]) -> None:
        """Publish tenants' LR weight adjustments (last writer wins; every worker reloads)."""
        if not adjustments:
            return
        pipe = self.client.pipeline(transaction=False)
        for tenant, value in adjustments.items():
            pipe.set(self._key("lr-adjust", tenant), repr(float(value)), ex=self.ttl.model)
        await pipe.execute()

    async def lr_adjustments(self, tenant_ids: Iterable[str]) -> dict[str, float]:
        """Stored adjustments of these tenants (tenants never adjusted are absent)."""
        tenants = list(dict.fromkeys(tenant_ids))
        if not tenants:
            return {}
        values = await self.client.mget([self._key("lr-adjust", t) for t in tenants])
        found = {}
        for tenant, raw in zip(tenants, values, strict=True):
            try:
                value = float(raw) if raw is not None else math.nan
            except ValueError:
                value = math.nan
            if math.isfinite(value):  # anything else is not ours: ignore it
                found[tenant] = value
        return found

    # -- late labels ------------------------------------------------------------------------
    async def take_scored(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Remove and return the pending entries of labelled events (GETDEL: learn once)."""
        if not event_ids:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for event_id in event_ids:
            pipe.getdel(self._key("pending", event_id))
        replies = await pipe.execute()
        return {e: orjson.loads(r) for e, r in zip(event_ids, replies, strict=True) if r}

    async def mark_tick(self, day: str, ttl: int = _TICK_TTL) -> bool:
        """True for the first worker to mark this day (the one that publishes its tick)."""
        return bool(await self.client.set(self._key("tick", day), b"1", nx=True, ex=ttl))

    async def first_findings(
        self, findings: Sequence[tuple[str, str, str]], ttl: int
    ) -> list[bool]:
        """For (subject ref, rule, event id): True where that event holds the finding.

        A device farm keeps reporting signals; fraud operations want one alert per finding
        within `ttl` seconds, not one per signal. The first event to find it holds it, and
        holds it again when redelivered (its alert may not have been sent before a crash),
        so the alert is sent at least once and only for that event. One Lua call.
        """
        if not findings:
            return []
        keys = [self._key("finding", subject, rule) for subject, rule, _ in findings]
        claimants = [event_id for _, _, event_id in findings]
        return [bool(r) for r in await self._findings(keys=keys, args=[ttl, *claimants])]

    async def close_cases(self, cases: Mapping[str, str]) -> None:
        """Mark review/alert cases closed with their label."""
        if not cases:
            return
        pipe = self.client.pipeline(transaction=False)
        for case_id, label in cases.items():
            pipe.set(self._key("case", case_id), f"closed:{label}", ex=self.ttl.case)
        await pipe.execute()

    async def case_status(self, case_id: str) -> str | None:
        """closed:<LABEL>, or None while open/unknown."""
        value = await self.client.get(self._key("case", case_id))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)
