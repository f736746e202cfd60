"""The engine's state stores as small interfaces, with the Redis and Kafka implementations.

Each store is a :class:`typing.Protocol`: a processor names only the stores it uses, and a
test gives it the in-memory implementations of infra/memory.py (no server, milliseconds)
while the integration tier runs the same contract tests against Redis and the broker
(tests/unit/test_store_contracts.py and tests/integration/test_redis_store_contracts.py).

Implementations: :class:`~greencredit.infra.engine_store.EngineStore`,
:class:`~greencredit.infra.feature_store.FeatureStore`,
:class:`~greencredit.infra.loan_store.LoanStore`,
:class:`~greencredit.infra.face_blacklist.FaceBlacklist` (Redis) and
:class:`KafkaChainHeads` (the audited topics themselves).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from redis.asyncio import Redis

from greencredit.models.features import ApplicationVelocity, DeviceState, TransactionFeatures
from greencredit.models.green import IntegrityState
from greencredit.streams.codec import AvroCodec

from .audit_head import last_record_hash
from .engine_store import (
    DecisionState,
    Disbursed,
    DisbursementClaim,
    EngineStore,
    FundingRequest,
)
from .face_blacklist import BlacklistMatcher, EntryInfo, FaceBlacklist
from .feature_store import ApplicationKeys, DeviceSignalKeys, FeatureStore, TransactionKeys
from .loan_store import LoanOpening, LoanStore

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "ChainHeadStore",
    "EngineStateStore",
    "FaceBlacklistStore",
    "FeatureStoreProtocol",
    "KafkaChainHeads",
    "LoanStoreProtocol",
    "RedisStores",
]

# Settings.redis_key_prefix's default; every Redis store takes the prefix it is given.
DEFAULT_KEY_PREFIX = "gc:"


@runtime_checkable
class EngineStateStore(Protocol):
    """Idempotency markers, disbursement claims, funders, configs, models, labels, cases."""

    async def done_among(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these input events were fully processed before."""
        ...

    async def decision_state(
        self, application_ids: Sequence[str], funders: Mapping[str, Sequence[str]]
    ) -> DecisionState:
        """Earlier claims and funder reservations of these applications, funders' usage."""
        ...

    async def claim_disbursements(
        self, claims: Sequence[tuple[str, str, bytes]]
    ) -> list[DisbursementClaim]:
        """Claim (application_id, disbursement event id, payload); the first claim wins."""
        ...

    async def record_outcomes(
        self,
        disbursed: Sequence[Disbursed],
        scored: Mapping[str, Mapping[str, Any]],
        done: Sequence[str],
    ) -> None:
        """Start purpose watches, mark disbursements sent, keep scored features, mark done."""
        ...

    async def purpose_watches(self, loan_ids: Sequence[str]) -> dict[str, IntegrityState]:
        """Watched loans among these."""
        ...

    async def save_purpose_watches(self, states: Sequence[IntegrityState]) -> None:
        """Store updated watches (only watches that exist are updated)."""
        ...

    async def funder_usages(
        self, funders: Mapping[str, Sequence[str]]
    ) -> dict[str, dict[str, int]]:
        """Capacity already used per tenant and funder, for several tenants in one read."""
        ...

    async def reserve_fundings(self, requests: Sequence[FundingRequest]) -> list[str | None]:
        """Reserve capacity once per application, in order; the funder holding it, or None."""
        ...

    async def put_config_if_newer(
        self, tenant_id: str, version: int, config: Mapping[str, Any]
    ) -> bool:
        """Store a lender config unless an equal or newer version is stored."""
        ...

    async def configs(self, tenant_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored config documents of these tenants."""
        ...

    async def save_model(self, name: str, tenant_id: str, state: Mapping[str, Any]) -> None:
        """Persist a model's JSON state."""
        ...

    async def load_models(self, name: str, tenant_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored states of model `name` for these tenants."""
        ...

    async def save_lr_adjustments(self, adjustments: Mapping[str, float]) -> None:
        """Publish tenants' shared LR weight adjustments."""
        ...

    async def lr_adjustments(self, tenant_ids: Iterable[str]) -> dict[str, float]:
        """Stored adjustments of these tenants."""
        ...

    async def take_scored(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Remove and return the pending entries of labelled events."""
        ...

    async def mark_tick(self, day: str, ttl: int = 3 * 86_400) -> bool:
        """True for the first caller to mark this day (who publishes the day's tick)."""
        ...

    async def first_findings(
        self, findings: Sequence[tuple[str, str, str]], ttl: int
    ) -> list[bool]:
        """True where the event (the third item) holds the (subject, rule) finding.

        The first event to find it within `ttl` seconds holds it; a redelivery of that event
        holds it again (its alert may not have been sent), any other event does not.
        """
        ...

    async def close_cases(self, cases: Mapping[str, str]) -> None:
        """Mark review/alert cases closed with their label."""
        ...

    async def case_status(self, case_id: str) -> str | None:
        """closed:<LABEL>, or None while open/unknown."""
        ...


@runtime_checkable
class FeatureStoreProtocol(Protocol):
    """Velocity windows, device state and amount statistics, recorded batch by batch."""

    async def load_scripts(self) -> None:
        """Prepare the store (Redis: load the Lua scripts)."""
        ...

    async def record_applications(
        self, batch: Sequence[ApplicationKeys]
    ) -> list[ApplicationVelocity]:
        """Record applications; each one's velocity (itself included) and device state."""
        ...

    async def record_new_applications(
        self, batch: Sequence[ApplicationKeys]
    ) -> list[ApplicationVelocity | None]:
        """As record_applications; None (nothing recorded) for applications already done."""
        ...

    async def record_transactions(
        self, batch: Sequence[TransactionKeys]
    ) -> list[TransactionFeatures]:
        """Record transactions; each one's features (amount history before it)."""
        ...

    async def record_new_transactions(
        self, batch: Sequence[TransactionKeys]
    ) -> list[TransactionFeatures | None]:
        """As record_transactions; None (nothing recorded) for transactions already done."""
        ...

    def mark_done_later(self, event_ids: Iterable[str]) -> None:
        """These transactions' outputs were acknowledged: done by the next call at the latest."""
        ...

    async def flush_done(self) -> None:
        """Write done markers that are still waiting."""
        ...

    async def record_device_signals(self, batch: Sequence[DeviceSignalKeys]) -> list[DeviceState]:
        """Record device signals; each device's state after its signal."""
        ...


@runtime_checkable
class LoanStoreProtocol(Protocol):
    """Per-loan state with compare-and-set, the open-loan index and masked contacts."""

    async def load(self, loan_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored states of these loans."""
        ...

    async def compare_and_set(
        self, updates: Sequence[tuple[str, int, Mapping[str, Any], int]]
    ) -> list[bool]:
        """Write (loan_id, expected_version, state, term_days) where the version matches."""
        ...

    async def open(self, loans: Sequence[LoanOpening]) -> None:
        """Open loans that do not exist yet and index them (idempotent)."""
        ...

    async def index_open(self, loans: Iterable[tuple[str, str, int]]) -> None:
        """Add (tenant_id, loan_id, opened epoch day) to the open-loan index."""
        ...

    async def close(self, loans: Iterable[tuple[str, str]]) -> None:
        """Remove closed (tenant_id, loan_id) from the open-loan index."""
        ...

    async def tenants_with_open_loans(self) -> list[str]:
        """Tenants that have an open-loan index, sorted."""
        ...

    async def open_loans(self, tenant_id: str, start: int, count: int) -> list[str]:
        """A page of a tenant's open loans, oldest first."""
        ...

    async def put_contacts(self, contacts: Mapping[str, Mapping[str, str]]) -> None:
        """Store masked contact fields per customer (merged)."""
        ...

    async def contacts(self, customer_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Masked contact fields per customer."""
        ...


@runtime_checkable
class FaceBlacklistStore(Protocol):
    """Blacklisted face embeddings, audited; a matcher over the current entries."""

    async def add(
        self, embedding: np.ndarray, reason_code: str, actor: str, model_version: str
    ) -> str:
        """Store one embedding; its new entry id."""
        ...

    async def remove(self, entry_id: str, actor: str) -> bool:
        """Delete an entry; False when it does not exist."""
        ...

    async def list(self, limit: int = 100, cursor: int = 0) -> list[EntryInfo]:
        """Entries oldest first, a page of `limit` from offset `cursor`."""
        ...

    async def count(self) -> int:
        """Number of entries."""
        ...

    async def audit(self, limit: int = 100) -> builtins.list[dict[str, Any]]:
        """The latest audit records, newest first."""
        ...

    async def version(self) -> int:
        """The counter bumped by every add and remove."""
        ...

    async def matcher(self, threshold: float) -> BlacklistMatcher:
        """A matcher over the current entries."""
        ...


@runtime_checkable
class ChainHeadStore(Protocol):
    """The last record hash of an audited partition: where a writer continues the chain."""

    async def head(self, topic: str, partition: int) -> str:
        """The partition's last record_hash, GENESIS_HASH when it is empty."""
        ...


class KafkaChainHeads:
    """Chain heads read from the audited topic itself (the last message of the partition)."""

    def __init__(self, kafka_config: Mapping[str, Any], codec: AvroCodec) -> None:
        """Read with this librdkafka configuration and decode with `codec`."""
        self.kafka_config = dict(kafka_config)
        self.codec = codec

    async def head(self, topic: str, partition: int) -> str:
        """Blocking read in a thread: the consumer API of librdkafka is synchronous."""
        return await asyncio.to_thread(
            last_record_hash, self.kafka_config, topic, partition, self.codec
        )


@dataclass(frozen=True)
class RedisStores:
    """The Redis stores of one worker, all under one key prefix (Settings.redis_key_prefix)."""

    state: EngineStore
    features: FeatureStore
    loans: LoanStore
    blacklist: FaceBlacklist

    @classmethod
    def create(cls, client: Redis, prefix: str = DEFAULT_KEY_PREFIX) -> RedisStores:
        """Every store over one client."""
        return cls(
            state=EngineStore(client, prefix),
            features=FeatureStore(client, prefix=prefix),
            loans=LoanStore(client, prefix),
            blacklist=FaceBlacklist(client, prefix),
        )
