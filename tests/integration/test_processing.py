"""The agents' processing functions, in process: real Redis, outputs captured in memory.

This is the Faust-free agent tier: the same code the agents run, driven batch by batch,
with the send step collecting records instead of producing them (audit heads still come
from the real broker).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import pytest
import redis.asyncio as aioredis

from greencredit.agents.applications import ApplicationDeps, process_applications
from greencredit.agents.batch import finish_batch
from greencredit.agents.engine import Engine
from greencredit.agents.feedback import FeedbackDeps, process_feedback
from greencredit.agents.lender_configs import LenderConfigDeps, process_lender_configs
from greencredit.agents.loans import LoanOpeningDeps, process_loan_openings
from greencredit.agents.messages import Incoming
from greencredit.agents.runtime import Runtime
from greencredit.agents.transactions import TransactionDeps, process_transactions
from greencredit.models.green import default_taxonomy
from greencredit.models.monitoring import (
    ModelMonitor,
    MonitorConfig,
    observe_label,
    observe_scores,
)
from greencredit.settings import Settings
from greencredit.streams.codec import AvroCodec
from tests.factories import application, example, native, transaction, valid_id_number

CODEC = AvroCodec()
# Each processor's part of the worker's resources, as the agents' register() wire them.
DEPS_OF: dict[Any, Any] = {
    process_applications: ApplicationDeps.of,
    process_feedback: FeedbackDeps.of,
    process_lender_configs: LenderConfigDeps.of,
    process_transactions: TransactionDeps.of,
}


class Captured:
    """A Sink that keeps (topic, decoded record) instead of producing."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.result: Any = None  # the processed batch (what finish_batch was given)

    def produce(self, topic: str, key: bytes, value: bytes, partition: int | None) -> None:
        self.records.append((topic, CODEC.decode(value).value))

    async def flush(self) -> None:
        return None

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [r for t, r in self.records if t == topic]


def _messages(topic: str, records: list[dict[str, Any]]) -> list[Incoming]:
    return [Incoming(topic, i % 6, i, None, CODEC.encode(topic, r)) for i, r in enumerate(records)]


def _run(stack, process, messages):
    async def go():
        settings = Settings(KAFKA_BOOTSTRAP_SERVERS=stack.kafka, REDIS_URL=stack.redis)
        engine = Engine.create(settings)
        await engine.start()
        captured = Captured()
        try:
            deps = DEPS_OF[process](engine.resources)
            result = captured.result = await process(deps, messages)
            await finish_batch(engine.emit, engine.books, result, captured)
        finally:
            await engine.close()
        return captured

    return asyncio.run(go())


@pytest.fixture
def tenant() -> str:
    return f"lender-{uuid.uuid4().hex[:8]}"


def test_a_replayed_batch_emits_nothing_new(stack, tenant):
    apps = [application(3000 + i, tenant_id=tenant) for i in range(5)]
    messages = _messages("greencredit.loan-applications", apps)
    first = _run(stack, process_applications, messages)
    assert len(first.on("greencredit.decisions")) == 5
    again = _run(stack, process_applications, messages)
    assert again.records == []


def test_poison_is_dead_lettered_and_the_rest_decided(stack, tenant):
    apps = [application(3100 + i, tenant_id=tenant) for i in range(3)]
    messages = _messages("greencredit.loan-applications", apps)
    messages.insert(1, Incoming("greencredit.loan-applications", 0, 99, b"k", b"\x01nope"))
    captured = _run(stack, process_applications, messages)
    assert len(captured.on("greencredit.decisions")) == 3
    # The decision-latency metric starts from these, taken from the decode already done.
    # Avro keeps milliseconds: the decoded times, not the factory's microseconds.
    assert captured.result.occurred_at == {
        a["event_id"]: a["occurred_at"].replace(
            microsecond=a["occurred_at"].microsecond // 1000 * 1000
        )
        for a in apps
    }
    [letter] = captured.on("greencredit.dead-letter")
    assert (letter["error_type"], letter["original_value"]) == ("BadMagicByte", b"\x01nope")


