"""In-memory implementations of the store interfaces (infra/stores.py), for fast tests.

Same contracts as the Redis stores, checked by the same contract tests (the memory ones in
the unit tier, the Redis ones in the integration tier): windows count by event time, caps
trim the oldest members, replays change nothing, values round-trip through JSON. Not
modelled: key expiry (a test's state lives as long as the store object) and concurrency
between processes (one event loop, one store). Never used by a worker.
"""

from __future__ import annotations

import builtins
import itertools
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import orjson

from greencredit.models.features import (
    ApplicationVelocity,
    DeviceState,
    TransactionFeatures,
    WindowCounts,
    epoch_ms,
    from_epoch_ms,
    geo_mismatch,
)
from greencredit.models.green import IntegrityState
from greencredit.streams.audit import GENESIS_HASH

from .engine_store import (
    DecisionState,
    Disbursed,
    DisbursementClaim,
    FundingRequest,
    parse_claim,
    pending_claim,
)
from .face_blacklist import (
    BlacklistMatcher,
    DimensionMismatchError,
    EntryInfo,
    _check_token,
    normalise_embeddings,
)
from .feature_store import (
    ApplicationKeys,
    DeviceSignalKeys,
    Retention,
    TransactionKeys,
    _amount_stats,
)
from .loan_store import LoanOpening

__all__ = [
    "MemoryChainHeads",
    "MemoryEngineState",
    "MemoryFaceBlacklist",
    "MemoryFeatureStore",
    "MemoryLoanStore",
]

_Keyed = TypeVar("_Keyed", ApplicationKeys, TransactionKeys)
_R = TypeVar("_R")


def _json(value: Any) -> Any:
    """What a JSON round trip through the store gives back (as Redis would)."""
    return orjson.loads(orjson.dumps(value))


# ----------------------------------------------------------------------------- features


class _Window:
    """A sorted set of member -> event time (ms), as the Lua scripts keep them."""

    def __init__(self) -> None:
        self.scores: dict[str, int] = {}

    def remember(self, member: str, at: int, mode: str, retention_ms: int, cap: int) -> None:
        current = self.scores.get(member)
        if current is None or (mode == "GT" and at > current):
            self.scores[member] = at
        newest = max(self.scores.values())
        kept = [(s, m) for m, s in self.scores.items() if s >= newest - retention_ms]
        self.scores = {m: s for s, m in sorted(kept)[-cap:]}

    def count(self, after_ms: int, upto_ms: int | None = None) -> int:
        """Members with a time in (after, upto]; upto None: no upper bound."""
        return sum(
            1 for s in self.scores.values() if s > after_ms and (upto_ms is None or s <= upto_ms)
        )

    def __contains__(self, member: str) -> bool:
        return member in self.scores


@dataclass
class _Device:
    signal: dict[str, Any] = field(default_factory=dict)
    ids: _Window = field(default_factory=_Window)
    customers: _Window = field(default_factory=_Window)
    fingerprints: _Window = field(default_factory=_Window)


@dataclass
class _Amounts:
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0


