"""Loan applications -> gathered facts -> models/decision.py's decide -> records.

The agent gathers what a decision needs (velocity and device state, the face check, the
lenders' views, models and funders' usage), calls :func:`decide` once for the batch,
reserves each approval's funder and emits what came out. Decisions and disbursements go to
the partition number the application came from, so exactly one worker writes each audited
partition and its hash chain stays linear.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from redis.exceptions import RedisError

from greencredit.infra.engine_store import (
    DecisionState,
    DisbursementClaim,
    FundingRequest,
)
from greencredit.infra.feature_store import ApplicationKeys
from greencredit.infra.stores import EngineStateStore, FeatureStoreProtocol
from greencredit.models.application_checks import application_problem
from greencredit.models.decision import ApplicationFacts, Decision, LenderFacts, decide
from greencredit.models.features import ApplicationVelocity
from greencredit.models.fusion import HardFlag
from greencredit.models.lender_view import LenderView
from greencredit.models.monitoring import observe_scores
from greencredit.models.scoring import ApplicationScorer
from greencredit.streams import topics
from greencredit.streams.errors import InvalidEvent
from greencredit.streams.masking import pseudonym
from greencredit.streams.records import (
    claim_payload,
    claimed_records,
    decision_record,
    disbursement_record,
    fraud_alert_record,
    model_health_record,
)

from .batch import BatchResult
from .face_check import FaceChecker, FaceOutcome
from .lender_cache import APPLICATION_LR, LenderCaches
from .loans import disbursed_marker, loan_opening
from .messages import Decoder, Incoming, Outgoing, dead_letter
from .resources import Resources
from .retry import RedisUnavailable, Retry

__all__ = ["ApplicationDeps", "process_applications"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplicationDeps:
    """What deciding applications uses: the state and feature stores, faces, lenders, scorer."""

    decoder: Decoder
    retry: Retry
    state: EngineStateStore  # done markers, claims, funder usage and reservations
    features: FeatureStoreProtocol  # velocity and device state
    faces: FaceChecker
    lenders: LenderCaches  # views, online models, shared LR weights, monitors
    scorer: ApplicationScorer
    pii_key: bytes  # pseudonyms of the applicant's identifiers

    @classmethod
    def of(cls, r: Resources) -> ApplicationDeps:
        """The worker's part for this processor."""
        return cls(r.decoder, r.retry, r.state, r.features, r.faces, r.lenders, r.scorer, r.pii_key)


async def process_applications(
    deps: ApplicationDeps, messages: Sequence[Incoming], now: datetime | None = None
) -> BatchResult:
    """Turn a batch of raw application messages into outputs and bookkeeping."""
    now = now or datetime.now(UTC)
    result = BatchResult()
    valid = _valid_applications(deps, messages, now, result)
    # Velocity recorded and done markers read in one round trip; done ones drop out here.
    fresh, velocities = await _record_fresh(deps, valid)
    if not fresh:
        return result
    applications = [a for _, a in fresh]
    result.occurred_at.update((a["event_id"], a["occurred_at"]) for a in applications)
    tenants = list(dict.fromkeys(a["tenant_id"] for a in applications))
    views = await deps.lenders.lender_views(tenants)
    facts = await _gather_facts(deps, applications, velocities, views, result, now)
    known = await _decision_state(deps, views, applications, facts)
    facts = [
        replace(f, held_funder=known.held_funders.get(a["application_id"]))
        for a, f in zip(applications, facts, strict=True)
    ]
    lenders = await _lender_facts(deps, views, known.funder_used_minor)
    decisions = await _decide_and_reserve(deps, applications, facts, lenders)
    await _emit_decisions(deps, fresh, decisions, known.claims, views, result, now)
    _observe(deps, applications, decisions, views, result, now)
    moved = deps.lenders.moved_lr_adjustments({t: views[t].config for t in tenants})
    if moved:  # an assessment moved the LR weight: every worker should score with it
        result.after_emit.append(partial(deps.lenders.publish_lr_adjustments, moved))
    result.done_event_ids.extend(a["event_id"] for a in applications)
    return result


def _valid_applications(
    deps: ApplicationDeps, messages: Sequence[Incoming], now: datetime, result: BatchResult
) -> list[tuple[Incoming, dict[str, Any]]]:
    """Decoded applications within the contract's ranges (the rest become dead letters)."""
    valid: list[tuple[Incoming, dict[str, Any]]] = []
    for message, application in deps.decoder.decode_all(messages, result.outputs):
        # Decodable but outside the contract's ranges: a dead letter, not a batch failure.
        problem = application_problem(application, now)
        if problem is None:
            valid.append((message, application))
        else:
            result.outputs.append(dead_letter(message, InvalidEvent(problem)))
    return valid


