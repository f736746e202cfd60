"""The Redis stores (and the Kafka chain heads) pass the same contracts as the in-memory ones.

Also differential: a seeded workload gives the Redis (Lua) feature store and the in-memory
one the same results, event by event, so the memory tier tests what production computes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from greencredit.infra.feature_store import DONE_IDLE_FLUSH_S, FeatureStore, Retention
from greencredit.infra.memory import MemoryFeatureStore
from greencredit.infra.stores import (
    ChainHeadStore,
    EngineStateStore,
    FaceBlacklistStore,
    FeatureStoreProtocol,
    KafkaChainHeads,
    LoanStoreProtocol,
    RedisStores,
)
from greencredit.streams.codec import AvroCodec
from tests.store_contracts import (
    CONTRACTS,
    Stores,
    chain_heads_follow_what_was_written,
    random_workload,
    windows_are_trimmed_at_their_cap,
)


def _run(stack: Any, body: Callable[[Callable[..., Awaitable[Stores]]], Awaitable[None]]) -> None:
    """Run ``body(factory)``; each store bundle gets its own key prefix and the client closes."""

    async def main() -> None:
        client = Redis.from_url(stack.redis)

        async def factory(retention: Retention | None = None) -> Stores:
            prefix = f"t{uuid.uuid4().hex[:12]}:"
            redis = RedisStores.create(client, prefix)
            features = FeatureStore(client, prefix=prefix, retention=retention)
            await features.load_scripts()
            return Stores(redis.state, features, redis.loans, redis.blacklist)

        try:
            await body(factory)
        finally:
            await client.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.__name__)
def test_redis_stores_keep_the_contract(stack, contract) -> None:
    async def body(factory):
        await contract(await factory())

    _run(stack, body)


def test_redis_windows_are_trimmed_at_their_cap(stack) -> None:
    _run(stack, windows_are_trimmed_at_their_cap)


def test_redis_stores_implement_the_protocols(stack) -> None:
    async def body(factory):
        stores = await factory()
        assert isinstance(stores.state, EngineStateStore)
        assert isinstance(stores.features, FeatureStoreProtocol)
        assert isinstance(stores.loans, LoanStoreProtocol)
        assert isinstance(stores.blacklist, FaceBlacklistStore)

    _run(stack, body)


@pytest.mark.parametrize("seed", [1, 2])
def test_memory_feature_store_computes_what_the_lua_scripts_compute(stack, seed) -> None:
    async def body(factory):
        redis = (await factory()).features
        memory = MemoryFeatureStore()
        expected = await random_workload(redis, seed)
        got = await random_workload(memory, seed)
        assert len(got) == len(expected) > 250
        for i, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
            assert mine == theirs, f"event {i} differs"

    _run(stack, body)


def test_kafka_chain_heads_keep_the_contract(fresh_stack) -> None:
    """On a stack of this module's own: the contract appends to an audited partition."""
    from confluent_kafka import Producer

    codec = AvroCodec()
    config = {"bootstrap.servers": fresh_stack.kafka}
    heads = KafkaChainHeads(config, codec)
    assert isinstance(heads, ChainHeadStore)
    producer = Producer(config)

    async def append(topic: str, partition: int, value: bytes, _record_hash: str) -> None:
        producer.produce(topic, value, partition=partition)
        assert producer.flush(10) == 0

    asyncio.run(chain_heads_follow_what_was_written(heads, append))


def test_waiting_done_markers_are_written_when_the_worker_goes_idle(stack) -> None:
    """No next batch comes: the store writes the markers on its own, shortly after."""

    async def body(factory):
        stores = await factory()
        stores.features.mark_done_later(["txn-idle-1", "txn-idle-2"])
        written_at_once = await stores.state.done_among(["txn-idle-1"])
        await asyncio.sleep(DONE_IDLE_FLUSH_S * 5)
        return written_at_once, await stores.state.done_among(["txn-idle-1", "txn-idle-2"])

    async def outer(factory):
        result.extend(await body(factory))

    result: list[Any] = []
    _run(stack, outer)
    assert result == [set(), {"txn-idle-1", "txn-idle-2"}]