class MemoryFeatureStore:
    """The feature store's windows and statistics in dicts (same results as the Lua scripts)."""

    def __init__(self, retention: Retention | None = None, done: set[str] | None = None) -> None:
        """Empty store with the given windows and caps (the Redis store's defaults).

        ``done`` holds the done markers; pass :attr:`MemoryEngineState.done` to share them as
        the Redis stores share their keys.
        """
        r = retention or Retention()
        ms = timedelta(milliseconds=1)
        self._hour, self._day, self._week = r.hour // ms, r.day // ms, r.week // ms
        self._link, self._merchant_window = r.link_window // ms, r.merchant_window // ms
        self._r = r
        self._windows: dict[str, _Window] = {}
        self._devices: dict[str, _Device] = {}
        self._amounts: dict[str, _Amounts] = {}
        self._seen_txn: dict[str, tuple[int, float, float, bool]] = {}
        self.done: set[str] = set() if done is None else done

    async def load_scripts(self) -> None:
        """Nothing to prepare."""

    def _window(self, key: str) -> _Window:
        return self._windows.setdefault(key, _Window())

    def _device(self, device_ref: str) -> _Device:
        return self._devices.setdefault(device_ref, _Device())

    def _counts(self, key: str, at: int, week: bool) -> WindowCounts:
        w = self._window(key)
        return WindowCounts(
            w.count(at - self._hour, at),
            w.count(at - self._day, at),
            w.count(at - self._week, at) if week else None,
        )

    def _state(self, device_ref: str, at: int) -> DeviceState:
        device = self._device(device_ref)
        s = device.signal
        since = at - self._link
        return DeviceState(
            device_ref=device_ref,
            last_signal_at=from_epoch_ms(s["signal_ms"]) if "signal_ms" in s else None,
            is_emulator=s.get("emulator", False),
            is_rooted=s.get("rooted", False),
            is_jailbroken=s.get("jailbroken", False),
            vpn_active=s.get("vpn", False),
            proxy_active=s.get("proxy", False),
            sim_changed_at=from_epoch_ms(s["sim_ms"]) if "sim_ms" in s else None,
            geo_country=s.get("country"),
            distinct_identities_30d=device.ids.count(since),
            distinct_customers_30d=device.customers.count(since),
            distinct_fingerprints_30d=device.fingerprints.count(since),
        )

    def _remember_customer(self, device_ref: str, customer_id: str, at: int) -> None:
        self._device(device_ref).customers.remember(
            customer_id, at, "GT", self._link, self._r.link_cap
        )

    async def record_applications(
        self, batch: Sequence[ApplicationKeys]
    ) -> list[ApplicationVelocity]:
        """Record applications; velocity (itself included) and the device's state."""
        out = []
        for a in batch:
            at = epoch_ms(a.occurred_at)
            counts = []
            for key in (f"dev:{a.device_ref}", f"id:{a.id_ref}", f"phone:{a.phone_ref}"):
                self._window(key).remember(a.event_id, at, "NX", self._week, self._r.velocity_cap)
                counts.append(self._counts(key, at, week=True))
            device = self._device(a.device_ref)
            device.ids.remember(a.id_ref, at, "GT", self._link, self._r.link_cap)
            self._remember_customer(a.device_ref, a.customer_id, at)
            device_counts, id_counts, phone_counts = counts
            out.append(
                ApplicationVelocity(
                    a.event_id,
                    device_counts,
                    id_counts,
                    phone_counts,
                    self._state(a.device_ref, at),
                )
            )
        return out

    async def record_new_applications(
        self, batch: Sequence[ApplicationKeys]
    ) -> list[ApplicationVelocity | None]:
        """As record_applications; None (nothing recorded) for applications already done."""
        return await self._unless_done(batch, self.record_applications)

    def mark_done_later(self, event_ids: Iterable[str]) -> None:
        """Mark done at once: the Redis store's next call writes them before it reads any."""
        self.done.update(event_ids)

    async def flush_done(self) -> None:
        """Nothing waits here."""

    async def record_new_transactions(
        self, batch: Sequence[TransactionKeys]
    ) -> list[TransactionFeatures | None]:
        """As record_transactions; None (nothing recorded) for transactions already done."""
        return await self._unless_done(batch, self.record_transactions)

    async def _unless_done(
        self, batch: Sequence[_Keyed], record: Callable[[list[_Keyed]], Awaitable[list[_R]]]
    ) -> list[_R | None]:
        """`record` the events not done yet; None in the place of each done one."""
        fresh = [e for e in batch if e.event_id not in self.done]
        recorded = iter(await record(fresh))
        return [None if e.event_id in self.done else next(recorded) for e in batch]

    async def record_transactions(
        self, batch: Sequence[TransactionKeys]
    ) -> list[TransactionFeatures]:
        """Record transactions; card velocity (itself included), amount history before it."""
        out = []
        for t in batch:
            at = epoch_ms(t.occurred_at)
            card = f"card:{t.card_ref}"
            before = self._seen_txn.get(t.event_id)
            if before is None:  # the replay guard: a seen event changes nothing
                before = self._apply_transaction(t, at, card)
            n, mean, m2, new_merchant = before
            state = None if t.device_ref is None else self._state(t.device_ref, at)
            out.append(
                TransactionFeatures(
                    event_id=t.event_id,
                    card=self._counts(card, at, week=False),
                    amount_history=_amount_stats(n, mean, m2),
                    is_new_merchant=new_merchant,
                    geo_mismatch=geo_mismatch(
                        t.ip_country, state.geo_country if state else None, t.merchant_country
                    ),
                    device_state=state,
                )
            )
        return out

    def _apply_transaction(
        self, t: TransactionKeys, at: int, card: str
    ) -> tuple[int, float, float, bool]:
        amounts = self._amounts.setdefault(t.account_id, _Amounts())
        merchants = self._window(f"merchants:{t.account_id}")
        before = (amounts.n, amounts.mean, amounts.m2, t.merchant_id not in merchants)
        self._seen_txn[t.event_id] = before
        if t.amount_minor >= 0:  # refunds are not spending behaviour
            n1 = amounts.n + 1
            delta = t.amount_minor - amounts.mean
            mean1 = amounts.mean + delta / n1
            amounts.m2 = amounts.m2 + delta * (t.amount_minor - mean1)
            amounts.n, amounts.mean = n1, mean1
        merchants.remember(t.merchant_id, at, "GT", self._merchant_window, self._r.merchant_cap)
        self._window(card).remember(t.event_id, at, "NX", self._day, self._r.velocity_cap)
        if t.device_ref is not None:
            self._remember_customer(t.device_ref, t.customer_id, at)
        return before

    async def record_device_signals(self, batch: Sequence[DeviceSignalKeys]) -> list[DeviceState]:
        """Record signals: the newest (time, event id) sets the flags, in any order."""
        out = []
        for s in batch:
            at = epoch_ms(s.occurred_at)
            device = self._device(s.device_ref)
            stored = device.signal
            newer = "signal_ms" not in stored or (at, s.event_id) >= (
                stored["signal_ms"],
                stored["signal_id"],
            )
            if newer:
                stored.update(
                    signal_ms=at,
                    signal_id=s.event_id,
                    emulator=s.is_emulator,
                    rooted=s.is_rooted,
                    jailbroken=s.is_jailbroken,
                    vpn=s.vpn_active,
                    proxy=s.proxy_active,
                )
                # An unknown SIM age or country does not erase what an earlier signal said.
                if s.sim_change_age_hours is not None:
                    stored["sim_ms"] = at - s.sim_change_age_hours * 3_600_000
                if s.geo_country:
                    stored["country"] = s.geo_country.upper()
            device.fingerprints.remember(
                s.fingerprint_ref, at, "GT", self._link, self._r.fingerprint_cap
            )
            if s.customer_id is not None:
                self._remember_customer(s.device_ref, s.customer_id, at)
            out.append(self._state(s.device_ref, at))
        return out