def test_a_disbursement_already_sent_is_not_sent_again(stack, tenant):
    app = application(3200, tenant_id=tenant)
    first = _run(stack, process_applications, _messages("greencredit.loan-applications", [app]))
    assert len(first.on("greencredit.disbursements")) == 1
    # The same application arrives again under a new event id (a client retry).
    retry = dict(app, event_id=str(uuid.uuid4()))
    second = _run(stack, process_applications, _messages("greencredit.loan-applications", [retry]))
    assert len(second.on("greencredit.decisions")) == 1
    assert second.on("greencredit.disbursements") == []


def test_lender_configs_newest_version_wins_and_invalid_ones_are_refused(stack, tenant):
    def config(version, approve_below, matrix=None):
        event = example("lender_config")
        event.update(
            event_id=str(uuid.uuid4()),
            tenant_id=tenant,
            config_version=version,
            approve_below=approve_below,
        )
        if matrix is not None:
            event["nodes"][2]["matrix"] = matrix
        return native("greencredit.v1.LenderConfig", event)

    not_reciprocal = [[1, 2, 3], [2, 1, 2], [1 / 3, 0.5, 1]]
    captured = _run(
        stack,
        process_lender_configs,
        _messages(
            "greencredit.lender-config",
            [config(3, 0.1), config(2, 0.2), config(4, 0.1, matrix=not_reciprocal)],
        ),
    )
    [letter] = captured.on("greencredit.dead-letter")
    assert letter["error_type"] == "InvalidLenderConfig"
    assert "credit_risk" in letter["reason"] or "matrix" in letter["reason"]
    decided = _run(
        stack,
        process_applications,
        _messages("greencredit.loan-applications", [application(3300, tenant_id=tenant)]),
    )
    assert decided.on("greencredit.decisions")[0]["ahp_config_version"] == 3


def test_labels_without_a_scored_event_teach_nothing(stack, tenant):
    feedback = example("analyst_feedback")
    feedback.update(
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        subject_event_id=str(uuid.uuid4()),
        label="FRAUD",
    )
    captured = _run(
        stack,
        process_feedback,
        _messages(
            "greencredit.analyst-feedback", [native("greencredit.v1.AnalystFeedback", feedback)]
        ),
    )
    assert captured.records == []


def test_transactions_alert_once_and_replays_are_silent(stack, tenant):
    history = [
        transaction(
            4000 + i,
            tenant_id=tenant,
            account_id=f"acct-{tenant}",
            amount_minor=10_000,
            occurred_at="2026-11-20T02:00:00+00:00",
        )
        for i in range(6)
    ]
    spike = transaction(
        4100,
        tenant_id=tenant,
        account_id=f"acct-{tenant}",
        amount_minor=9_000_000,
        merchant_id="m-new",
        occurred_at="2026-11-20T19:00:00+00:00",
    )  # 03:00 in Shanghai
    messages = _messages("greencredit.transactions", [*history, spike])
    first = _run(stack, process_transactions, messages)
    alerts = first.on("greencredit.fraud-alerts")
    assert [a["source_event_id"] for a in alerts] == [spike["event_id"]]
    assert _run(stack, process_transactions, messages).records == []


def test_spending_a_loan_unusually_signals_the_loan(stack, tenant):
    history = [
        transaction(
            4200 + i,
            tenant_id=tenant,
            account_id=f"acct2-{tenant}",
            amount_minor=10_000,
            occurred_at="2026-11-20T02:00:00+00:00",
        )
        for i in range(6)
    ]
    spend = transaction(
        4300,
        tenant_id=tenant,
        account_id=f"acct2-{tenant}",
        amount_minor=9_000_000,
        merchant_id="m-casino",
        loan_id="loan-x1",
        occurred_at="2026-11-20T19:00:00+00:00",
    )
    captured = _run(
        stack, process_transactions, _messages("greencredit.transactions", [*history, spend])
    )
    [signal] = captured.on("greencredit.loan-servicing")
    assert (signal["loan_id"], signal["kind"]) == ("loan-x1", "BEHAVIOUR_RISK")
    assert signal["behaviour_risk"] >= 0.5


