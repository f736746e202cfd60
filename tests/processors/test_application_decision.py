"""The application processor on in-memory stores, against models/decision.py's `decide`.

The processor tier: agents' processing functions driven in process with the in-memory
stores of infra/memory.py (no broker, no Redis). Here it proves that `decide` reproduces
what the worker's `process_applications` decides today (decisions, reviews, disbursements:
record for record), that a batch of N decides what N batches of one decide, and that a
recorded decision replayed by `greencredit score --replay` is reproduced.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greencredit.agents.applications import process_applications
from greencredit.agents.engine import Engine, Incoming
from greencredit.agents.face_check import FaceChecker
from greencredit.agents.lender_configs import config_from_event, process_lender_configs
from greencredit.infra.feature_store import ApplicationKeys
from greencredit.infra.memory import (
    MemoryEngineState,
    MemoryFaceBlacklist,
    MemoryFeatureStore,
    MemoryLoanStore,
)
from greencredit.models.bp import BpCreditModel
from greencredit.models.decision import (
    ApplicationFacts,
    Decision,
    LenderFacts,
    decide,
    replay_facts,
)
from greencredit.models.face import FaceEmbedder
from greencredit.models.green import LOAN_PURPOSES
from greencredit.models.lender_view import EXTENSION_FIELDS, LenderView
from greencredit.models.lr_bootstrap import load_bootstrap_lr
from greencredit.models.online_lr import OnlineRiskModel
from greencredit.models.scoring import ApplicationScorer
from greencredit.settings import Settings
from greencredit.streams.codec import AvroCodec
from greencredit.streams.jsonform import to_json_form
from greencredit.streams.masking import pseudonym
from greencredit.streams.records import decision_record, disbursement_record
from tests.factories import application, example, native

CODEC = AvroCodec()
SETTINGS = Settings()
KEY = SETTINGS.pii_hmac_key.get_secret_value().encode()
TENANT = "lender-memory"
T = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NOW = T + timedelta(hours=2)
APPLICATIONS = "greencredit.loan-applications"
BP = BpCreditModel.load()
BOOTSTRAP = load_bootstrap_lr().to_state()
FACE = (Path(__file__).resolve().parents[2] / "models/data/faces/astronaut.jpg").read_bytes()
# Funders small enough that some approvals find none: the re-score path runs.
FUNDERS = json.dumps(
    [
        {"funder_id": "green", "green_only": True, "capacity_minor": 9_000_000,
         "max_risk_score": 0.6},
        {"funder_id": "grey", "green_only": False, "capacity_minor": 6_000_000,
         "max_risk_score": 0.5, "categories": None},
    ]
)  # fmt: skip
PRICING = '{"discount_by_category": {"clean transport": 80}, "green_approve_below_bonus": 0.08}'


def lender_event(funders: str | None = FUNDERS) -> dict[str, Any]:
    event = example("lender_config")
    event.update(event_id=str(uuid.uuid4()), tenant_id=TENANT, green_pricing=PRICING)
    event["funders"] = funders
    return native("greencredit.v1.LenderConfig", event)


def lender_document(funders: str | None = FUNDERS) -> dict[str, Any]:
    """The document the config agent stores for lender_event(funders)."""
    event = lender_event(funders)
    extensions = {name: event.get(name) for name in EXTENSION_FIELDS}
    return json.loads(orjson.dumps({**config_from_event(event).to_dict(), **extensions}))


def memory_engine(embedder: FaceEmbedder | None = None) -> Engine:
    """The worker's engine with in-memory stores (no Redis client is ever used)."""
    return Engine(
        settings=SETTINGS,
        codec=CODEC,
        redis=None,  # type: ignore[arg-type]
        store=MemoryEngineState(),  # type: ignore[arg-type]
        features=MemoryFeatureStore(),  # type: ignore[arg-type]
        loans=MemoryLoanStore(),  # type: ignore[arg-type]
        faces=FaceChecker(embedder, MemoryFaceBlacklist(), SETTINGS.face_image_max_bytes),  # type: ignore[arg-type]
        scorer=ApplicationScorer(BP),
        pii_key=KEY,
        kafka_config={},
        _bootstrap_state=BOOTSTRAP,
    )


def messages(topic: str, records: Sequence[dict[str, Any]]) -> list[Incoming]:
    return [Incoming(topic, i % 6, i, None, CODEC.encode(topic, r)) for i, r in enumerate(records)]