# ----------------------------------------------------------------------------- engine state


class MemoryEngineState:
    """Engine state (markers, claims, funders, configs, models, labels, cases) in dicts."""

    def __init__(self) -> None:
        """Empty state."""
        self.done: set[str] = set()
        # application id -> b"pending:<id>\n<payload>" | b"sent:<id>", as stored in Redis
        self.disbursements: dict[str, bytes] = {}
        self.pending: dict[str, Any] = {}
        self.watches: dict[str, Any] = {}
        self.funder_used: dict[tuple[str, str], int] = {}
        self.funding: dict[str, str] = {}
        self.config_docs: dict[str, tuple[int, Any]] = {}
        self.models: dict[tuple[str, str], Any] = {}
        self.adjustments: dict[str, float] = {}
        self.findings: dict[tuple[str, str], str] = {}  # finding -> the event holding it
        self.ticks: set[str] = set()
        self.cases: dict[str, str] = {}

    async def done_among(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these input events were fully processed before."""
        return {e for e in event_ids if e in self.done}

    async def decision_state(
        self, application_ids: Sequence[str], funders: Mapping[str, Sequence[str]]
    ) -> DecisionState:
        """Earlier claims and funder reservations of these applications, funders' usage."""
        claims = {}
        for application_id in application_ids:
            claim = parse_claim(self.disbursements.get(application_id), "")
            if claim is not None:
                claims[application_id] = claim
        held = {a: self.funding[a] for a in application_ids if a in self.funding}
        return DecisionState(claims, held, await self.funder_usages(funders))

    async def claim_disbursements(
        self, claims: Sequence[tuple[str, str, bytes]]
    ) -> list[DisbursementClaim]:
        """Claim (application_id, disbursement event id, payload); the first claim wins."""
        out = []
        for application_id, event_id, payload in claims:
            current = self.disbursements.get(application_id)
            if current is None:
                self.disbursements[application_id] = pending_claim(event_id, payload)
                out.append(DisbursementClaim("new", event_id))
            else:
                out.append(parse_claim(current, event_id) or DisbursementClaim("new", event_id))
        return out

    async def record_outcomes(
        self,
        disbursed: Sequence[Disbursed],
        scored: Mapping[str, Mapping[str, Any]],
        done: Sequence[str],
    ) -> None:
        """Start watches, mark disbursements sent, keep scored features, mark inputs done."""
        for item in disbursed:
            if item.watch is not None:
                self.watches.setdefault(item.watch.loan_id, _json(item.watch.to_dict()))
            self.disbursements[item.application_id] = f"sent:{item.event_id}".encode()
        for event_id, entry in scored.items():
            self.pending[event_id] = _json(entry)
        self.done.update(done)

    async def purpose_watches(self, loan_ids: Sequence[str]) -> dict[str, IntegrityState]:
        """Watched loans among these."""
        return {
            i: IntegrityState.from_dict(self.watches[i])
            for i in dict.fromkeys(loan_ids)
            if i in self.watches
        }

    async def save_purpose_watches(self, states: Sequence[IntegrityState]) -> None:
        """Store updated watches (only watches that exist)."""
        for state in states:
            if state.loan_id in self.watches:
                self.watches[state.loan_id] = _json(state.to_dict())

    async def funder_usages(
        self, funders: Mapping[str, Sequence[str]]
    ) -> dict[str, dict[str, int]]:
        """Used capacity per tenant and funder."""
        return {t: {f: self.funder_used.get((t, f), 0) for f in ids} for t, ids in funders.items()}

    async def reserve_fundings(self, requests: Sequence[FundingRequest]) -> list[str | None]:
        """Reserve capacity once per application, in order; the funder holding it, or None."""
        out: list[str | None] = []
        for r in requests:
            if r.application_id in self.funding:
                out.append(self.funding[r.application_id])
                continue
            used = self.funder_used.get((r.tenant_id, r.funder_id), 0)
            if used + r.amount_minor > r.capacity_minor:
                out.append(None)
                continue
            self.funder_used[(r.tenant_id, r.funder_id)] = used + r.amount_minor
            self.funding[r.application_id] = r.funder_id
            out.append(r.funder_id)
        return out

    async def put_config_if_newer(
        self, tenant_id: str, version: int, config: Mapping[str, Any]
    ) -> bool:
        """Store a lender config unless an equal or newer version is stored."""
        current = self.config_docs.get(tenant_id)
        if current is not None and current[0] >= version:
            return False
        self.config_docs[tenant_id] = (version, _json(config))
        return True

    async def configs(self, tenant_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored config documents of these tenants."""
        return {
            t: _json(self.config_docs[t][1])
            for t in dict.fromkeys(tenant_ids)
            if t in self.config_docs
        }

    async def save_model(self, name: str, tenant_id: str, state: Mapping[str, Any]) -> None:
        """Persist a model's JSON state."""
        self.models[(name, tenant_id)] = _json(state)

    async def load_models(self, name: str, tenant_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored states of model `name` for these tenants."""
        return {
            t: _json(self.models[(name, t)])
            for t in dict.fromkeys(tenant_ids)
            if (name, t) in self.models
        }

    async def save_lr_adjustments(self, adjustments: Mapping[str, float]) -> None:
        """Publish tenants' shared LR weight adjustments (last writer wins)."""
        self.adjustments.update({t: float(v) for t, v in adjustments.items()})

    async def lr_adjustments(self, tenant_ids: Iterable[str]) -> dict[str, float]:
        """Stored adjustments of these tenants."""
        return {t: self.adjustments[t] for t in dict.fromkeys(tenant_ids) if t in self.adjustments}

    async def take_scored(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Remove and return the pending entries of labelled events (learn once)."""
        return {e: self.pending.pop(e) for e in event_ids if e in self.pending}

    async def mark_tick(self, day: str, ttl: int = 3 * 86_400) -> bool:
        """True the first time this day is marked (expiry is not modelled)."""
        first = day not in self.ticks
        self.ticks.add(day)
        return first

    async def first_findings(
        self, findings: Sequence[tuple[str, str, str]], ttl: int
    ) -> list[bool]:
        """True where the event holds the (subject, rule) finding (expiry is not modelled)."""
        out = []
        for subject, rule, event_id in findings:
            holder = self.findings.setdefault((subject, rule), event_id)
            out.append(holder == event_id)
        return out

    async def close_cases(self, cases: Mapping[str, str]) -> None:
        """Mark review/alert cases closed with their label."""
        self.cases.update({c: f"closed:{label}" for c, label in cases.items()})

    async def case_status(self, case_id: str) -> str | None:
        """closed:<LABEL>, or None while open/unknown."""
        return self.cases.get(case_id)


# ----------------------------------------------------------------------------- loans


class MemoryLoanStore:
    """Loan states with compare-and-set, the open-loan index and masked contacts, in dicts."""

    def __init__(self) -> None:
        """Empty store."""
        self.loans: dict[str, Any] = {}
        self.index: dict[str, dict[str, int]] = {}
        self.customer_contacts: dict[str, dict[str, str]] = {}

    async def load(self, loan_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored states of these loans."""
        return {i: _json(self.loans[i]) for i in loan_ids if i in self.loans}

    async def compare_and_set(
        self, updates: Sequence[tuple[str, int, Mapping[str, Any], int]]
    ) -> list[bool]:
        """Write where the stored version matches (-1: only if the loan does not exist)."""
        out = []
        for loan_id, expected, state, _term_days in updates:
            current = self.loans.get(loan_id)
            matches = expected == -1 if current is None else current["version"] == expected
            if matches:
                self.loans[loan_id] = _json(state)
            out.append(matches)
        return out

    async def open(self, loans: Sequence[LoanOpening]) -> None:
        """Open loans that do not exist yet and index them (idempotent)."""
        for loan in loans:
            self.loans.setdefault(loan.loan_id, _json(loan.state))
            self.index.setdefault(loan.tenant_id, {}).setdefault(loan.loan_id, loan.opened_day)

    async def index_open(self, loans: Iterable[tuple[str, str, int]]) -> None:
        """Add (tenant_id, loan_id, opened epoch day) to the open-loan index."""
        for tenant_id, loan_id, opened in loans:
            self.index.setdefault(tenant_id, {})[loan_id] = opened

    async def close(self, loans: Iterable[tuple[str, str]]) -> None:
        """Remove closed loans from the index (an emptied index disappears, as in Redis)."""
        for tenant_id, loan_id in loans:
            index = self.index.get(tenant_id, {})
            index.pop(loan_id, None)
            if not index:
                self.index.pop(tenant_id, None)

    async def tenants_with_open_loans(self) -> list[str]:
        """Tenants that have an open-loan index, sorted."""
        return sorted(self.index)

    async def open_loans(self, tenant_id: str, start: int, count: int) -> list[str]:
        """A page of a tenant's open loans, oldest first (ties by loan id)."""
        ordered = sorted(self.index.get(tenant_id, {}).items(), key=lambda kv: (kv[1], kv[0]))
        return [loan_id for loan_id, _ in ordered[start : start + count]]

    async def put_contacts(self, contacts: Mapping[str, Mapping[str, str]]) -> None:
        """Store masked contact fields per customer (merged)."""
        for customer_id, fields in contacts.items():
            self.customer_contacts.setdefault(customer_id, {}).update(fields)

    async def contacts(self, customer_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Masked contact fields per customer."""
        return {
            c: dict(self.customer_contacts[c])
            for c in dict.fromkeys(customer_ids)
            if self.customer_contacts.get(c)
        }


# ----------------------------------------------------------------------------- faces


@dataclass
class _Entry:
    vector: np.ndarray
    reason_code: str
    added_by: str
    added_at: str
    model_version: str


class MemoryFaceBlacklist:
    """The blacklist in a dict, with the same versioning, audit and matcher as in Redis."""

    def __init__(self) -> None:
        """Empty blacklist (version 0)."""
        self._entries: dict[str, _Entry] = {}
        self._dim: int | None = None
        self._version = 0
        self._audit: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    async def add(
        self, embedding: np.ndarray, reason_code: str, actor: str, model_version: str
    ) -> str:
        """Store one embedding (renormalised, float32); its new entry id."""
        for name, value in (
            ("reason_code", reason_code),
            ("actor", actor),
            ("model_version", model_version),
        ):
            _check_token(name, value)
        vector = normalise_embeddings(embedding)
        if len(vector) != 1:
            raise ValueError(f"add takes one embedding, got {len(vector)}")
        dim = vector.shape[1]
        if self._dim is not None and dim != self._dim:
            raise DimensionMismatchError(
                f"embedding dimension {dim} does not match the blacklist's {self._dim}"
            )
        self._dim = dim
        entry_id = f"bl-{next(self._ids):032x}"
        at = datetime.now(UTC).isoformat()
        self._entries[entry_id] = _Entry(
            vector[0].astype("<f4"), reason_code, actor, at, model_version
        )
        self._version += 1
        self._log("add", entry_id, actor, at, reason_code)
        return entry_id

    def _log(self, action: str, entry_id: str, actor: str, at: str, reason: str) -> None:
        self._audit.append(
            {
                "id": f"{len(self._audit) + 1}-0",
                "action": action,
                "entry_id": entry_id,
                "actor": actor,
                "at": at,
                "reason_code": reason,
            }
        )

    async def remove(self, entry_id: str, actor: str) -> bool:
        """Delete an entry; False when it does not exist (nothing audited)."""
        _check_token("actor", actor)
        entry = self._entries.pop(entry_id, None)
        if entry is None:
            return False
        self._version += 1
        self._log("remove", entry_id, actor, datetime.now(UTC).isoformat(), entry.reason_code)
        return True

    async def list(self, limit: int = 100, cursor: int = 0) -> builtins.list[EntryInfo]:
        """Entries oldest first, a page of `limit` from offset `cursor`."""
        if limit <= 0 or cursor < 0:
            raise ValueError("limit must be > 0 and cursor >= 0")
        page = builtins.list(self._entries.items())[cursor : cursor + limit]
        return [
            EntryInfo(
                entry_id=entry_id,
                dim=len(e.vector),
                reason_code=e.reason_code,
                added_by=e.added_by,
                added_at=datetime.fromisoformat(e.added_at),
                model_version=e.model_version,
            )
            for entry_id, e in page
        ]

    async def count(self) -> int:
        """Number of entries."""
        return len(self._entries)

    async def audit(self, limit: int = 100) -> builtins.list[dict[str, Any]]:
        """The latest audit records, newest first."""
        return [dict(r) for r in reversed(self._audit[-limit:])]

    async def version(self) -> int:
        """The counter bumped by every add and remove."""
        return self._version

    async def matcher(self, threshold: float) -> BlacklistMatcher:
        """A matcher over the current entries."""
        ids = builtins.list(self._entries)
        matrix = (
            np.stack([self._entries[i].vector for i in ids]).astype(np.float32)
            if ids
            else np.empty((0, self._dim or 0), dtype=np.float32)
        )
        return BlacklistMatcher(ids, matrix, threshold, self._dim, self._version)


# ----------------------------------------------------------------------------- chain heads


class MemoryChainHeads:
    """Chain heads in a dict; a test records what a writer sealed last."""

    def __init__(self, heads: Mapping[tuple[str, int], str] | None = None) -> None:
        """Start from these heads (absent partitions are empty)."""
        self.heads = dict(heads or {})

    async def head(self, topic: str, partition: int) -> str:
        """The partition's last record_hash, GENESIS_HASH when nothing was recorded."""
        return self.heads.get((topic, partition), GENESIS_HASH)

    def record(self, topic: str, partition: int, record_hash: str) -> None:
        """A record with this hash was appended to the partition."""
        self.heads[(topic, partition)] = record_hash