def test_an_invalid_delinquency_policy_is_refused(stack, tenant):
    event = example("lender_config")
    event.update(
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        delinquency_policy='{"buckets": [[1, 30, "MILD"], [20, null, "SEVERE"]]}',
    )
    captured = _run(
        stack,
        process_lender_configs,
        _messages("greencredit.lender-config", [native("greencredit.v1.LenderConfig", event)]),
    )
    [letter] = captured.on("greencredit.dead-letter")
    assert letter["error_type"] == "InvalidLenderConfig"


def _lender(tenant: str, **extensions: str) -> None:
    event = example("lender_config")
    event.update(event_id=str(uuid.uuid4()), tenant_id=tenant, **extensions)
    return native("greencredit.v1.LenderConfig", event)


def test_green_pricing_and_funders_shape_the_disbursement(stack, tenant):
    pricing = '{"discount_by_category": {"clean transport": 80}}'
    funders = (
        '[{"funder_id": "fund-grey", "green_only": false, "capacity_minor": 10000000000,'
        ' "max_risk_score": 0.6}, {"funder_id": "fund-green", "green_only": true,'
        ' "capacity_minor": 10000000000, "max_risk_score": 0.6}]'
    )
    _run(
        stack,
        process_lender_configs,
        _messages(
            "greencredit.lender-config", [_lender(tenant, green_pricing=pricing, funders=funders)]
        ),
    )
    ev = application(5000, tenant_id=tenant, purpose="ELECTRIC_VEHICLE")
    grey = application(5001, tenant_id=tenant, purpose="TRAVEL")
    bike = application(5002, tenant_id=tenant, purpose="E_BIKE")
    captured = _run(
        stack, process_applications, _messages("greencredit.loan-applications", [ev, grey, bike])
    )
    by_app = {d["application_id"]: d for d in captured.on("greencredit.disbursements")}
    assert by_app["app-05000"]["rate_discount_bps"] == 80
    assert by_app["app-05000"]["funder_id"] == "fund-green"  # green mandate first
    assert by_app["app-05001"]["rate_discount_bps"] == 0
    assert by_app["app-05001"]["funder_id"] == "fund-grey"
    # The estimate comes from the taxonomy's derived factor; a non-green loan carries none.
    ev_factor = default_taxonomy().purpose("ELECTRIC_VEHICLE").co2e
    assert ev_factor is not None and ev_factor.kg_co2e_avoided
    assert by_app["app-05000"]["co2e_avoided_kg"] == ev_factor.kg_co2e_avoided
    assert by_app["app-05001"]["co2e_avoided_kg"] is None
    # An e-bike is green (discounted, green funder) but its zero claim credits no CO2e.
    assert by_app["app-05002"]["rate_discount_bps"] == 80
    assert by_app["app-05002"]["funder_id"] == "fund-green"
    assert by_app["app-05002"]["co2e_avoided_kg"] == 0.0


def test_a_loan_no_funder_can_take_goes_to_review(stack, tenant):
    funders = (
        '[{"funder_id": "tiny", "green_only": false, "capacity_minor": 100, "max_risk_score": 1.0}]'
    )
    _run(
        stack,
        process_lender_configs,
        _messages("greencredit.lender-config", [_lender(tenant, funders=funders)]),
    )
    captured = _run(
        stack,
        process_applications,
        _messages("greencredit.loan-applications", [application(5100, tenant_id=tenant)]),
    )
    [decision] = captured.on("greencredit.decisions")
    assert decision["decision"] == "REVIEW"
    assert "FUNDING_UNAVAILABLE" in [r["code"] for r in decision["reasons"]]
    assert captured.on("greencredit.disbursements") == []


def test_business_applicants_get_an_esg_indicator(stack, tenant):
    business = application(
        5200,
        tenant_id=tenant,
        purpose="GREEN_BUSINESS_TRANSFORMATION",
        esg={
            "energy_intensity_kwh_per_10k_revenue": 300.0,
            "renewable_share": 0.6,
            "certifications": ["ISO14001"],
            "environmental_violations_3y": 0,
        },
    )
    captured = _run(
        stack, process_applications, _messages("greencredit.loan-applications", [business])
    )
    [decision] = captured.on("greencredit.decisions")
    assert 0.0 <= decision["indicators"]["esg_risk"] <= 1.0