def decoded(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the worker sees after decoding (Avro keeps milliseconds)."""
    return [CODEC.decode(CODEC.encode(APPLICATIONS, r)).value for r in records]


def keys(app: dict[str, Any]) -> ApplicationKeys:
    return ApplicationKeys(
        event_id=app["event_id"],
        occurred_at=app["occurred_at"],
        device_ref=pseudonym(app["device_id"], KEY, "device"),
        id_ref=pseudonym(app["applicant"]["id_card_number"], KEY, "id"),
        phone_ref=pseudonym(app["applicant"]["phone"], KEY, "phone"),
        customer_id=app["customer_id"],
    )


async def gather_facts(
    apps: list[dict[str, Any]], features: MemoryFeatureStore, faces: FaceChecker
) -> list[ApplicationFacts]:
    """What the worker gathers: velocity and device state, then the face check."""
    velocities = await features.record_applications([keys(a) for a in apps])
    outcomes = await faces.check(apps)
    return [ApplicationFacts(v, f) for v, f in zip(velocities, outcomes, strict=True)]


def lenders(document: dict[str, Any] | None, used: dict[str, int] | None = None):
    view = LenderView.from_document(document) if document else LenderView.default(TENANT)
    model = OnlineRiskModel.from_state(BOOTSTRAP)
    return {TENANT: LenderFacts(view, model, 0.0, dict(used or {}))}


def records_of(
    apps: list[dict[str, Any]], decisions: list[Decision]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    decision_records, disbursements = [], []
    for app, decision in zip(apps, decisions, strict=True):
        record = decision_record(app, decision.scored, KEY, NOW)
        decision_records.append(record)
        if decision.terms is not None:
            disbursements.append(disbursement_record(app, decision.terms, record["event_id"]))
    return decision_records, disbursements


def batch(n: int) -> list[dict[str, Any]]:
    """A mixed batch: green and grey purposes, a device farm and a burst, bad IDs, faces."""
    apps = []
    for i in range(n):
        changes: dict[str, Any] = {
            "tenant_id": TENANT,
            "purpose": LOAN_PURPOSES[(i * 5) % len(LOAN_PURPOSES)],
            "requested_amount_minor": 500_000 + 700_000 * (i % 5),
            "occurred_at": (T + timedelta(minutes=3 * i)).isoformat(),
        }
        if i % 7 == 3:
            changes["device_id"] = "dev-shared-farm"  # many identities on one device
        if i % 11 == 5:
            changes["applicant"] = {"id_card_number": "110105199003071230"}  # bad check digit
        if i in (4, 9):
            changes["face_image"] = FACE
        if i == 10:
            changes["face_image"] = b"not an image"
        apps.append(application(9000 + i, **changes))
    # One identity applying again and again within the hour: a velocity burst.
    for k in range(4):
        apps.append(
            application(
                9000,
                tenant_id=TENANT,
                event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"burst-{k}")),
                application_id=f"app-burst-{k}",
                occurred_at=(T + timedelta(minutes=k)).isoformat(),
            )
        )
    return apps


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder.load()


def test_decide_reproduces_process_applications(embedder: FaceEmbedder) -> None:
    """Same inputs, same state: every decision, review and disbursement record is equal."""
    apps = batch(30)

    async def main() -> tuple[Any, list[Decision], list[dict[str, Any]]]:
        engine = memory_engine(embedder)
        await engine.faces.blacklist.add(
            embedder.embed_image(FACE), "KNOWN_FRAUD", "analyst-1", embedder.version
        )
        await process_lender_configs(
            engine, messages("greencredit.lender-config", [lender_event()])
        )
        result = await process_applications(engine, messages(APPLICATIONS, apps), NOW)
        # The same facts, gathered from fresh stores holding the same blacklist.
        [document] = (await engine.store.configs([TENANT])).values()
        seen = decoded(apps)
        faces = FaceChecker(embedder, engine.faces.blacklist, SETTINGS.face_image_max_bytes)
        facts = await gather_facts(seen, MemoryFeatureStore(), faces)
        return result, decide(seen, facts, lenders(document), ApplicationScorer(BP)), seen

    result, decisions, seen = asyncio.run(main())
    worker = {topic: [o.record for o in result.outputs if o.topic == topic] for topic in (
        "greencredit.decisions", "greencredit.reviews", "greencredit.disbursements")}  # fmt: skip
    decision_records, disbursements = records_of(seen, decisions)
    assert worker["greencredit.decisions"] == decision_records
    assert worker["greencredit.disbursements"] == disbursements
    assert worker["greencredit.reviews"] == [
        r for r in decision_records if r["decision"] == "REVIEW"
    ]
    # The batch exercised every path the decision has.
    codes = {r["code"] for record in decision_records for r in record["reasons"]}
    assert {"FUNDING_UNAVAILABLE", "FACE_BLACKLIST_HIT", "DEVICE_FARM", "IDENTITY_INVALID",
            "VELOCITY_BURST", "FACE_UNVERIFIED"} <= codes  # fmt: skip
    outcomes = {d.outcome for d in decisions}
    assert outcomes == {"APPROVE", "REVIEW", "DECLINE"}
    assert {d.funder_id for d in decisions if d.terms} == {"green", "grey"}
    assert any(d["rate_discount_bps"] == 80 for d in disbursements)


def _decide_one_by_one(
    apps: list[dict[str, Any]], facts: list[ApplicationFacts], document: dict[str, Any] | None
) -> list[Decision]:
    scorer, used, out = ApplicationScorer(BP), {}, []
    for app, fact in zip(apps, facts, strict=True):
        [decision] = decide([app], [fact], lenders(document, used), scorer)
        if decision.funder_id is not None:  # the capacity the earlier batch reserved
            used[decision.funder_id] = (
                used.get(decision.funder_id, 0) + app["requested_amount_minor"]
            )
        out.append(decision)
    return out


applications_strategy = st.lists(
    st.tuples(
        st.sampled_from(LOAN_PURPOSES),
        st.integers(1, 60).map(lambda k: k * 100_000),
        st.integers(0, 3),  # device
        st.integers(0, 180),  # minutes after T
        st.integers(3, 72),  # term
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=applications_strategy, funded=st.booleans())
def test_a_batch_of_n_decides_what_n_batches_of_one_decide(rows, funded) -> None:
    apps = decoded(
        [
            application(
                700 + i,
                tenant_id=TENANT,
                purpose=purpose,
                requested_amount_minor=amount,
                device_id=f"dev-{device}",
                term_months=term,
                occurred_at=(T + timedelta(minutes=minute)).isoformat(),
            )
            for i, (purpose, amount, device, minute, term) in enumerate(rows)
        ]
    )
    document = lender_document(FUNDERS if funded else None)
    facts = asyncio.run(
        gather_facts(apps, MemoryFeatureStore(), FaceChecker(None, MemoryFaceBlacklist(), 1024))
    )
    together = decide(apps, facts, lenders(document), ApplicationScorer(BP))
    assert together == _decide_one_by_one(apps, facts, document)


def test_greencredit_score_replays_the_recorded_decisions(tmp_path: Path, embedder) -> None:
    """The worker's records, replayed offline from the records alone, come out the same."""
    apps = batch(20)
    event = lender_event()

    async def main():
        engine = memory_engine(embedder)
        await process_lender_configs(engine, messages("greencredit.lender-config", [event]))
        return await process_applications(engine, messages(APPLICATIONS, apps), NOW)

    result = asyncio.run(main())
    recorded = [o.record for o in result.outputs if o.topic == "greencredit.decisions"]
    source, replay, out = tmp_path / "apps.jsonl", tmp_path / "recorded.jsonl", tmp_path / "out"
    source.write_bytes(b"\n".join(orjson.dumps(to_json_form(None, a)) for a in decoded(apps)))
    replay.write_bytes(b"\n".join(orjson.dumps(to_json_form(None, r)) for r in recorded))
    config, state = tmp_path / "config.json", tmp_path / "lr.json"
    config.write_bytes(orjson.dumps(lender_document()))
    state.write_bytes(orjson.dumps(BOOTSTRAP))
    run = subprocess.run(
        [sys.executable, "-m", "greencredit", "score", "--in", str(source), "--out", str(out),
         "--config", str(config), "--lr-state", str(state), "--replay", str(replay)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["replayed"] == summary["reproduced"] == len(recorded) == len(apps)
    replayed = [json.loads(line) for line in out.read_text().splitlines()]
    expected = [json.loads(orjson.dumps(to_json_form(None, r))) for r in recorded]
    for mine, theirs in zip(replayed, expected, strict=True):
        mine.pop("occurred_at"), theirs.pop("occurred_at")  # when it was decided
        assert mine == theirs


def test_replay_facts_recover_the_context() -> None:
    apps = decoded(batch(12))
    facts = asyncio.run(
        gather_facts(apps, MemoryFeatureStore(), FaceChecker(None, MemoryFaceBlacklist(), 1024))
    )
    decisions = decide(apps, facts, lenders(lender_document()), ApplicationScorer(BP))
    records, _ = records_of(apps, decisions)
    replays = [replay_facts(r) for r in records]
    again = decide(apps, replays, lenders(lender_document(None)), ApplicationScorer(BP))
    # Without the lender's funders: the recorded flags (FUNDING_UNAVAILABLE) still decide.
    assert [d.scored.result for d in again] == [d.scored.result for d in decisions]
    assert [d.context.flags for d in again] == [d.context.flags for d in decisions]
