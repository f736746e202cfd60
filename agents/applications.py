"""Loan applications -> features -> scoring -> decision (+ review, + disbursement).

Decisions and disbursements go to the partition number the application came from, so
exactly one worker writes each audited partition and its hash chain stays linear.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from greencredit.infra.feature_store import ApplicationKeys
from greencredit.models.features import (
    ApplicationVelocity,
    DeviceRule,
    application_velocity_risk,
    device_risk,
    device_rules,
)
from greencredit.models.fusion import HardFlag
from greencredit.models.monitoring import observe_scores
from greencredit.models.pricing import loan_schedule, price_loan
from greencredit.models.scoring import GREEN_PURPOSES, ApplicationContext, ScoredApplication
from greencredit.streams.masking import mask_card, pseudonym
from greencredit.streams.records import decision_record, model_health_record, output_event_id

from .batch import BatchResult
from .engine import APPLICATION_LR, Engine, Incoming, Outgoing, RedisUnavailable

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
    return ApplicationContext(
        device_risk=device_risk(state, occurred_at),
        velocity_risk=application_velocity_risk(velocity),
        flags=frozenset(flags),
        features={k: float(v) for k, v in features.items()},
    )


def _every_check_passed(scored: ScoredApplication) -> bool:
    return (
        scored.result.decision == "APPROVE"
        and not scored.result.forced_by
        and not scored.rule_codes
    )


def _disbursement(
    application: dict[str, Any], scored: ScoredApplication, decision_id: str, now: datetime
) -> dict[str, Any]:
    green = application["purpose"] in GREEN_PURPOSES
    price = price_loan(scored.result.score, green)
    schedule = loan_schedule(
        application["requested_amount_minor"],
        price.annual_rate_bps,
        application["term_months"],
        now.date(),
    )
    return {
        "event_id": output_event_id("disbursement", application["event_id"]),
        "tenant_id": application["tenant_id"],
        "occurred_at": now,
        "schema_version": 1,
        "loan_id": f"loan-{application['application_id']}",
        "application_id": application["application_id"],
        "customer_id": application["customer_id"],
        "decision_event_id": decision_id,
        "amount_minor": application["requested_amount_minor"],
        "currency": application["currency"],
        "term_months": application["term_months"],
        "annual_rate_bps": price.annual_rate_bps,
        "rate_discount_bps": price.rate_discount_bps,
        "purpose": application["purpose"],
        "destination_account_masked": mask_card(application["applicant"]["bank_card_number"]),
        "schedule": [
            {"number": i.number, "due_date": i.due_date, "amount_due_minor": i.amount_due_minor}
            for i in schedule
        ],
        "funder_id": None,
        "co2e_avoided_kg": None,
    }


async def process_applications(
    engine: Engine, messages: Sequence[Incoming], now: datetime | None = None
) -> BatchResult:
    """Turn a batch of raw application messages into outputs and bookkeeping."""
    now = now or datetime.now(UTC)
    result = BatchResult()
    decoded = engine.decode_all(messages, result.outputs)
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
    models = await engine.models(APPLICATION_LR, tenants)
    adjustments = [engine.monitor(t, configs[t]).lr_weight_adjustment for t in tenants]
    scored = engine.scorer.score_batch(
        applications,
        contexts,
        [configs[t] for t in tenants],
        [models[t] for t in tenants],
        adjustments,
    )
    held = await _emit_decisions(engine, fresh, scored, result, now)
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
    result.done_event_ids.extend(a["event_id"] for a in applications if a["event_id"] not in held)
    return result


async def _emit_decisions(
    engine: Engine,
    fresh: list[tuple[Incoming, dict[str, Any]]],
    scored: list[ScoredApplication],
    result: BatchResult,
    now: datetime,
) -> set[str]:
    """Append decisions, reviews and disbursements; return event ids whose disbursement is held."""
    approvals = []
    for (message, application), item in zip(fresh, scored, strict=True):
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
            approvals.append((message, application, item, record["event_id"]))
    if not approvals:
        return set()
    claims_wanted = [
        (a["application_id"], output_event_id("disbursement", a["event_id"]))
        for _, a, _, _ in approvals
    ]
    try:
        claims = await engine.with_retry(
            "claim_disbursements", lambda: engine.store.claim_disbursements(claims_wanted)
        )
    except RedisUnavailable:
        # Without the claim we cannot promise exactly one disbursement: hold them. The input
        # is not marked done, so a redelivery after Redis recovers disburses.
        log.error("disbursements held: redis unavailable")
        return {a["event_id"] for _, a, _, _ in approvals}
    for (message, application, item, decision_id), claim in zip(approvals, claims, strict=True):
        if claim.state == "sent":
            continue
        record = _disbursement(application, item, decision_id, now)
        result.outputs.append(
            Outgoing(
                "greencredit.disbursements", application["customer_id"], record, message.partition
            )
        )
        result.disbursed.append((application["application_id"], record["event_id"]))
    return set()


def register(app: Any, topics: dict[str, Any], runtime: Any) -> None:
    """Attach the applications agent to the Faust app."""

    @app.agent(topics["greencredit.loan-applications"], name="applications")
    async def applications_agent(stream: Any) -> None:
        await runtime.run(stream, process_applications)