def test_green_loan_money_spent_elsewhere_raises_diversion_alerts(stack, tenant):
    app = application(
        5300, tenant_id=tenant, purpose="ELECTRIC_VEHICLE", requested_amount_minor=1_000_000
    )
    captured = _run(stack, process_applications, _messages("greencredit.loan-applications", [app]))
    [loan] = captured.on("greencredit.disbursements")

    def spend(n, amount, mcc):
        return transaction(
            5400 + n,
            tenant_id=tenant,
            loan_id=loan["loan_id"],
            account_id=f"acct3-{tenant}",
            amount_minor=amount,
            mcc=mcc,
            merchant_id=f"m-{n}",
            occurred_at="2026-11-21T04:00:00+00:00",
        )

    fitting = _run(
        stack,
        process_transactions,
        _messages("greencredit.transactions", [spend(0, 600_000, "5511")]),
    )
    assert fitting.on("greencredit.fraud-alerts") == []
    first = _run(
        stack,
        process_transactions,
        _messages("greencredit.transactions", [spend(1, 250_000, "7995")]),
    )
    [alert] = [a for a in first.on("greencredit.fraud-alerts") if a["source"] == "GREEN_PURPOSE"]
    assert alert["reasons"][0]["code"] == "DIVERSION_ALERT"
    second = _run(
        stack,
        process_transactions,
        _messages("greencredit.transactions", [spend(2, 300_000, "7995")]),
    )
    [critical] = [
        a for a in second.on("greencredit.fraud-alerts") if a["source"] == "GREEN_PURPOSE"
    ]
    assert (critical["reasons"][0]["code"], critical["severity"]) == (
        "DIVERSION_ESCALATION",
        "CRITICAL",
    )
    assert [s["kind"] for s in second.on("greencredit.loan-servicing")] == ["BEHAVIOUR_RISK"]


def _orl_photo(person: str, number: int) -> bytes:
    import itertools
    from pathlib import Path

    import numpy as np

    path = Path(__file__).resolve().parents[2] / "models/data/faces/orl_test_faces.npz"
    with np.load(path) as data:
        for (a, b), p, n in zip(
            itertools.pairwise(data["offsets"]), data["person"], data["photo"], strict=False
        ):
            if (str(p), int(n)) == (person, number):
                return data["png"][a:b].tobytes()
    raise KeyError((person, number))