async def _record_fresh(
    deps: ApplicationDeps, valid: list[tuple[Incoming, dict[str, Any]]]
) -> tuple[list[tuple[Incoming, dict[str, Any]]], list[ApplicationVelocity | None]]:
    """The applications not processed before, with their velocity (recorded now).

    Without the feature store nothing is known done: all are processed again (output ids
    are deterministic), with no velocity (-> REVIEW with FEATURES_UNAVAILABLE).
    """
    if not valid:
        return [], []
    keys = [_keys(deps, a) for _, a in valid]
    try:
        recorded = await deps.retry(
            "record_applications", lambda: deps.features.record_new_applications(keys)
        )
    except RedisUnavailable:
        return valid, [None] * len(valid)
    fresh = [(item, v) for item, v in zip(valid, recorded, strict=True) if v is not None]
    return [item for item, _ in fresh], [v for _, v in fresh]


def _keys(deps: ApplicationDeps, application: dict[str, Any]) -> ApplicationKeys:
    applicant = application["applicant"]
    return ApplicationKeys(
        event_id=application["event_id"],
        occurred_at=application["occurred_at"],
        device_ref=pseudonym(application["device_id"], deps.pii_key, "device"),
        id_ref=pseudonym(applicant["id_card_number"], deps.pii_key, "id"),
        phone_ref=pseudonym(applicant["phone"], deps.pii_key, "phone"),
        customer_id=application["customer_id"],
    )


async def _gather_facts(
    deps: ApplicationDeps,
    applications: list[dict[str, Any]],
    velocities: list[ApplicationVelocity | None],
    views: dict[str, LenderView],
    result: BatchResult,
    now: datetime,
) -> list[ApplicationFacts]:
    """The face check next to the velocity (a blacklist match raises an alert)."""
    thresholds: list[float | None] = [
        views[a["tenant_id"]].config.face_match_threshold for a in applications
    ]
    faces = await _check_faces(deps, applications, thresholds)
    for application, face in zip(applications, faces, strict=True):
        if face is not None and face.blacklist_entry_id is not None:
            result.outputs.append(
                Outgoing(
                    topics.FRAUD_ALERTS.name,
                    application["customer_id"],
                    _blacklist_alert(application, face, now),
                )
            )
    return [ApplicationFacts(v, f) for v, f in zip(velocities, faces, strict=True)]


async def _check_faces(
    deps: ApplicationDeps, applications: list[dict[str, Any]], thresholds: list[float | None]
) -> list[FaceOutcome | None]:
    try:
        return await deps.faces.check(applications, thresholds)
    except (RedisError, OSError):
        # Without the blacklist the face cannot be cleared: review, do not guess.
        unavailable = FaceOutcome(
            None, frozenset({HardFlag.FACE_UNVERIFIED}), ("FACE_BLACKLIST_UNAVAILABLE",)
        )
        return [unavailable if a.get("face_image") else None for a in applications]


def _blacklist_alert(
    application: dict[str, Any], face: FaceOutcome, now: datetime
) -> dict[str, Any]:
    similarity = min(1.0, max(0.0, face.similarity or 0.0))
    hit = HardFlag.FACE_BLACKLIST_HIT in face.flags
    code = "FACE_BLACKLIST_HIT" if hit else "FACE_BLACKLIST_NEAR_MISS"
    return fraud_alert_record(
        "FACE",
        application,
        similarity,
        [(code, similarity)],
        now,
        # A near miss is its own case (review with the similarity), never a decline.
        kind="face-alert" if hit else "face-near-miss",
        customer_id=application["customer_id"],
        blacklist_entry_id=face.blacklist_entry_id,
    )


async def _decision_state(
    deps: ApplicationDeps,
    views: dict[str, LenderView],
    applications: list[dict[str, Any]],
    facts: list[ApplicationFacts],
) -> DecisionState:
    """Earlier claims and reservations of the batch and its funders' usage, in one read.

    Read before deciding: a redelivered application keeps the funder it holds (its amount
    is in the usage already, so it must not be routed again against it) and the
    disbursement it claimed. Without velocity (feature store down) nothing can be
    approved, so no funder is routed: its lender's usage need not be read.
    """
    routable = [a["tenant_id"] for a, f in zip(applications, facts, strict=True) if f.velocity]
    funders = _funders_of(views, routable)
    ids = [a["application_id"] for a in applications]
    try:
        return await deps.retry("decision_state", lambda: deps.state.decision_state(ids, funders))
    except RedisUnavailable:
        if routable:
            raise  # it answered for the features a moment ago: wait for it (the runtime)
        # Scored blind, nothing can be approved: no claim or funder to honour. (An earlier
        # delivery's pending claim is honoured by the next delivery that can read it.)
        return DecisionState({}, {}, {})


