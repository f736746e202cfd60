"""The processor tier's kit: a worker's resources on in-memory stores, and a mixed batch.

Shared by the tests in this folder; nothing here talks to a server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from greencredit.agents.applications import ApplicationDeps
from greencredit.agents.batch import Bookkeeping
from greencredit.agents.devices import DeviceDeps
from greencredit.agents.face_check import FaceChecker
from greencredit.agents.feedback import FeedbackDeps
from greencredit.agents.lender_cache import LenderCaches
from greencredit.agents.lender_configs import LenderConfigDeps, config_from_event
from greencredit.agents.loans import ContactDeps, LoanDeps, LoanOpeningDeps
from greencredit.agents.messages import Decoder, Incoming
from greencredit.agents.resources import Resources
from greencredit.agents.retry import Retry
from greencredit.agents.transactions import TransactionDeps
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
)
from greencredit.models.face import FaceEmbedder
from greencredit.models.green import LOAN_PURPOSES
from greencredit.models.lender_view import EXTENSION_FIELDS, LenderView
from greencredit.models.lr_bootstrap import load_bootstrap_lr
from greencredit.models.online_lr import OnlineRiskModel
from greencredit.models.scoring import ApplicationScorer
from greencredit.settings import Settings
from greencredit.streams.codec import AvroCodec
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


@dataclass(frozen=True)
class MemoryWorker:
    """A worker's resources on in-memory stores, and each processor's part of them.

    There is no Redis client anywhere in it: a processor that reached past its stores
    would have nothing to reach.
    """

    resources: Resources
    state: MemoryEngineState
    features: MemoryFeatureStore
    loans: MemoryLoanStore

    @property
    def lenders(self) -> LenderCaches:
        return self.resources.lenders

    @property
    def faces(self) -> FaceChecker:
        return self.resources.faces

    @property
    def applications(self) -> ApplicationDeps:
        return ApplicationDeps.of(self.resources)

    @property
    def transactions(self) -> TransactionDeps:
        return TransactionDeps.of(self.resources)

    @property
    def devices(self) -> DeviceDeps:
        return DeviceDeps.of(self.resources)

    @property
    def feedback(self) -> FeedbackDeps:
        return FeedbackDeps.of(self.resources)

    @property
    def configs(self) -> LenderConfigDeps:
        return LenderConfigDeps.of(self.resources)

    @property
    def loan_events(self) -> LoanDeps:
        return LoanDeps.of(self.resources)

    @property
    def loan_openings(self) -> LoanOpeningDeps:
        return LoanOpeningDeps.of(self.resources)

    @property
    def contacts(self) -> ContactDeps:
        return ContactDeps.of(self.resources)

    @property
    def books(self) -> Bookkeeping:
        return Bookkeeping.of(self.resources)


def memory_resources(
    embedder: FaceEmbedder | None = None,
    state: MemoryEngineState | None = None,
    codec: AvroCodec = CODEC,
) -> tuple[Resources, MemoryEngineState, MemoryFeatureStore, MemoryLoanStore]:
    """The worker's resources with in-memory stores, and those stores."""
    state = state or MemoryEngineState()
    features = MemoryFeatureStore(done=state.done)
    loans = MemoryLoanStore()
    retry = Retry.from_settings(SETTINGS)
    resources = Resources(
        settings=SETTINGS,
        decoder=Decoder(codec),
        retry=retry,
        state=state,  # type: ignore[arg-type]
        features=features,  # type: ignore[arg-type]
        loans=loans,  # type: ignore[arg-type]
        faces=FaceChecker(embedder, MemoryFaceBlacklist(), SETTINGS.face_image_max_bytes),  # type: ignore[arg-type]
        scorer=ApplicationScorer(BP),
        lenders=LenderCaches(state, retry, SETTINGS.config_refresh_s, BOOTSTRAP),  # type: ignore[arg-type]
        pii_key=KEY,
    )
    return resources, state, features, loans


def memory_worker(
    embedder: FaceEmbedder | None = None,
    state: MemoryEngineState | None = None,
    codec: AvroCodec = CODEC,
) -> MemoryWorker:
    """A worker on in-memory stores (`state` to share or instrument the engine state)."""
    return MemoryWorker(*memory_resources(embedder, state, codec))


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
    apps: list[dict[str, Any]],
    features: MemoryFeatureStore,
    faces: FaceChecker,
    document: dict[str, Any] | None = None,
) -> list[ApplicationFacts]:
    """What the worker gathers: velocity and device state, then the face check.

    The face check uses the lender's own match threshold, as the worker does.
    """
    velocities = await features.record_applications([keys(a) for a in apps])
    view = LenderView.from_document(document) if document else LenderView.default(TENANT)
    outcomes = await faces.check(apps, [view.config.face_match_threshold for _ in apps])
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