def test_face_blacklist_hit_declines_and_alerts_bad_images_go_to_review(stack, tenant):
    from greencredit.infra.face_blacklist import FaceBlacklist
    from greencredit.models.face import FaceEmbedder, cosine_similarity

    enrolled, other_photo = _orl_photo("s13", 1), _orl_photo("s13", 6)
    stranger = _orl_photo("s32", 2)
    clean = _run(
        stack,
        process_applications,
        _messages(
            "greencredit.loan-applications",
            [
                application(6000, tenant_id=tenant, face_image=stranger),
                application(6001, tenant_id=tenant, face_image=b"definitely not a jpeg"),
            ],
        ),
    )
    decisions = {d["application_id"]: d for d in clean.on("greencredit.decisions")}
    assert decisions["app-06000"]["indicators"]["face_risk"] == 0.0
    assert "FACE_RISK_NOT_PROVIDED" not in [r["code"] for r in decisions["app-06000"]["reasons"]]
    unreadable = [r["code"] for r in decisions["app-06001"]["reasons"]]
    assert decisions["app-06001"]["decision"] == "REVIEW"
    assert "FACE_UNVERIFIED" in unreadable and "FACE_IMAGE_UNREADABLE" in unreadable

    embedder = FaceEmbedder.load()

    async def blacklist_it() -> str:
        client = aioredis.Redis.from_url(stack.redis)
        try:
            return await FaceBlacklist(client).add(
                embedder.embed_image(enrolled), "KNOWN_FRAUD", "analyst-1", embedder.version
            )
        finally:
            await client.aclose()

    entry = asyncio.run(blacklist_it())
    try:
        # The thief sends another photo of the blacklisted person, not the enrolled one.
        hit = _run(
            stack,
            process_applications,
            _messages(
                "greencredit.loan-applications",
                [
                    application(6002, tenant_id=tenant, face_image=other_photo),
                    application(6003, tenant_id=tenant, face_image=stranger),
                ],
            ),
        )
        decisions = {d["application_id"]: d for d in hit.on("greencredit.decisions")}
        assert decisions["app-06002"]["decision"] == "DECLINE"
        assert "FACE_BLACKLIST_HIT" in [r["code"] for r in decisions["app-06002"]["reasons"]]
        assert decisions["app-06003"]["indicators"]["face_risk"] == 0.0
        [alert] = hit.on("greencredit.fraud-alerts")
        assert (alert["source"], alert["blacklist_entry_id"]) == ("FACE", entry)
        assert "app-06002" not in [d["application_id"] for d in hit.on("greencredit.disbursements")]

        # A lender whose threshold sits just above this pair's similarity: a near miss,
        # reviewed with its similarity, not declined.
        similarity = cosine_similarity(
            embedder.embed_image(enrolled), embedder.embed_image(other_photo)
        )
        event = example("lender_config")
        event.update(
            event_id=str(uuid.uuid4()),
            tenant_id=tenant,
            config_version=7,
            face_match_threshold=round(similarity + 0.005, 4),
        )
        _run(
            stack,
            process_lender_configs,
            _messages("greencredit.lender-config", [native("greencredit.v1.LenderConfig", event)]),
        )
        near = _run(
            stack,
            process_applications,
            _messages(
                "greencredit.loan-applications",
                [application(6004, tenant_id=tenant, face_image=other_photo)],
            ),
        )
        [decision] = near.on("greencredit.decisions")
        codes = [r["code"] for r in decision["reasons"]]
        assert decision["decision"] == "REVIEW"
        assert "FACE_BLACKLIST_NEAR_MISS" in codes and "FACE_BLACKLIST_HIT" not in codes
        [alert] = near.on("greencredit.fraud-alerts")
        assert alert["reasons"][0]["code"] == "FACE_BLACKLIST_NEAR_MISS"
        assert alert["score"] == pytest.approx(similarity, abs=1e-4)
        assert alert["blacklist_entry_id"] == entry
    finally:

        async def unlist() -> None:
            client = aioredis.Redis.from_url(stack.redis)
            await FaceBlacklist(client).remove(entry, "analyst-1")
            await client.aclose()

        asyncio.run(unlist())


def _age_on_id(id_number: str) -> int:
    born = date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    today = datetime.now(UTC).date()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def test_a_burst_of_applications_by_one_identity_goes_to_review(stack, tenant):
    # A script testing the form: the same person applies again and again within the hour.
    same = {"id_card_number": valid_id_number(born="19771111", seq="731"), "phone": "13955550731"}
    apps = [
        application(
            7300 + i,
            tenant_id=tenant,
            applicant=same,
            device_id=f"dev-burst-{i}",
            credit_profile={"age_years": _age_on_id(same["id_card_number"])},
        )
        for i in range(3)
    ]
    decisions = []
    for app in apps:  # one per batch, as they would arrive minutes apart
        captured = _run(
            stack, process_applications, _messages("greencredit.loan-applications", [app])
        )
        decisions += captured.on("greencredit.decisions")
    flagged = ["VELOCITY_BURST" in {r["code"] for r in d["reasons"]} for d in decisions]
    assert flagged == [False, False, True]
    assert decisions[0]["decision"] == "APPROVE"
    assert decisions[2]["decision"] in ("REVIEW", "DECLINE")
    assert decisions[2]["indicators"]["velocity_risk"] == 1.0


def _impatient(stack) -> Settings:
    """Settings that give up on Redis after one quick try (outages are simulated)."""
    return Settings(
        KAFKA_BOOTSTRAP_SERVERS=stack.kafka,
        REDIS_URL=stack.redis,
        REDIS_RETRY_ATTEMPTS=1,
        REDIS_RETRY_BASE_S=0.01,
    )