async def _lender_facts(
    deps: ApplicationDeps, views: dict[str, LenderView], used: dict[str, dict[str, int]]
) -> dict[str, LenderFacts]:
    """Per lender: view, online model, shared LR weight and its funders' used capacity."""
    tenants = list(views)
    models = await deps.lenders.models(APPLICATION_LR, tenants)
    shared = await deps.lenders.lr_weight_adjustments({t: views[t].config for t in tenants})
    return {t: LenderFacts(views[t], models[t], shared[t], used.get(t, {})) for t in tenants}


def _funders_of(views: dict[str, LenderView], tenants: Iterable[str]) -> dict[str, list[str]]:
    """Funder ids per lender, for the lenders among `tenants` that have funders."""
    return {
        t: [f.funder_id for f in views[t].funders]
        for t in dict.fromkeys(tenants)
        if views[t].funders
    }


async def _funder_usage(
    deps: ApplicationDeps, views: dict[str, LenderView], tenants: Iterable[str]
) -> dict[str, dict[str, int]]:
    """Used capacity of these lenders' funders, in one read (lenders without funders: none)."""
    wanted = _funders_of(views, tenants)
    if not wanted:
        return {}
    return await deps.retry("funder_usages", lambda: deps.state.funder_usages(wanted))


async def _decide_and_reserve(
    deps: ApplicationDeps,
    applications: list[dict[str, Any]],
    facts: list[ApplicationFacts],
    lenders: dict[str, LenderFacts],
) -> list[Decision]:
    """Decide the batch, then reserve each routed funder's capacity in the store.

    decide routes with the usage read before it. When another worker filled a funder since
    (the reservation returns None), those applications are decided again on a fresh read;
    when an earlier delivery already holds a funder (a different one comes back), they are
    decided again holding it. Each retry is decided against more capacity known to be used,
    so after a few rounds only applications whose every funder is full remain: the last
    round treats their lenders' funders as full (a person decides, nothing is disbursed).
    """
    decisions = decide(applications, facts, lenders, deps.scorer)
    pending = list(range(len(applications)))
    rounds = 1 + max((len(lender.view.funders) for lender in lenders.values()), default=0)
    attempt = 0
    while True:
        pending = await _reserve(deps, applications, facts, decisions, lenders, pending)
        if not pending:
            return decisions
        tenants = {applications[i]["tenant_id"] for i in pending}
        # With every funder full, the next reservation round has nothing left to reserve.
        lenders = await _reread_usage(deps, lenders, tenants, full=attempt >= rounds)
        again = decide(
            [applications[i] for i in pending], [facts[i] for i in pending], lenders, deps.scorer
        )
        for i, decision in zip(pending, again, strict=True):
            decisions[i] = decision
        attempt += 1


async def _reserve(
    deps: ApplicationDeps,
    applications: list[dict[str, Any]],
    facts: list[ApplicationFacts],
    decisions: list[Decision],
    lenders: dict[str, LenderFacts],
    indices: list[int],
) -> list[int]:
    """Reserve the routed funders in one call; the indices to decide again (facts updated)."""
    wanted = []
    for i in indices:
        funder_id = decisions[i].funder_id
        if funder_id is None or funder_id == facts[i].held_funder:
            continue  # nothing to fund, or held already
        application = applications[i]
        tenant = application["tenant_id"]
        funder = next(f for f in lenders[tenant].view.funders if f.funder_id == funder_id)
        request = FundingRequest(
            tenant,
            funder_id,
            application["application_id"],
            application["requested_amount_minor"],
            funder.capacity_minor,
        )
        wanted.append((i, request))
    if not wanted:
        return []
    held = await deps.retry(
        "reserve_fundings",
        partial(deps.state.reserve_fundings, [request for _, request in wanted]),
    )
    again = []
    for (i, request), funder_id in zip(wanted, held, strict=True):
        if funder_id is not None:
            facts[i] = replace(facts[i], held_funder=funder_id)
        if funder_id != request.funder_id:  # filled by another worker, or held already
            again.append(i)
    return again


