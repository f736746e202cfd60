"""The Redis feature store against the session's real redis-server.

Every test uses its own key prefix (the server is shared by the session) and its own client,
opened and closed inside ``asyncio.run`` (pytest-asyncio is not installed).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import numpy as np
import pytest
from redis.asyncio import Connection, Redis

from greencredit.infra.feature_store import (
    ApplicationKeys,
    DeviceSignalKeys,
    FeatureStore,
    Retention,
    TransactionKeys,
)
from greencredit.models.features import DeviceRule, WindowCounts, device_rules
from greencredit.streams.masking import pseudonym

KEY = b"test-pii-key"
T = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
R = TypeVar("R")


def ref(value: str, kind: str) -> str:
    return pseudonym(value, KEY, kind)


def run(stack, body: Callable[[FeatureStore, Redis], Awaitable[R]], **store_kwargs: Any) -> R:
    """Run ``body(store, redis)`` on a fresh client and store with a unique prefix."""

    async def main() -> R:
        redis = Redis.from_url(stack.redis)
        try:
            store = FeatureStore(redis, prefix=f"t{uuid.uuid4().hex[:12]}:", **store_kwargs)
            await store.load_scripts()
            return await body(store, redis)
        finally:
            await redis.aclose()

    return asyncio.run(main())


def application(
    at: datetime,
    *,
    device="dev-1",
    id_number="110105199003071234",
    phone="13812345678",
    customer="cust-1",
) -> ApplicationKeys:
    return ApplicationKeys(
        event_id=str(uuid.uuid4()),
        occurred_at=at,
        device_ref=ref(device, "device"),
        id_ref=ref(id_number, "id"),
        phone_ref=ref(phone, "phone"),
        customer_id=customer,
    )


def transaction(
    at: datetime,
    amount: int,
    *,
    merchant="m-1",
    account="acct-1",
    card="6222021234567890123",
    device: str | None = None,
) -> TransactionKeys:
    return TransactionKeys(
        event_id=str(uuid.uuid4()),
        occurred_at=at,
        account_id=account,
        customer_id="cust-1",
        card_ref=ref(card, "card"),
        merchant_id=merchant,
        amount_minor=amount,
        device_ref=None if device is None else ref(device, "device"),
        ip_country="CN",
        merchant_country=None,
    )


def signal(
    at: datetime,
    *,
    device="dev-1",
    fingerprint="fp-1",
    customer="cust-1",
    rooted=False,
    vpn=False,
    sim_hours: int | None = None,
) -> DeviceSignalKeys:
    return DeviceSignalKeys(
        event_id=str(uuid.uuid4()),
        occurred_at=at,
        device_ref=ref(device, "device"),
        fingerprint_ref=ref(fingerprint, "fingerprint"),
        customer_id=customer,
        is_emulator=False,
        is_rooted=rooted,
        is_jailbroken=False,
        vpn_active=vpn,
        proxy_active=False,
        sim_change_age_hours=sim_hours,
        geo_country="cn",
    )


async def keys_of(store: FeatureStore, redis: Redis) -> list[bytes]:
    return sorted([k async for k in redis.scan_iter(match=f"{store.prefix}*", count=1000)])


async def snapshot(store: FeatureStore, redis: Redis) -> dict[bytes, Any]:
    """Logical content of every key of the store (not TTLs, which slide by design)."""
    out: dict[bytes, Any] = {}
    for key in await keys_of(store, redis):
        kind = (await redis.type(key)).decode()
        if kind == "zset":
            out[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            out[key] = await redis.hgetall(key)
        else:
            assert kind == "string", (key, kind)
            out[key] = await redis.get(key)
    return out


# --- velocity ---------------------------------------------------------------------------------


def test_velocity_windows_count_by_event_time(stack):
    ago = [timedelta(days=8), timedelta(days=3), timedelta(hours=5), timedelta(minutes=30), None]
    batch = [application(T - d if d else T) for d in ago]

    async def body(store, redis):
        return await store.record_applications(batch)

    results = run(stack, body)
    # (1 h, 24 h, 7 d), each including the event itself: 8 d ago is outside every window of
    # the newest event, 30 min ago inside all of them.
    expected = [(1, 1, 1), (1, 1, 2), (1, 1, 2), (1, 2, 3), (2, 3, 4)]
    for result, (h, d, w) in zip(results, expected, strict=True):
        for counts in (result.device, result.id_number, result.phone):
            assert counts == WindowCounts(h, d, w)


def test_velocity_ignores_events_later_than_the_scored_one(stack):
    async def body(store, redis):
        await store.record_applications([application(T)])
        late = await store.record_applications([application(T - timedelta(minutes=10))])
        other = await store.record_applications([application(T, device="dev-2", phone="139")])
        return late[0], other[0]

    late, other = run(stack, body)
    assert late.device == WindowCounts(1, 1, 1)  # the event at T is after it
    assert other.device == WindowCounts(1, 1, 1)  # another device is another subject
    assert other.id_number == WindowCounts(3, 3, 3)  # one ID number across devices: all three


# --- replays ----------------------------------------------------------------------------------


def test_replaying_batches_changes_no_stored_feature(stack):
    apps = [application(T + timedelta(minutes=i), id_number=f"id-{i % 2}") for i in range(4)]
    signals = [signal(T, sim_hours=10), signal(T + timedelta(hours=1), fingerprint="fp-2")]
    txns = [
        transaction(T + timedelta(minutes=i), 1000 + 100 * i, merchant=f"m-{i % 3}", device="dev-1")
        for i in range(6)
    ]

    async def body(store, redis):
        await store.record_device_signals(signals)
        first = (await store.record_applications(apps), await store.record_transactions(txns))
        state = await snapshot(store, redis)
        replays = []
        for _ in range(2):
            replays.append(
                (
                    await store.record_device_signals(signals),
                    await store.record_applications(apps),
                    await store.record_transactions(txns),
                )
            )
        # A duplicate inside one batch is a replay too.
        duplicate = await store.record_transactions([txns[-1], txns[-1]])
        return first, state, replays, duplicate, await snapshot(store, redis)

    first, before, replays, duplicate, after = run(stack, body)
    assert after == before
    assert replays[0] == replays[1]  # the same state gives the same answers
    (apps1, txns1), (_, apps2, txns2) = first, replays[0]
    for a, b in zip(apps1, apps2, strict=True):
        assert (a.device, a.id_number, a.phone) == (b.device, b.id_number, b.phone)
    for a, b in zip(txns1, txns2, strict=True):
        assert (a.card, a.amount_history, a.is_new_merchant) == (
            b.card,
            b.amount_history,
            b.is_new_merchant,
        )
    assert duplicate[0].amount_history == duplicate[1].amount_history == txns1[-1].amount_history


# --- device state and farms -------------------------------------------------------------------


def test_distinct_identities_trigger_the_farm_rule_at_the_threshold(stack):
    async def body(store, redis):
        # An identity seen 31 days ago is outside the 30-day window.
        old = await store.record_applications(
            [application(T - timedelta(days=31), id_number="old", customer="c-old")]
        )
        batch = [
            application(T + timedelta(minutes=i), id_number=f"id-{i}", customer=f"c-{i}")
            for i in range(3)
        ]
        return old, await store.record_applications(batch)

    old, results = run(stack, body)
    assert old[0].device_state.distinct_identities_30d == 1
    seen = [r.device_state.distinct_identities_30d for r in results]
    assert seen == [1, 2, 3]
    farm = [DeviceRule.DEVICE_FARM in device_rules(r.device_state, T) for r in results]
    assert farm == [False, False, True]
    assert DeviceRule.DEVICE_FARM not in device_rules(results[-1].device_state, T, farm_threshold=4)


def test_customers_from_every_source_count_towards_the_farm(stack):
    async def body(store, redis):
        await store.record_applications([application(T, customer="c-app")])
        await store.record_device_signals([signal(T, customer="c-signal")])
        [txn] = await store.record_transactions(
            [
                TransactionKeys(
                    event_id=str(uuid.uuid4()),
                    occurred_at=T + timedelta(minutes=1),
                    account_id="acct-9",
                    customer_id="c-txn",
                    card_ref=ref("6222020000000000001", "card"),
                    merchant_id="m",
                    amount_minor=500,
                    device_ref=ref("dev-1", "device"),
                    ip_country="US",
                )
            ]
        )
        return txn

    txn = run(stack, body)
    state = txn.device_state
    assert state is not None
    assert state.distinct_customers_30d == 3
    assert state.distinct_identities_30d == 1
    assert DeviceRule.DEVICE_FARM in device_rules(state, T)
    assert txn.geo_mismatch  # IP in US, device last seen in CN


def test_device_state_is_the_newest_signal_and_is_read_when_scoring(stack):
    async def body(store, redis):
        newer = signal(T, rooted=True, vpn=True, sim_hours=5, fingerprint="fp-2")
        older = signal(T - timedelta(hours=2), sim_hours=None, fingerprint="fp-1")
        states = await store.record_device_signals([newer, older])
        [app] = await store.record_applications([application(T + timedelta(hours=1))])
        [plain] = await store.record_transactions([transaction(T, 100)])
        return states, app, plain

    states, app, plain = run(stack, body)
    state = app.device_state
    assert state.last_signal_at == T
    assert state.is_rooted and state.vpn_active  # the older, clean signal did not overwrite
    assert state.sim_changed_at == T - timedelta(hours=5)
    assert state.geo_country == "CN"
    assert state.distinct_fingerprints_30d == 2
    assert states[1].is_rooted  # returned after the older signal: still the newest flags
    rules = device_rules(state, T + timedelta(hours=1))
    assert rules == {
        DeviceRule.ROOTED_WITH_VPN,
        DeviceRule.RECENT_SIM_SWAP,
        DeviceRule.FINGERPRINT_CHANGED,
    }
    assert plain.device_state is None


def test_signals_in_the_same_millisecond_resolve_the_same_way_in_any_order(stack):
    clean = replace(signal(T), event_id="a-signal")
    emulator = replace(signal(T), event_id="b-signal", is_emulator=True)

    async def body(store, redis):
        other = FeatureStore(redis, prefix=f"{store.prefix}other:")
        forward = await store.record_device_signals([clean, emulator])
        backward = await other.record_device_signals([emulator, clean])
        replayed = await store.record_device_signals([clean])
        return forward[-1], backward[-1], replayed[-1]

    forward, backward, replayed = run(stack, body)
    assert forward.is_emulator and backward.is_emulator and replayed.is_emulator


# --- amounts and merchants --------------------------------------------------------------------


def test_amount_statistics_match_numpy_and_exclude_the_current_transaction(stack):
    rng = random.Random(7)
    amounts = [rng.randrange(100, 500_000) for _ in range(40)]
    amounts[10] = -2_500  # a refund does not move the statistics
    merchants = [f"m-{rng.randrange(6)}" for _ in amounts]
    batch = [
        transaction(T + timedelta(seconds=i), amount, merchant=merchant)
        for i, (amount, merchant) in enumerate(zip(amounts, merchants, strict=True))
    ]

    async def body(store, redis):
        # Two batches: the statistics carry over between calls.
        return await store.record_transactions(batch[:17]) + await store.record_transactions(
            batch[17:]
        )

    results = run(stack, body)
    for i, result in enumerate(results):
        history = np.array([a for a in amounts[:i] if a >= 0], dtype=np.float64)
        stats = result.amount_history
        assert stats.n == len(history)
        if len(history):
            assert stats.mean == pytest.approx(history.mean(), rel=1e-12)
            assert stats.std == pytest.approx(history.std(), rel=1e-9, abs=1e-9)
        assert result.is_new_merchant == (merchants[i] not in merchants[:i])


# --- privacy, TTLs, bounds --------------------------------------------------------------------

RAW_PII = {
    "id": "110105199003071234",
    "phone": "13812345678",
    "card": "6222021234567890123",
    "device": "android-8f14e45fceea167a",
    "fingerprint": "fp-3c59dc048e8850243be8079a5c74d079",
}


def test_every_key_has_a_ttl_and_no_raw_pii(stack):
    async def body(store, redis):
        await store.record_device_signals(
            [signal(T, device=RAW_PII["device"], fingerprint=RAW_PII["fingerprint"], sim_hours=1)]
        )
        await store.record_applications(
            [
                application(
                    T, device=RAW_PII["device"], id_number=RAW_PII["id"], phone=RAW_PII["phone"]
                )
            ]
        )
        await store.record_transactions(
            [transaction(T, 700, card=RAW_PII["card"], device=RAW_PII["device"])]
        )
        ttls = {key: await redis.pttl(key) for key in await keys_of(store, redis)}
        return ttls, await snapshot(store, redis)

    ttls, content = run(stack, body)
    assert len(ttls) == 11  # every key family of the layout
    longest = Retention().account_ttl // timedelta(milliseconds=1)
    assert all(0 < ttl <= longest for ttl in ttls.values()), ttls
    dump = repr(content).encode()
    for value in RAW_PII.values():
        assert value.encode() not in dump
    for key in ttls:
        assert not any(value.encode() in key for value in RAW_PII.values())


def test_raw_pii_is_refused_before_it_reaches_redis():
    with pytest.raises(ValueError, match="device_ref must be a pseudonym") as info:
        ApplicationKeys(
            "e", T, RAW_PII["device"], ref("1", "id"), ref("2", "phone"), customer_id="c"
        )
    assert RAW_PII["device"] not in str(info.value)
    with pytest.raises(ValueError, match="card_ref"):
        TransactionKeys("e", T, "a", "c", RAW_PII["card"], "m", 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        TransactionKeys("e", T.replace(tzinfo=None), "a", "c", ref("1", "card"), "m", 1)
    with pytest.raises(ValueError, match="amount_minor"):
        TransactionKeys("e", T, "a", "c", ref("1", "card"), "m", 1.5)  # type: ignore[arg-type]


def test_sorted_sets_are_capped_and_trimmed_by_age(stack):
    small = Retention(velocity_cap=5, link_cap=3, fingerprint_cap=2, merchant_cap=4)

    async def body(store, redis):
        apps = [
            application(T + timedelta(minutes=i), id_number=f"id-{i}", customer=f"c-{i}")
            for i in range(12)
        ]
        results = await store.record_applications(apps)
        await store.record_device_signals(
            [signal(T + timedelta(minutes=i), fingerprint=f"fp-{i}") for i in range(6)]
        )
        await store.record_transactions(
            [transaction(T + timedelta(minutes=i), 10, merchant=f"m-{i}") for i in range(9)]
        )
        sizes = {
            key.decode().removeprefix(store.prefix): await redis.zcard(key)
            for key in await keys_of(store, redis)
            if (await redis.type(key)) == b"zset"
        }
        # A week after the newest application, everything before falls out of the window.
        await store.record_applications([application(T + timedelta(days=8), device="dev-1")])
        dev_key = f"{store.prefix}app:dev:{ref('dev-1', 'device')}"
        return results[-1], sizes, await redis.zcard(dev_key)

    last, sizes, after_a_week = run(stack, body, retention=small)
    assert sizes[f"app:dev:{ref('dev-1', 'device')}"] == 5
    assert sizes[f"app:phone:{ref('13812345678', 'phone')}"] == 5
    assert sizes[f"dev:{ref('dev-1', 'device')}:ids"] == 3
    assert sizes[f"dev:{ref('dev-1', 'device')}:customers"] == 3
    assert sizes[f"dev:{ref('dev-1', 'device')}:fingerprints"] == 2
    assert sizes["acct:acct-1:merchants"] == 4
    assert sizes[f"txn:card:{ref('6222021234567890123', 'card')}"] == 5
    assert last.device == WindowCounts(5, 5, 5)  # at the cap a count means "at least"
    assert after_a_week == 1


# --- round trips ------------------------------------------------------------------------------


class CountingConnection(Connection):
    """Counts writes to the socket: each is one round trip (a pipeline is one write too)."""

    sends: ClassVar[list[int]] = [0]

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends[0] += 1
        await super().send_packed_command(command, check_health)


def test_each_batch_is_one_round_trip_and_one_evalsha(stack):
    rng = random.Random(3)
    n = 256
    apps = [
        application(T + timedelta(seconds=i), device=f"d-{rng.randrange(20)}", id_number=f"{i}")
        for i in range(n)
    ]
    txns = [
        transaction(T + timedelta(seconds=i), rng.randrange(1, 10_000), device=f"d-{i % 20}")
        for i in range(n)
    ]
    signals = [signal(T + timedelta(seconds=i), device=f"d-{i % 20}") for i in range(n)]

    async def evalsha_calls(redis: Redis) -> int:
        stats = await redis.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))

    async def main() -> list[tuple[int, int]]:
        observer = Redis.from_url(stack.redis)
        redis = Redis.from_url(stack.redis, connection_class=CountingConnection)
        try:
            store = FeatureStore(redis, prefix=f"t{uuid.uuid4().hex[:12]}:")
            await store.load_scripts()
            await redis.ping()  # connection set-up (HELLO etc.) happens before counting
            measured = []
            for call, batch in (
                (store.record_applications, apps),
                (store.record_transactions, txns),
                (store.record_device_signals, signals),
            ):
                evalsha_before, sends_before = (
                    await evalsha_calls(observer),
                    CountingConnection.sends[0],
                )
                results = await call(batch)
                assert len(results) == n
                measured.append(
                    (
                        CountingConnection.sends[0] - sends_before,
                        await evalsha_calls(observer) - evalsha_before,
                    )
                )
            return measured
        finally:
            await redis.aclose()
            await observer.aclose()

    assert asyncio.run(main()) == [(1, 1)] * 3


def test_an_empty_batch_does_not_touch_redis(stack):
    async def body(store, redis):
        return (
            await store.record_applications([]),
            await store.record_transactions([]),
            await store.record_device_signals([]),
            await keys_of(store, redis),
        )

    assert run(stack, body) == ([], [], [], [])