def test_a_redis_outage_at_the_disbursement_claim_delays_the_batch_not_the_money(stack, tenant):
    app = application(3950, tenant_id=tenant)
    messages = _messages("greencredit.loan-applications", [app])

    async def go():
        settings = _impatient(stack)
        engine = Engine.create(settings)
        await engine.start()
        claim = engine.resources.state.claim_disbursements
        outage = [ConnectionError("redis went away")] * 3

        async def claim_after_the_outage(wanted):
            if outage:
                raise outage.pop()
            return await claim(wanted)

        engine.resources.state.claim_disbursements = claim_after_the_outage
        runtime = Runtime(settings)
        runtime._sink = captured = Captured()
        try:
            deps = ApplicationDeps.of(engine.resources)
            await runtime.handle(engine, messages, partial(process_applications, deps))
        finally:
            await engine.close()
        return runtime, captured, outage

    runtime, captured, outage = asyncio.run(go())
    assert outage == [], captured.records  # the claim failed three times, then answered
    [decision] = captured.on("greencredit.decisions")
    assert decision["decision"] == "APPROVE"
    # One disbursement, emitted once, and nothing dead-lettered: the batch waited.
    assert [d["application_id"] for d in captured.on("greencredit.disbursements")] == [
        app["application_id"]
    ]
    assert captured.on("greencredit.dead-letter") == []
    assert runtime.processed == 1


def _primed_monitor(limit: float, signal: str = "score") -> ModelMonitor:
    """A monitor one event away from closing a drift assessment that moves the LR weight.

    Built through the public step functions: the LR's scores (or, for "error", its errors
    on negative labels) drift up (0.25 -> 0.40, BP at 0.20), a one-directional gap below
    the replacement level, so the next observed event closes the assessment with
    ADJUST_LR_WEIGHT (trust the LR less: one step down).
    """
    monitor = ModelMonitor(MonitorConfig(lr_weight_limit=limit))
    now = datetime.now(UTC)

    def observe(lr: float) -> None:
        if signal == "score":
            observe_scores(monitor, 0.20, lr, now)
        else:
            observe_label(monitor, 0.20, lr, False, now)

    for _ in range(400):
        observe(0.25)
    while not monitor.assessments[signal].detections:
        observe(0.40)
    while monitor.assessments[signal].events_since < monitor.config.assessment_events - 1:
        observe(0.40)
    return monitor


def test_an_lr_weight_moved_by_one_worker_is_used_by_every_worker(stack, tenant):
    async def go():
        settings = Settings(KAFKA_BOOTSTRAP_SERVERS=stack.kafka, REDIS_URL=stack.redis)
        first, second = Engine.create(settings), Engine.create(settings)
        await first.start()
        await second.start()
        try:
            config = (await first.resources.lenders.lender_views([tenant]))[tenant].config
            first.resources.lenders.monitors[tenant] = _primed_monitor(
                config.lr_weight_adjust_limit
            )
            out_first, out_second = Captured(), Captured()
            topic = "greencredit.loan-applications"
            batch = await process_applications(
                ApplicationDeps.of(first.resources),
                _messages(topic, [application(7000, tenant_id=tenant)]),
            )
            await finish_batch(first.emit, first.books, batch, out_first)
            batch = await process_applications(
                ApplicationDeps.of(second.resources),
                _messages(topic, [application(7001, tenant_id=tenant)]),
            )
            await finish_batch(second.emit, second.books, batch, out_second)
            stored = await second.resources.state.lr_adjustments([tenant])
            return out_first, out_second, stored, first, second
        finally:
            await first.close()
            await second.close()

    out_first, out_second, stored, first, second = asyncio.run(go())
    moved = first.resources.lenders.monitors[tenant].lr_weight_adjustment
    assert moved == pytest.approx(-0.02)
    [health] = out_first.on("greencredit.model-health")
    assert health["lr_weight_adjustment"] == pytest.approx(moved)
    # The first decision was scored before the assessment closed; the other worker's
    # decision uses the published value, and its own monitor starts from it.
    [decided_before] = out_first.on("greencredit.decisions")
    assert decided_before["lr_weight_adjustment"] == 0.0
    assert stored == {tenant: pytest.approx(moved)}
    [decided_after] = out_second.on("greencredit.decisions")
    assert decided_after["lr_weight_adjustment"] == pytest.approx(moved)
    assert second.resources.lenders.monitors[tenant].lr_weight_adjustment == pytest.approx(moved)


