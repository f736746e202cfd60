"""Contract tests every store implementation must pass: in memory (unit tier), Redis (integration).

Each contract is an ``async def`` taking a :class:`Stores` bundle. ``random_workload``
drives a feature store with a seeded mix of events whose results the integration tier
compares between Redis and memory, event by event.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from greencredit.infra.engine_store import Disbursed, FundingRequest
from greencredit.infra.face_blacklist import DimensionMismatchError
from greencredit.infra.feature_store import (
    ApplicationKeys,
    DeviceSignalKeys,
    Retention,
    TransactionKeys,
)
from greencredit.infra.loan_store import LoanOpening
from greencredit.infra.stores import (
    ChainHeadStore,
    EngineStateStore,
    FaceBlacklistStore,
    FeatureStoreProtocol,
    LoanStoreProtocol,
)
from greencredit.models.features import WindowCounts
from greencredit.models.green import IntegrityState
from greencredit.streams.codec import AvroCodec
from greencredit.streams.masking import pseudonym

T0 = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
KEY = b"contract-key"


@dataclass
class Stores:
    """One implementation of every store (fresh, empty)."""

    state: EngineStateStore
    features: FeatureStoreProtocol
    loans: LoanStoreProtocol
    blacklist: FaceBlacklistStore


# A factory gets the feature store's retention (small caps for the trimming contract).
StoresFactory = Callable[[Retention | None], Awaitable[Stores]]


def ref(value: str, kind: str) -> str:
    return pseudonym(value, KEY, kind)


def app_keys(n: int, at: datetime, device: str = "d1", id_number: str = "i1") -> ApplicationKeys:
    return ApplicationKeys(
        event_id=f"app-{n}",
        occurred_at=at,
        device_ref=ref(device, "device"),
        id_ref=ref(id_number, "id"),
        phone_ref=ref(f"phone-{n % 3}", "phone"),
        customer_id=f"cust-{n % 4}",
    )


def txn_keys(n: int, at: datetime, amount: int, merchant: str = "m1", device: str | None = None):
    return TransactionKeys(
        event_id=f"txn-{n}",
        occurred_at=at,
        account_id="acct-1",
        customer_id="cust-1",
        card_ref=ref("card-1", "card"),
        merchant_id=merchant,
        amount_minor=amount,
        device_ref=None if device is None else ref(device, "device"),
        ip_country="CN",
        merchant_country="CN",
    )


def signal_keys(n: int, at: datetime, device: str = "d1", **fields: Any) -> DeviceSignalKeys:
    values: dict[str, Any] = {
        "is_emulator": False,
        "is_rooted": False,
        "is_jailbroken": False,
        "vpn_active": False,
        "proxy_active": False,
    }
    values.update(fields)  # flags, sim_change_age_hours, geo_country
    return DeviceSignalKeys(
        event_id=f"sig-{n:04d}",
        occurred_at=at,
        device_ref=ref(device, "device"),
        fingerprint_ref=ref(f"fp-{n % 2}", "fp"),
        customer_id=f"cust-{n % 3}",
        **values,
    )


# ----------------------------------------------------------------------------- features


async def applications_count_by_event_time(stores: Stores) -> None:
    store = stores.features
    times = [T0, T0 + timedelta(minutes=30), T0 + timedelta(hours=5), T0 + timedelta(days=3)]
    results = [
        (await store.record_applications([app_keys(n, at, id_number=f"i{n}")]))[0]
        for n, at in enumerate(times)
    ]
    assert results[1].device == WindowCounts(2, 2, 2)
    assert results[2].device == WindowCounts(1, 3, 3)
    assert results[3].device == WindowCounts(1, 1, 4)
    assert results[3].device_state.distinct_identities_30d == 4
    # A replay counts the same (the event is in the window once).
    [again] = await store.record_applications([app_keys(1, times[1], id_number="i1")])
    assert again.device == results[1].device
    assert again.device_state.distinct_identities_30d == 4  # later arrivals are seen


async def windows_are_trimmed_at_their_cap(stores_factory: StoresFactory) -> None:
    stores = await stores_factory(Retention(velocity_cap=3))
    at = [T0 + timedelta(minutes=i) for i in range(5)]
    last = None
    for n, moment in enumerate(at):
        [last] = await stores.features.record_applications([app_keys(n, moment)])
    assert last is not None
    assert last.device == WindowCounts(3, 3, 3)


async def transactions_see_their_history_before_them(stores: Stores) -> None:
    store = stores.features
    first = await store.record_transactions(
        [txn_keys(1, T0, 10_000), txn_keys(2, T0 + timedelta(minutes=1), 30_000, "m2", "d1")]
    )
    assert first[0].amount_history.n == 0 and first[0].is_new_merchant
    assert first[1].amount_history.n == 1 and first[1].amount_history.mean == 10_000.0
    assert first[1].device_state is not None and first[0].device_state is None
    refund = (await store.record_transactions([txn_keys(3, T0 + timedelta(minutes=2), -5_000)]))[0]
    assert refund.amount_history.n == 2 and not refund.is_new_merchant
    assert refund.card == WindowCounts(3, 3)
    # A replay gets the same "before" snapshot and changes nothing.
    [replayed] = await store.record_transactions([txn_keys(2, T0 + timedelta(minutes=1), 30_000)])
    assert replayed.amount_history == first[1].amount_history
    [after] = await store.record_transactions([txn_keys(4, T0 + timedelta(minutes=3), 20_000)])
    assert after.amount_history.n == 2 and after.amount_history.mean == 20_000.0


async def transactions_already_done_are_skipped(stores: Stores) -> None:
    store = stores.features
    one, two = txn_keys(1, T0, 10_000), txn_keys(2, T0 + timedelta(minutes=1), 20_000)
    three = txn_keys(3, T0 + timedelta(minutes=2), 30_000)
    first = await store.record_new_transactions([one, two])
    assert [f is not None for f in first] == [True, True]
    store.mark_done_later([one.event_id])  # its outputs were acknowledged
    again = await store.record_new_transactions([one, two, three])
    assert again[0] is None  # done: skipped, nothing recorded
    assert again[1] == first[1]  # not done yet: recorded again, the replay guard holds
    assert again[2] is not None and again[2].amount_history.n == 2  # 1 and 2, once each
    store.mark_done_later([two.event_id, three.event_id])
    await store.flush_done()
    # The markers are the engine state's done markers, whoever wrote them.
    assert await stores.state.done_among([one.event_id, three.event_id, "txn-9"]) == {
        one.event_id,
        three.event_id,
    }
    await stores.state.record_outcomes([], {}, ["txn-9"])
    nine = txn_keys(9, T0 + timedelta(minutes=3), 5_000)
    assert await store.record_new_transactions([two, nine]) == [None, None]
    # record_transactions does not look at done markers.
    [plain] = await store.record_transactions([one])
    assert plain == first[0]


async def applications_already_done_are_skipped(stores: Stores) -> None:
    store = stores.features
    one, two = app_keys(1, T0, id_number="i1"), app_keys(2, T0 + timedelta(minutes=1))
    three = app_keys(3, T0 + timedelta(minutes=2), id_number="i3")
    first = await store.record_new_applications([one, two])
    assert [v is not None for v in first] == [True, True]
    # The application path marks its inputs done with the batch's outcomes.
    await stores.state.record_outcomes([], {}, [one.event_id])
    again = await store.record_new_applications([one, two, three])
    assert again[0] is None  # done: skipped, nothing recorded
    assert again[1] == first[1]  # not done yet: recorded again, counted once
    assert again[2] is not None and again[2].device == WindowCounts(3, 3, 3)  # 1, 2, 3 once each
    # record_applications does not look at done markers (and still counts one once).
    [plain] = await store.record_applications([one])
    assert plain.device == first[0].device == WindowCounts(1, 1, 1)


async def the_newest_device_signal_sets_the_flags(stores: Stores) -> None:
    store = stores.features
    late = signal_keys(2, T0 + timedelta(minutes=5), is_rooted=True, geo_country="cn")
    early = signal_keys(1, T0, is_emulator=True, sim_change_age_hours=3)
    [after_late] = await store.record_device_signals([late])
    [after_early] = await store.record_device_signals([early])  # out of order: loses
    assert after_late.is_rooted and not after_late.is_emulator
    assert after_early.is_rooted and not after_early.is_emulator
    assert after_early.geo_country == "CN"
    assert after_early.sim_changed_at is None  # only the older signal reported a SIM age
    assert after_early.distinct_fingerprints_30d == 2
    [app] = await store.record_applications([app_keys(9, T0 + timedelta(minutes=6))])
    assert app.device_state.last_signal_at == late.occurred_at


# ----------------------------------------------------------------------------- engine state


async def engine_state_keeps_its_promises(stores: Stores) -> None:
    state = stores.state
    assert await state.done_among(["e1", "e2"]) == set()
    claims = await state.claim_disbursements(
        [("a1", "d1", b'{"n":1}'), ("a1", "d2", b"{}"), ("a2", "d3", b"x\ny")]
    )
    assert [(c.state, c.event_id, c.payload) for c in claims] == [
        ("new", "d1", None),
        ("pending", "d1", b'{"n":1}'),  # the first claim's payload, to send again
        ("new", "d3", None),
    ]
    known = await state.decision_state(["a1", "a2", "a3"], {})
    assert {a: (c.state, c.event_id, c.payload) for a, c in known.claims.items()} == {
        "a1": ("pending", "d1", b'{"n":1}'),
        "a2": ("pending", "d3", b"x\ny"),  # a payload may hold newlines
    }
    await state.record_outcomes(
        [Disbursed("a1", "d1")], {"e1": {"risk": 0.25, "n": [1, 2]}}, ["e1"]
    )
    assert await state.done_among(["e1", "e2"]) == {"e1"}
    [sent] = await state.claim_disbursements([("a1", "d9", b"{}")])
    assert (sent.state, sent.event_id, sent.payload) == ("sent", "d1", None)
    assert (await state.decision_state(["a1"], {})).claims["a1"] == sent
    assert await state.take_scored(["e1", "e2"]) == {"e1": {"risk": 0.25, "n": [1, 2]}}
    assert await state.take_scored(["e1"]) == {}  # learn once
    # The first signal holds the finding; another does not; the first, redelivered, does.
    findings = [("dev", "FARM", "s1"), ("dev", "FARM", "s2"), ("dev", "VPN", "s2")]
    assert await state.first_findings(findings, 60) == [True, False, True]
    assert await state.first_findings([("dev", "FARM", "s1")], 60) == [True]
    assert await state.first_findings([("dev", "FARM", "s3")], 60) == [False]
    assert [await state.mark_tick(d) for d in ("2026-12-07", "2026-12-07", "2026-12-08")] == [
        True,
        False,
        True,
    ]
    assert await state.case_status("c1") is None
    await state.close_cases({"c1": "FRAUD"})
    assert await state.case_status("c1") == "closed:FRAUD"


async def funding_is_reserved_once_within_capacity(stores: Stores) -> None:
    state = stores.state

    def ask(tenant: str, funder: str, application: str, amount: int) -> FundingRequest:
        return FundingRequest(tenant, funder, application, amount, 1000)

    assert await state.funder_usages({"t": ["f1", "f2"]}) == {"t": {"f1": 0, "f2": 0}}
    assert await state.reserve_fundings([]) == []
    held = await state.reserve_fundings(
        [
            ask("t", "f1", "a1", 600),
            ask("t", "f1", "a2", 500),  # would exceed
            ask("t", "f2", "a1", 600),  # a1 holds f1 already: idempotent
            ask("t", "f1", "a3", 400),  # exactly full
            ask("u", "f1", "a4", 300),  # another lender's funder
        ]
    )
    assert held == ["f1", None, "f1", "f1", "f1"]
    assert await state.funder_usages({"t": ["f1", "f2"], "u": ["f1"], "v": []}) == {
        "t": {"f1": 1000, "f2": 0},
        "u": {"f1": 300},
        "v": {},
    }
    assert await state.funder_usages({}) == {}
    known = await state.decision_state(["a1", "a2", "a4"], {"t": ["f1", "f2"]})
    assert known.held_funders == {"a1": "f1", "a4": "f1"}
    assert known.funder_used_minor == {"t": {"f1": 1000, "f2": 0}}
    assert known.claims == {}


async def configs_models_and_adjustments_round_trip(stores: Stores) -> None:
    state = stores.state
    assert await state.put_config_if_newer("t", 2, {"version": 2, "x": [1.5]})
    assert not await state.put_config_if_newer("t", 2, {"version": 2, "x": [9]})
    assert not await state.put_config_if_newer("t", 1, {"version": 1})
    assert await state.configs(["t", "u"]) == {"t": {"version": 2, "x": [1.5]}}
    await state.save_model("lr", "t", {"n_learned": 3, "w": {"a": 0.1}})
    assert await state.load_models("lr", ["t", "u"]) == {"t": {"n_learned": 3, "w": {"a": 0.1}}}
    await state.save_lr_adjustments({"t": 0.07})
    assert await state.lr_adjustments(["t", "u"]) == {"t": 0.07}


async def purpose_watches_start_once(stores: Stores) -> None:
    state = stores.state
    watch = IntegrityState("L1", "SOLAR_PV", 50_000)
    await state.record_outcomes([Disbursed("a1", "d1", watch, 12), Disbursed("a2", "d2")], {}, [])
    assert await state.purpose_watches(["L1", "L2"]) == {"L1": watch}
    spent = IntegrityState("L1", "SOLAR_PV", 50_000, spent_other_minor=20_000, alerted=True)
    await state.save_purpose_watches([spent, IntegrityState("L9", "SOLAR_PV", 1)])
    # A redelivered disbursement keeps the spend.
    await state.record_outcomes([Disbursed("a1", "d1", watch, 12)], {}, [])
    assert await state.purpose_watches(["L1", "L9"]) == {"L1": spent}


# ----------------------------------------------------------------------------- loans


async def loans_compare_and_set(stores: Stores) -> None:
    loans = stores.loans
    opened = {"version": 0, "loan_id": "L1", "paid": 0}
    assert await loans.compare_and_set([("L1", -1, opened, 365)]) == [True]
    assert await loans.compare_and_set([("L1", -1, opened, 365)]) == [False]  # exists
    paid = {**opened, "version": 1, "paid": 100}
    assert await loans.compare_and_set([("L1", 0, paid, 365), ("L1", 0, paid, 365)]) == [
        True,
        False,
    ]
    assert await loans.load(["L1", "L2"]) == {"L1": paid}


async def loans_open_once(stores: Stores) -> None:
    loans = stores.loans
    first = {"version": 0, "loan_id": "L1", "paid": 0}
    await loans.open(
        [LoanOpening("t", "L1", first, 30, 365), LoanOpening("t", "L2", first, 20, 365)]
    )
    paid = {**first, "version": 1, "paid": 100}
    assert await loans.compare_and_set([("L1", 0, paid, 365)]) == [True]
    # Opened again (a redelivery): the loan keeps its state and its place in the index.
    await loans.open([LoanOpening("t", "L1", first, 99, 365)])
    assert await loans.load(["L1"]) == {"L1": paid}
    assert await loans.open_loans("t", 0, 10) == ["L2", "L1"]
    await loans.open([])


async def the_open_loan_index_pages_oldest_first(stores: Stores) -> None:
    loans = stores.loans
    await loans.index_open([("t", "L3", 20), ("t", "L1", 10), ("t", "L2", 10), ("u", "L9", 5)])
    assert await loans.tenants_with_open_loans() == ["t", "u"]
    assert await loans.open_loans("t", 0, 2) == ["L1", "L2"]
    assert await loans.open_loans("t", 2, 2) == ["L3"]
    await loans.close([("u", "L9"), ("t", "L2")])
    assert await loans.tenants_with_open_loans() == ["t"]
    assert await loans.open_loans("t", 0, 10) == ["L1", "L3"]
    await loans.put_contacts({"c1": {"phone": "138****5678"}})
    await loans.put_contacts({"c1": {"email": "z***@example.com"}})
    assert await loans.contacts(["c1", "c2"]) == {
        "c1": {"phone": "138****5678", "email": "z***@example.com"}
    }


# ----------------------------------------------------------------------------- faces


async def the_blacklist_versions_and_audits(stores: Stores) -> None:
    blacklist = stores.blacklist
    assert (await blacklist.version(), await blacklist.count()) == (0, 0)
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(2, 8))
    first = await blacklist.add(vectors[0], "FRAUD", "ops-1", "face-v1")
    second = await blacklist.add(vectors[1], "FRAUD", "ops-1", "face-v1")
    try:
        await blacklist.add(rng.normal(size=4), "FRAUD", "ops-1", "face-v1")
        raise AssertionError("a vector of another dimension was accepted")
    except DimensionMismatchError:
        pass
    assert [e.entry_id for e in await blacklist.list()] == [first, second]
    matcher = await blacklist.matcher(0.99)
    hits = matcher.best_match(np.stack([vectors[1], -vectors[1]]))
    assert hits[0] is not None and hits[0].entry_id == second and hits[1] is None
    assert await blacklist.remove(first, "ops-2")
    assert not await blacklist.remove(first, "ops-2")
    assert (await blacklist.version(), await blacklist.count()) == (3, 1)
    audit = await blacklist.audit()
    assert [(a["action"], a["entry_id"], a["actor"]) for a in audit] == [
        ("remove", first, "ops-2"),
        ("add", second, "ops-1"),
        ("add", first, "ops-1"),
    ]


CONTRACTS: tuple[Callable[[Stores], Awaitable[None]], ...] = (
    applications_count_by_event_time,
    transactions_see_their_history_before_them,
    transactions_already_done_are_skipped,
    applications_already_done_are_skipped,
    the_newest_device_signal_sets_the_flags,
    engine_state_keeps_its_promises,
    funding_is_reserved_once_within_capacity,
    configs_models_and_adjustments_round_trip,
    purpose_watches_start_once,
    loans_compare_and_set,
    loans_open_once,
    the_open_loan_index_pages_oldest_first,
    the_blacklist_versions_and_audits,
)


# ----------------------------------------------------------------------------- differential


async def random_workload(store: FeatureStoreProtocol, seed: int, n: int = 300) -> list[Any]:
    """A seeded mix of applications, transactions and signals (with replays); every result."""
    rng = random.Random(seed)
    results: list[Any] = []
    at = T0
    for i in range(n):
        at += timedelta(minutes=rng.choice([0, 1, 7, 50, 200, 1500]))
        device = f"d{rng.randrange(4)}"
        kind = rng.random()
        when = at - timedelta(minutes=rng.randrange(0, 90))  # late events too
        if kind < 0.35:
            keys = app_keys(rng.randrange(n), when, device, f"i{rng.randrange(6)}")
            results += await store.record_applications([keys])
        elif kind < 0.75:
            amount = rng.choice([-2_500, 100, 9_999, 52_000])
            merchant = f"m{rng.randrange(5)}"
            device_ref = device if rng.random() < 0.5 else None
            keys_t = txn_keys(rng.randrange(n), when, amount, merchant, device_ref)
            results += await store.record_transactions([keys_t])
        else:
            flags = {"is_rooted": rng.random() < 0.3, "vpn_active": rng.random() < 0.3}
            sim = rng.choice([None, 2, 500])
            keys_s = signal_keys(i, when, device, sim_change_age_hours=sim, **flags)
            results += await store.record_device_signals([keys_s])
    return results


# ----------------------------------------------------------------------------- chain heads

# Appends one sealed record, given as its wire bytes and record_hash, to an audited
# partition (produce to Kafka, or record the hash in memory).
Append = Callable[[str, int, bytes, str], Awaitable[None]]


def sealable_decision(n: int) -> dict[str, Any]:
    """A complete ApplicationDecision record without its chain fields."""
    return {
        "event_id": f"00000000-0000-4000-8000-{n:012d}",
        "tenant_id": "lender-chain",
        "occurred_at": T0,
        "schema_version": 2,
        "application_event_id": f"10000000-0000-4000-8000-{n:012d}",
        "application_id": f"app-chain-{n}",
        "customer_id": f"cust-chain-{n}",
        "decision": "REVIEW",
        "score": 0.5,
        "reasons": [{"code": "DEVICE_FARM", "contribution": 0.0}],
        "indicators": {"device_risk": 0.5},
        "features": {},
        "model_versions": {"bp": "test"},
        "ahp_config_version": 1,
        "lr_weight_adjustment": 0.0,
        "approve_below": 0.35,
        "applicant_ref": "id_" + "0" * 32,
    }


async def chain_heads_follow_what_was_written(heads: ChainHeadStore, append: Append) -> None:
    topic = "greencredit.decisions"
    start = {p: await heads.head(topic, p) for p in (0, 1)}
    codec = AvroCodec()
    first, first_hash = codec.encode_sealed(topic, sealable_decision(1), start[1])
    await append(topic, 1, first, first_hash)
    assert await heads.head(topic, 1) == first_hash
    second, second_hash = codec.encode_sealed(topic, sealable_decision(2), first_hash)
    await append(topic, 1, second, second_hash)
    assert await heads.head(topic, 1) == second_hash
    assert await heads.head(topic, 0) == start[0]  # another partition: its own chain
