"""The in-memory stores pass the store contracts (the Redis ones: tests/integration)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from greencredit.infra.feature_store import Retention
from greencredit.infra.memory import (
    MemoryChainHeads,
    MemoryEngineState,
    MemoryFaceBlacklist,
    MemoryFeatureStore,
    MemoryLoanStore,
)
from greencredit.infra.stores import (
    ChainHeadStore,
    EngineStateStore,
    FaceBlacklistStore,
    FeatureStoreProtocol,
    LoanStoreProtocol,
)
from greencredit.streams.audit import GENESIS_HASH
from tests.store_contracts import (
    CONTRACTS,
    Stores,
    chain_heads_follow_what_was_written,
    windows_are_trimmed_at_their_cap,
)


async def memory_stores(retention: Retention | None = None) -> Stores:
    state = MemoryEngineState()
    # One set of done markers, as the Redis stores share their keys.
    return Stores(
        state,
        MemoryFeatureStore(retention, done=state.done),
        MemoryLoanStore(),
        MemoryFaceBlacklist(),
    )


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.__name__)
def test_memory_stores_keep_the_contract(contract: Callable[[Stores], Awaitable[None]]) -> None:
    async def main() -> None:
        await contract(await memory_stores())

    asyncio.run(main())


def test_memory_windows_are_trimmed_at_their_cap() -> None:
    asyncio.run(windows_are_trimmed_at_their_cap(memory_stores))


def test_memory_stores_implement_the_protocols() -> None:
    stores = asyncio.run(memory_stores())
    assert isinstance(stores.state, EngineStateStore)
    assert isinstance(stores.features, FeatureStoreProtocol)
    assert isinstance(stores.loans, LoanStoreProtocol)
    assert isinstance(stores.blacklist, FaceBlacklistStore)
    assert isinstance(MemoryChainHeads(), ChainHeadStore)


def test_memory_chain_heads_continue_from_what_was_recorded() -> None:
    heads = MemoryChainHeads()
    assert asyncio.run(heads.head("greencredit.decisions", 0)) == GENESIS_HASH
    heads.record("greencredit.decisions", 0, "ab" * 32)
    assert asyncio.run(heads.head("greencredit.decisions", 0)) == "ab" * 32
    assert asyncio.run(heads.head("greencredit.decisions", 1)) == GENESIS_HASH


def test_memory_chain_heads_keep_the_contract() -> None:
    heads = MemoryChainHeads()

    async def append(topic: str, partition: int, _value: bytes, record_hash: str) -> None:
        heads.record(topic, partition, record_hash)

    asyncio.run(chain_heads_follow_what_was_written(heads, append))