async def _reread_usage(
    deps: ApplicationDeps, lenders: dict[str, LenderFacts], tenants: set[str], full: bool
) -> dict[str, LenderFacts]:
    if full:
        usage = {
            t: {f.funder_id: f.capacity_minor for f in lenders[t].view.funders} for t in tenants
        }
    else:
        usage = await _funder_usage(deps, {t: lenders[t].view for t in tenants}, tenants)
    return {
        t: replace(lender, funder_used_minor=usage[t]) if t in usage else lender
        for t, lender in lenders.items()
    }


async def _emit_decisions(
    deps: ApplicationDeps,
    fresh: list[tuple[Incoming, dict[str, Any]]],
    decisions: list[Decision],
    claims: dict[str, DisbursementClaim],
    views: dict[str, LenderView],
    result: BatchResult,
    now: datetime,
) -> None:
    """Append decisions, reviews and disbursements, and the loans to open once they are out.

    RedisUnavailable propagates if the claim fails: without it exactly-one cannot be
    promised, and the runtime re-runs the batch once Redis answers.
    """
    applications = [a for _, a in fresh]
    records = [
        decision_record(a, d.scored, deps.pii_key, now)
        for a, d in zip(applications, decisions, strict=True)
    ]
    disbursements = {
        i: disbursement_record(applications[i], d.terms, records[i]["event_id"])
        for i, d in enumerate(decisions)
        if d.terms is not None
    }
    await _claim(deps, applications, records, disbursements, claims)
    for i, (message, application) in enumerate(fresh):
        sealed = Outgoing(
            topics.DECISIONS.name, application["customer_id"], records[i], message.partition
        )
        result.outputs.append(sealed)
        if records[i]["decision"] == "REVIEW":
            result.outputs.append(
                Outgoing(
                    topics.REVIEWS.name, application["customer_id"], records[i], same_as=sealed
                )
            )
        record = disbursements.get(i)
        if record is None:
            continue
        result.outputs.append(
            Outgoing(
                topics.DISBURSEMENTS.name, application["customer_id"], record, message.partition
            )
        )
        tenant = record["tenant_id"]
        result.opened_loans.append(loan_opening(record, views[tenant].delinquency))
        result.disbursed.append(disbursed_marker(record))


async def _claim(
    deps: ApplicationDeps,
    applications: list[dict[str, Any]],
    records: list[dict[str, Any]],
    disbursements: dict[int, dict[str, Any]],
    known: dict[str, DisbursementClaim],
) -> None:
    """Claim new disbursements; apply earlier claims (updates records and disbursements).

    A sent disbursement is not sent again. A pending one (an earlier delivery claimed it
    and may have sent it) is sent again exactly as claimed, with the decision it came
    with, even where this delivery decided otherwise: its loan must open either way.
    """
    claims = {
        i: known[a["application_id"]]
        for i, a in enumerate(applications)
        if a["application_id"] in known
    }
    new = [i for i in disbursements if i not in claims]
    wanted = [
        (
            applications[i]["application_id"],
            disbursements[i]["event_id"],
            claim_payload(records[i], disbursements[i]),
        )
        for i in new
    ]
    if wanted:
        made = await deps.retry(
            "claim_disbursements", lambda: deps.state.claim_disbursements(wanted)
        )
        claims.update(zip(new, made, strict=True))
    for i, claim in claims.items():
        if claim.state == "sent":
            disbursements.pop(i, None)
        elif claim.state == "pending" and claim.payload is not None:
            records[i], disbursements[i] = claimed_records(claim.payload)


def _observe(
    deps: ApplicationDeps,
    applications: list[dict[str, Any]],
    decisions: list[Decision],
    views: dict[str, LenderView],
    result: BatchResult,
    now: datetime,
) -> None:
    """Model monitoring on the scores, and what the learner needs once labels arrive."""
    for application, decision in zip(applications, decisions, strict=True):
        tenant, item = application["tenant_id"], decision.scored
        monitor = deps.lenders.monitor(tenant, views[tenant].config)
        for health in observe_scores(monitor, item.bp_default_probability, item.lr_risk, now):
            result.outputs.append(
                Outgoing(
                    topics.MODEL_HEALTH.name, tenant, model_health_record(health, tenant, "worker")
                )
            )
        result.scored[application["event_id"]] = {
            "kind": "application",
            "tenant_id": tenant,
            "features": item.features,
            "risk": item.lr_risk,
            "bp_prob": item.bp_default_probability,
            "scored_at": now.isoformat(),
        }


def register(app: Any, topics_by_name: dict[str, Any], runtime: Any) -> None:
    """Attach the applications agent to the Faust app."""
    runtime.attach(
        app,
        topics_by_name[topics.LOAN_APPLICATIONS.name],
        "applications",
        process_applications,
        ApplicationDeps.of,
        pipelined=True,
    )