@pytest.mark.parametrize(
    ("n", "stored", "used"), [(7100, "0.5", 0.10), (7101, "-0.5", -0.10), (7102, "nan", 0.0)]
)
def test_a_stored_lr_weight_is_clamped_to_the_lenders_limit(stack, tenant, n, stored, used):
    async def put() -> None:
        client = aioredis.Redis.from_url(stack.redis)
        try:
            await client.set(f"gc:lr-adjust:{tenant}", stored)
        finally:
            await client.aclose()

    asyncio.run(put())
    captured = _run(
        stack,
        process_applications,
        _messages("greencredit.loan-applications", [application(n, tenant_id=tenant)]),
    )
    [decision] = captured.on("greencredit.decisions")
    assert decision["lr_weight_adjustment"] == pytest.approx(used)


def test_an_lr_weight_moved_by_the_learner_is_published(stack, tenant):
    scored_app = application(7200, tenant_id=tenant)
    _run(stack, process_applications, _messages("greencredit.loan-applications", [scored_app]))
    label = example("analyst_feedback")
    label.update(
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        subject_event_id=scored_app["event_id"],
        label="DEFAULTED",
    )

    async def learn():
        settings = Settings(KAFKA_BOOTSTRAP_SERVERS=stack.kafka, REDIS_URL=stack.redis)
        learner = Engine.create(settings)
        await learner.start()
        try:
            lenders = learner.resources.lenders
            config = (await lenders.lender_views([tenant]))[tenant].config
            lenders.monitors[tenant] = _primed_monitor(config.lr_weight_adjust_limit, "error")
            captured = Captured()
            batch = await process_feedback(
                FeedbackDeps.of(learner.resources),
                _messages(
                    "greencredit.analyst-feedback",
                    [native("greencredit.v1.AnalystFeedback", label)],
                ),
            )
            await finish_batch(learner.emit, learner.books, batch, captured)
            return captured, await learner.resources.state.lr_adjustments([tenant])
        finally:
            await learner.close()

    captured, stored = asyncio.run(learn())
    [health] = captured.on("greencredit.model-health")
    assert health["lr_weight_adjustment"] == pytest.approx(-0.02)
    assert stored == {tenant: pytest.approx(-0.02)}
    decided = _run(
        stack,
        process_applications,
        _messages("greencredit.loan-applications", [application(7201, tenant_id=tenant)]),
    )
    assert decided.on("greencredit.decisions")[0]["lr_weight_adjustment"] == pytest.approx(-0.02)


def test_loans_whose_redis_is_down_after_the_acks_open_from_the_loan_openings_topic(stack, tenant):
    """Money out, Redis gone: the loans go to the loan-openings topic and open from it later."""
    apps = [application(3970 + i, tenant_id=tenant) for i in range(6)]
    messages = _messages("greencredit.loan-applications", apps)

    async def go():
        settings = _impatient(stack)
        engine = Engine.create(settings)
        await engine.start()
        captured = Captured()
        loans = engine.resources.loans
        open_loans = loans.open

        async def redis_gone(loans):
            raise ConnectionError("redis went away")

        try:
            result = await process_applications(ApplicationDeps.of(engine.resources), messages)
            loans.open = redis_gone
            await finish_batch(engine.emit, engine.books, result, captured)
            loans.open = open_loans
            deferred = captured.on("greencredit.loan-openings")
            before = await loans.load([d["loan_id"] for d in deferred])
            await process_loan_openings(
                LoanOpeningDeps.of(engine.resources),
                _messages("greencredit.loan-openings", deferred),
            )
            after = await loans.load([d["loan_id"] for d in deferred])
            state = engine.resources.state
            claims = await state.decision_state([a["application_id"] for a in apps], {})
        finally:
            await engine.close()
        return captured, before, after, claims

    captured, before, after, claims = asyncio.run(go())
    sent = captured.on("greencredit.disbursements")
    deferred = captured.on("greencredit.loan-openings")
    assert sent and before == {}
    assert [d["event_id"] for d in deferred] == [d["event_id"] for d in sent]
    assert set(after) == {d["loan_id"] for d in sent}
    assert {a: c.state for a, c in claims.claims.items()} == dict.fromkeys(
        (d["application_id"] for d in sent), "sent"
    )
