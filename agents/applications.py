"""Loan applications -> features -> scoring -> decision (+ review, + disbursement).

Decisions and disbursements go to the partition number the application came from, so
exactly one worker writes each audited partition and its hash chain stays linear.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from redis.exceptions import RedisError

from greencredit.infra.feature_store import ApplicationKeys
from greencredit.models.application_checks import application_problem
from greencredit.models.features import (
    VELOCITY_BURST_AT,
    ApplicationVelocity,
    DeviceRule,
    application_velocity_risk,
    device_risk,
    device_rules,
)
from greencredit.models.fusion import HardFlag
from greencredit.models.green import (
    Funder,
    GreenPricing,
    approve_below_for,
    co2e_avoided_kg,
    default_taxonomy,
    price,
    route_to_funder,
)
from greencredit.models.monitoring import observe_scores
from greencredit.models.pricing import loan_schedule
from greencredit.models.scoring import ApplicationContext, ScoredApplication
from greencredit.streams.errors import InvalidEvent
from greencredit.streams.masking import mask_card, pseudonym
from greencredit.streams.records import decision_record, model_health_record, output_event_id

from .batch import BatchResult
from .engine import APPLICATION_LR, Engine, Incoming, LenderExtensions, Outgoing, RedisUnavailable
from .face_check import FaceOutcome
from .transactions import fraud_alert_record

__all__ = ["process_applications"]

log = logging.getLogger(__name__)
# Device findings that must not be approved automatically (a person should look).
_BLOCKING_DEVICE_RULES = {
    DeviceRule.DEVICE_FARM: HardFlag.DEVICE_FARM,
    DeviceRule.EMULATOR: HardFlag.RISKY_DEVICE,
    DeviceRule.ROOTED_WITH_VPN: HardFlag.RISKY_DEVICE,
}


def _keys(engine: Engine, application: dict[str, Any]) -> ApplicationKeys:
    applicant = application["applicant"]
    return ApplicationKeys(
        event_id=application["event_id"],
        occurred_at=application["occurred_at"],
        device_ref=pseudonym(application["device_id"], engine.pii_key, "device"),
        id_ref=pseudonym(applicant["id_card_number"], engine.pii_key, "id"),
        phone_ref=pseudonym(applicant["phone"], engine.pii_key, "phone"),
        customer_id=application["customer_id"],
    )


def _context(velocity: ApplicationVelocity | None, occurred_at: datetime) -> ApplicationContext:
    if velocity is None:
        return ApplicationContext(flags=frozenset({HardFlag.FEATURES_UNAVAILABLE}))
    state = velocity.device_state
    rules = device_rules(state, occurred_at)
    flags = {_BLOCKING_DEVICE_RULES[r] for r in rules if r in _BLOCKING_DEVICE_RULES}
    features = {
        "apps_per_device_1h": velocity.device.last_1h,
        "apps_per_device_24h": velocity.device.last_24h,
        "apps_per_device_7d": velocity.device.last_7d or 0,
        "apps_per_id_24h": velocity.id_number.last_24h,
        "apps_per_phone_24h": velocity.phone.last_24h,
        "identities_per_device_30d": state.distinct_identities_30d,
    }
    velocity_risk = application_velocity_risk(velocity)
    if velocity_risk >= VELOCITY_BURST_AT:
        flags.add(HardFlag.VELOCITY_BURST)
    return ApplicationContext(
        device_risk=device_risk(state, occurred_at),
        velocity_risk=velocity_risk,
        flags=frozenset(flags),
        features={k: float(v) for k, v in features.items()},
    )


async def _check_faces(
    engine: Engine, applications: list[dict[str, Any]], thresholds: list[float | None]
) -> list[FaceOutcome | None]:
    try:
        return await engine.faces.check(applications, thresholds)
    except (RedisError, OSError):
        # Without the blacklist the face cannot be cleared: review, do not guess.
        unavailable = FaceOutcome(
            None, frozenset({HardFlag.FACE_UNVERIFIED}), ("FACE_BLACKLIST_UNAVAILABLE",)
        )
        return [unavailable if a.get("face_image") else None for a in applications]


def _with_face(context: ApplicationContext, face: FaceOutcome | None) -> ApplicationContext:
    if face is None:
        return context
    return replace(
        context,
        face_risk=face.face_risk,
        flags=context.flags | face.flags,
        codes=context.codes + face.codes,
    )


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


def _every_check_passed(scored: ScoredApplication) -> bool:
    return (
        scored.result.decision == "APPROVE"
        and not scored.result.forced_by
        and not scored.rule_codes
    )


def _disbursement(
    application: dict[str, Any],
    scored: ScoredApplication,
    decision_id: str,
    pricing: GreenPricing,
    funder_id: str | None,
) -> dict[str, Any]:
    taxonomy = default_taxonomy()
    annual_rate_bps, discount_bps = price(
        pricing, scored.result.score, application["purpose"], taxonomy
    )
    # The loan starts on the application's business date, not the processing date: a
    # redelivery or a replay after an outage then yields the same schedule.
    schedule = loan_schedule(
        application["requested_amount_minor"],
        annual_rate_bps,
        application["term_months"],
        application["occurred_at"].astimezone(UTC).date(),
    )
    return {
        "event_id": output_event_id("disbursement", application["event_id"]),
        "tenant_id": application["tenant_id"],
        # The loan's business time (its schedule and opening date follow it), not the
        # processing time: in production the two are seconds apart, and a replay after an
        # outage must open the loan on the day it was applied for.
        "occurred_at": application["occurred_at"],
        "schema_version": 1,
        "loan_id": f"loan-{application['application_id']}",
        "application_id": application["application_id"],
        "customer_id": application["customer_id"],
        "decision_event_id": decision_id,
        "amount_minor": application["requested_amount_minor"],
        "currency": application["currency"],
        "term_months": application["term_months"],
        "annual_rate_bps": annual_rate_bps,
        "rate_discount_bps": discount_bps,
        "purpose": application["purpose"],
        "destination_account_masked": mask_card(application["applicant"]["bank_card_number"]),
        "schedule": [
            {"number": i.number, "due_date": i.due_date, "amount_due_minor": i.amount_due_minor}
            for i in schedule
        ],
        "funder_id": funder_id,
        # None until the taxonomy carries a verified factor for the purpose (see its file).
        "co2e_avoided_kg": co2e_avoided_kg(
            taxonomy,
            application["purpose"],
            application["requested_amount_minor"],
            application["currency"],
            application.get("appliance_efficiency_grade"),
        ),
    }


async def process_applications(
    engine: Engine, messages: Sequence[Incoming], now: datetime | None = None
) -> BatchResult:
    """Turn a batch of raw application messages into outputs and bookkeeping."""
    now = now or datetime.now(UTC)
    result = BatchResult()
    decoded: list[tuple[Incoming, dict[str, Any]]] = []
    for message, application in engine.decode_all(messages, result.outputs):
        # Decodable but outside the contract's ranges: a dead letter, not a batch failure.
        problem = application_problem(application, now)
        if problem is None:
            decoded.append((message, application))
        else:
            result.outputs.append(engine.dead_letter(message, InvalidEvent(problem)))
    if not decoded:
        return result
    ids = [app["event_id"] for _, app in decoded]
    try:
        done = await engine.with_retry("done_among", lambda: engine.store.done_among(ids))
    except RedisUnavailable:
        done = set()  # process again: output ids are deterministic
    fresh = [(m, a) for m, a in decoded if a["event_id"] not in done]
    if not fresh:
        return result
    applications = [a for _, a in fresh]
    result.occurred_at.update((a["event_id"], a["occurred_at"]) for a in applications)
    try:
        keys = [_keys(engine, a) for a in applications]
        velocities: list[ApplicationVelocity | None] = list(
            await engine.with_retry(
                "record_applications", lambda: engine.features.record_applications(keys)
            )
        )
    except RedisUnavailable:
        velocities = [None] * len(applications)  # -> REVIEW with FEATURES_UNAVAILABLE
    contexts = [
        _context(v, a["occurred_at"]) for v, a in zip(velocities, applications, strict=True)
    ]
    tenants = [a["tenant_id"] for a in applications]
    configs = await engine.lender_configs(tenants)
    faces = await _check_faces(
        engine, applications, [configs[t].face_match_threshold for t in tenants]
    )
    contexts = [_with_face(c, f) for c, f in zip(contexts, faces, strict=True)]
    for application, face in zip(applications, faces, strict=True):
        if face is not None and face.blacklist_entry_id is not None:
            result.outputs.append(
                Outgoing(
                    "greencredit.fraud-alerts",
                    application["customer_id"],
                    _blacklist_alert(application, face, now),
                )
            )
    extensions = await engine.lender_extensions(tenants)
    models = await engine.models(APPLICATION_LR, tenants)
    shared = await engine.lr_weight_adjustments({t: configs[t] for t in tenants})
    adjustments = [shared[t] for t in tenants]
    thresholds: list[float | None] = [
        approve_below_for(
            extensions[t].pricing,
            configs[t].approve_below,
            a["purpose"],
            default_taxonomy(),
            decline_at_or_above=configs[t].decline_at_or_above,
        )
        for a, t in zip(applications, tenants, strict=True)
    ]

    def score(batch_contexts: list[ApplicationContext]) -> list[ScoredApplication]:
        return engine.scorer.score_batch(
            applications,
            batch_contexts,
            [configs[t] for t in tenants],
            [models[t] for t in tenants],
            adjustments,
            thresholds,
        )

    scored = score(contexts)
    funders = await _fund(engine, applications, scored, extensions)
    unfunded = {i for i, f in enumerate(funders) if f is _NO_FUNDER}
    if unfunded:
        # No partner can take these loans: a person decides (seed 3.2), nothing is disbursed.
        contexts = [
            replace(c, flags=c.flags | {HardFlag.FUNDING_UNAVAILABLE}) if i in unfunded else c
            for i, c in enumerate(contexts)
        ]
        scored = score(contexts)
    await _emit_decisions(engine, fresh, scored, result, now, extensions, funders)
    for application, item in zip(applications, scored, strict=True):
        tenant = application["tenant_id"]
        for health in observe_scores(
            engine.monitor(tenant, configs[tenant]), item.bp_default_probability, item.lr_risk, now
        ):
            result.outputs.append(
                Outgoing(
                    "greencredit.model-health",
                    tenant,
                    model_health_record(health, tenant, "worker"),
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
    moved = engine.moved_lr_adjustments({t: configs[t] for t in shared})
    if moved:  # an assessment moved the LR weight: every worker should score with it
        result.after_emit.append(partial(engine.publish_lr_adjustments, moved))
    result.done_event_ids.extend(a["event_id"] for a in applications)
    return result


_NO_FUNDER = "<none>"


async def _fund(
    engine: Engine,
    applications: list[dict[str, Any]],
    scored: list[ScoredApplication],
    extensions: dict[str, LenderExtensions],
) -> list[str | None]:
    """Reserve a funder's capacity for each approval whose lender has funders.

    None: the lender funds its loans itself (no funders configured) or not approved;
    _NO_FUNDER: funders are configured and none can take the loan.
    """
    out: list[str | None] = []
    for application, item in zip(applications, scored, strict=True):
        funders = extensions[application["tenant_id"]].funders
        if not funders or not _every_check_passed(item):
            out.append(None)
            continue
        out.append(await _reserve(engine, application, item, funders) or _NO_FUNDER)
    return out


async def _reserve(
    engine: Engine,
    application: dict[str, Any],
    item: ScoredApplication,
    funders: tuple[Funder, ...],
) -> str | None:
    tenant, amount = application["tenant_id"], application["requested_amount_minor"]
    candidates = list(funders)
    while candidates:
        used = await engine.with_retry(
            "funder_usage",
            partial(engine.store.funder_usage, tenant, [f.funder_id for f in candidates]),
        )
        chosen = route_to_funder(
            candidates, used, amount, item.result.score, application["purpose"], default_taxonomy()
        )
        if chosen is None:
            return None
        funder = next(f for f in candidates if f.funder_id == chosen)
        held = await engine.with_retry(
            "reserve_funding",
            partial(
                engine.store.reserve_funding,
                tenant,
                chosen,
                application["application_id"],
                amount,
                funder.capacity_minor,
            ),
        )
        if held is not None:
            return held
        candidates.remove(funder)  # filled up meanwhile by another worker: next one
    return None


async def _emit_decisions(
    engine: Engine,
    fresh: list[tuple[Incoming, dict[str, Any]]],
    scored: list[ScoredApplication],
    result: BatchResult,
    now: datetime,
    extensions: dict[str, LenderExtensions],
    funders: list[str | None],
) -> None:
    """Append decisions, reviews and disbursements (RedisUnavailable if the claim fails)."""
    approvals = []
    for index, ((message, application), item) in enumerate(zip(fresh, scored, strict=True)):
        record = decision_record(application, item, engine.pii_key, now)
        decision = Outgoing(
            "greencredit.decisions", application["customer_id"], record, message.partition
        )
        result.outputs.append(decision)
        if item.result.decision == "REVIEW":
            result.outputs.append(
                Outgoing(
                    "greencredit.reviews", application["customer_id"], record, same_as=decision
                )
            )
        if _every_check_passed(item):
            approvals.append((message, application, item, record["event_id"], funders[index]))
    if not approvals:
        return
    claims_wanted = [
        (a["application_id"], output_event_id("disbursement", a["event_id"]))
        for _, a, _, _, _ in approvals
    ]
    # Without the claim exactly-one cannot be promised: RedisUnavailable propagates and the
    # runtime re-runs the batch once Redis answers (nothing emitted, nothing marked done).
    claims = await engine.with_retry(
        "claim_disbursements", lambda: engine.store.claim_disbursements(claims_wanted)
    )
    for (message, application, item, decision_id, funder), claim in zip(
        approvals, claims, strict=True
    ):
        if claim.state == "sent":
            continue
        pricing = extensions[application["tenant_id"]].pricing
        record = _disbursement(application, item, decision_id, pricing, funder)
        result.after_emit.append(partial(engine.store.start_purpose_watch, record))
        result.outputs.append(
            Outgoing(
                "greencredit.disbursements", application["customer_id"], record, message.partition
            )
        )
        result.disbursed.append((application["application_id"], record["event_id"]))


def register(app: Any, topics: dict[str, Any], runtime: Any) -> None:
    """Attach the applications agent to the Faust app."""
    runtime.attach(
        app, topics["greencredit.loan-applications"], "applications", process_applications
    )
