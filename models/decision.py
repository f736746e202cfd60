"""The application decision: one pure function from a batch and its facts to every outcome.

:func:`decide` takes a batch of validated applications, what was gathered for each one
(velocity and device state from the feature store, the face check), and per lender the
parsed configuration, the online model, the shared LR weight adjustment and the funders'
used capacity. It returns, per application, the scored outcome with its reasons, the
approval threshold that applied (raised for green purposes), the funder that takes the loan
(or the review when none can), and the disbursement terms: rate, discount, schedule, CO2e.

No I/O: the worker gathers the facts, calls this once per batch and emits what it returns;
``greencredit score`` calls it on files, and a recorded decision carries what it needs to
be decided again (:func:`replay_facts`). The scoring inside is columnar (numpy arrays per
batch, one vectorised fusion per lender policy); the rest is a few lines per approval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from .features import (
    VELOCITY_BURST_AT,
    ApplicationVelocity,
    DeviceRule,
    application_velocity_risk,
    application_velocity_risks,
    device_rules,
    risk_of_device_rules,
)
from .fusion import INDICATORS, NO_INDICATORS, HardFlag
from .green import GreenTaxonomy, co2e_avoided_kg, default_taxonomy, price, route_to_funder
from .lender_view import LenderView
from .online_lr import OnlineRiskModel
from .pricing import Instalment, loan_schedule
from .scoring import (
    CONTEXT_FEATURES,
    IDENTITY_RULE_CODES,
    ApplicationContext,
    ApplicationScorer,
    ScoredApplication,
)

__all__ = [
    "BLOCKING_DEVICE_RULES",
    "ApplicationFacts",
    "Decision",
    "DisbursementTerms",
    "FaceFacts",
    "GivenFacts",
    "LenderFacts",
    "application_context",
    "decide",
    "disbursement_terms",
    "every_check_passed",
    "replay_facts",
]

# Device findings that must not be approved automatically (a person should look).
BLOCKING_DEVICE_RULES: Mapping[DeviceRule, HardFlag] = {
    DeviceRule.DEVICE_FARM: HardFlag.DEVICE_FARM,
    DeviceRule.EMULATOR: HardFlag.RISKY_DEVICE,
    DeviceRule.ROOTED_WITH_VPN: HardFlag.RISKY_DEVICE,
}
# Indicators that come from outside the application event (the context), by the name
# ApplicationContext gives them; identity_risk is replayed as the context's signals risk.
_CONTEXT_INDICATORS = ("device_risk", "velocity_risk", "behaviour_risk", "face_risk")
_FUSION_CODES = frozenset(
    {NO_INDICATORS, *(f.value for f in HardFlag)}
    | {name.upper() for name in INDICATORS}
    | {f"{name.upper()}_NOT_PROVIDED" for name in INDICATORS}
)


class FaceFacts(Protocol):
    """What the face check found about one application (no image, no embedding)."""

    @property
    def face_risk(self) -> float | None: ...

    @property
    def flags(self) -> frozenset[HardFlag]: ...

    @property
    def codes(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class ApplicationFacts:
    """What the worker gathered about one application online.

    ``velocity`` None: the feature store did not answer (the decision goes to review).
    ``held_funder``: the funder a previous delivery of this application already reserved.
    """

    velocity: ApplicationVelocity | None
    face: FaceFacts | None = None
    held_funder: str | None = None


@dataclass(frozen=True)
class GivenFacts:
    """A context supplied as it is: an offline backtest, or the replay of a recorded decision.

    ``approve_below`` and ``lr_weight_adjustment`` None: as the worker would set them
    (the lender's threshold with the green bonus; the lender's shared adjustment).
    Funding is not routed again: a recorded FUNDING_UNAVAILABLE arrives as a flag.
    """

    context: ApplicationContext = field(default_factory=ApplicationContext)
    approve_below: float | None = None
    lr_weight_adjustment: float | None = None


@dataclass(frozen=True)
class LenderFacts:
    """Per lender: its configuration, online model, shared LR weight and funders' usage."""

    view: LenderView
    lr_model: OnlineRiskModel
    lr_weight_adjustment: float = 0.0
    funder_used_minor: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DisbursementTerms:
    """The loan an approval opens: price, schedule, funder and the CO2e it avoids."""

    annual_rate_bps: int
    rate_discount_bps: int
    schedule: tuple[Instalment, ...]
    funder_id: str | None
    co2e_avoided_kg: float | None


@dataclass(frozen=True)
class Decision:
    """The outcome for one application, with everything its records need."""

    scored: ScoredApplication
    context: ApplicationContext
    funder_id: str | None = None  # None: not approved, or the lender funds its loans itself
    terms: DisbursementTerms | None = None  # set when every check passed: a loan to open

    @property
    def outcome(self) -> str:
        """APPROVE, REVIEW or DECLINE."""
        return self.scored.result.decision


def every_check_passed(scored: ScoredApplication) -> bool:
    """Approved by the score with no hard flag and no identity rule: a loan may open."""
    return (
        scored.result.decision == "APPROVE"
        and not scored.result.forced_by
        and not scored.rule_codes
    )


def application_context(
    velocity: ApplicationVelocity | None,
    occurred_at: datetime,
    face: FaceFacts | None = None,
    velocity_risk: float | None = None,
) -> ApplicationContext:
    """Indicators, hard flags and recorded features from the gathered facts.

    ``velocity_risk``: :func:`application_velocity_risk` of ``velocity`` when the caller
    computed it already (:func:`decide` does, for the whole batch at once).
    """
    if velocity is None:
        context = ApplicationContext(flags=frozenset({HardFlag.FEATURES_UNAVAILABLE}))
    else:
        if velocity_risk is None:
            velocity_risk = application_velocity_risk(velocity)
        context = _velocity_context(velocity, occurred_at, velocity_risk)
    if face is None:
        return context
    return replace(
        context,
        face_risk=face.face_risk,
        flags=context.flags | face.flags,
        codes=context.codes + face.codes,
    )


def _velocity_context(
    velocity: ApplicationVelocity, occurred_at: datetime, velocity_risk: float
) -> ApplicationContext:
    state = velocity.device_state
    rules = device_rules(state, occurred_at)  # once: the device risk follows from them
    flags = (
        {BLOCKING_DEVICE_RULES[r] for r in rules if r in BLOCKING_DEVICE_RULES} if rules else set()
    )
    if velocity_risk >= VELOCITY_BURST_AT:
        flags.add(HardFlag.VELOCITY_BURST)
    device = velocity.device
    return ApplicationContext(
        device_risk=risk_of_device_rules(rules),
        velocity_risk=velocity_risk,
        flags=frozenset(flags),
        features={
            "apps_per_device_1h": float(device.last_1h),
            "apps_per_device_24h": float(device.last_24h),
            "apps_per_device_7d": float(device.last_7d or 0),
            "apps_per_id_24h": float(velocity.id_number.last_24h),
            "apps_per_phone_24h": float(velocity.phone.last_24h),
            "identities_per_device_30d": float(state.distinct_identities_30d),
        },
    )


def _contexts(
    applications: Sequence[Mapping[str, Any]], facts: Sequence[ApplicationFacts | GivenFacts]
) -> list[ApplicationContext]:
    """The context of every application; the velocity risks as one column of the batch."""
    gathered = [
        i for i, f in enumerate(facts) if isinstance(f, ApplicationFacts) and f.velocity is not None
    ]
    risks = application_velocity_risks(
        [cast(ApplicationVelocity, cast(ApplicationFacts, facts[i]).velocity) for i in gathered]
    )
    risk_of = dict(zip(gathered, risks, strict=True))
    return [
        fact.context
        if isinstance(fact, GivenFacts)
        else application_context(
            fact.velocity, application["occurred_at"], fact.face, risk_of.get(i)
        )
        for i, (application, fact) in enumerate(zip(applications, facts, strict=True))
    ]


def decide(
    applications: Sequence[Mapping[str, Any]],
    facts: Sequence[ApplicationFacts | GivenFacts],
    lenders: Mapping[str, LenderFacts],
    scorer: ApplicationScorer,
    taxonomy: GreenTaxonomy | None = None,
) -> list[Decision]:
    """Decide a batch; element i of ``facts`` belongs to application i.

    Approvals of a lender with funders are routed in batch order, each seeing the capacity
    the earlier ones took; an approval no funder can take is scored again with
    FUNDING_UNAVAILABLE (so a person decides, and nothing is disbursed).
    """
    if len(applications) != len(facts):
        raise ValueError("applications and facts differ in length")
    taxonomy = taxonomy or default_taxonomy()
    contexts = _contexts(applications, facts)
    lender_of = [lenders[a["tenant_id"]] for a in applications]
    thresholds = [
        f.approve_below
        if isinstance(f, GivenFacts) and f.approve_below is not None
        else lender.view.approve_below_for(a["purpose"], taxonomy)
        for a, f, lender in zip(applications, facts, lender_of, strict=True)
    ]
    adjustments = [
        f.lr_weight_adjustment
        if isinstance(f, GivenFacts) and f.lr_weight_adjustment is not None
        else lender.lr_weight_adjustment
        for f, lender in zip(facts, lender_of, strict=True)
    ]

    def score(rows: Sequence[int]) -> list[ScoredApplication]:
        return scorer.score_batch(
            [applications[i] for i in rows],
            [contexts[i] for i in rows],
            [lender_of[i].view.config for i in rows],
            [lender_of[i].lr_model for i in rows],
            [adjustments[i] for i in rows],
            [thresholds[i] for i in rows],
        )

    scored = score(range(len(applications)))
    funders = _route(applications, facts, scored, lenders, taxonomy)
    unfunded = [i for i, funder in enumerate(funders) if funder is _NO_FUNDER]
    if unfunded:
        for i in unfunded:
            contexts[i] = replace(
                contexts[i], flags=contexts[i].flags | {HardFlag.FUNDING_UNAVAILABLE}
            )
        # Only the unfunded rows again: a row's score does not depend on the rest of its
        # batch (the batch-invariance tests hold the scorer to that) as long as the LR's
        # columns are the fixed context features. A given context with other features adds
        # columns for the whole batch, which can move a sum's last bit: then all rows again.
        rows = unfunded if _fixed_columns(contexts) else range(len(applications))
        for i, item in zip(rows, score(rows), strict=True):
            scored[i] = item
    return [
        _decision(application, item, context, funder, lender, taxonomy)
        for application, item, context, funder, lender in zip(
            applications, scored, contexts, funders, lender_of, strict=True
        )
    ]


def _fixed_columns(contexts: Sequence[ApplicationContext]) -> bool:
    """No context has a feature beyond the scorer's fixed set (its LR columns are fixed)."""
    return all(c.features.keys() <= _CONTEXT_FEATURE_SET for c in contexts)


_CONTEXT_FEATURE_SET = frozenset(CONTEXT_FEATURES)


# A lender with funders none of which can take the loan (as opposed to None: no funders).
_NO_FUNDER = "<none>"


def _route(
    applications: Sequence[Mapping[str, Any]],
    facts: Sequence[ApplicationFacts | GivenFacts],
    scored: Sequence[ScoredApplication],
    lenders: Mapping[str, LenderFacts],
    taxonomy: GreenTaxonomy,
) -> list[str | None]:
    """The funder of each approval whose lender has funders, in batch order."""
    used = {
        (tenant, funder): amount
        for tenant, lender in lenders.items()
        for funder, amount in lender.funder_used_minor.items()
    }
    held: dict[str, str] = {}  # application id -> funder, within this batch
    out: list[str | None] = []
    for application, fact, item in zip(applications, facts, scored, strict=True):
        tenant = application["tenant_id"]
        funders = lenders[tenant].view.funders
        if isinstance(fact, GivenFacts) or not funders or not every_check_passed(item):
            out.append(None)
            continue
        if fact.held_funder is not None:
            # Reserved by an earlier delivery: the funder keeps the loan, and the usage read
            # since then already counts it.
            out.append(fact.held_funder)
            continue
        amount = application["requested_amount_minor"]
        usage = {f.funder_id: used.get((tenant, f.funder_id), 0) for f in funders}
        chosen = route_to_funder(
            funders, usage, amount, item.result.score, application["purpose"], taxonomy
        )
        if chosen is None:
            out.append(_NO_FUNDER)
            continue
        # A reservation is per application: the same application twice in a batch keeps
        # its funder and takes no more capacity.
        application_id = application["application_id"]
        earlier = held.get(application_id)
        if earlier is None:
            used[(tenant, chosen)] = usage[chosen] + amount
            held[application_id] = chosen
        out.append(earlier or chosen)
    return out


def _decision(
    application: Mapping[str, Any],
    scored: ScoredApplication,
    context: ApplicationContext,
    funder: str | None,
    lender: LenderFacts,
    taxonomy: GreenTaxonomy,
) -> Decision:
    funder_id = None if funder is _NO_FUNDER else funder
    if not every_check_passed(scored):
        return Decision(scored, context, funder_id)
    terms = disbursement_terms(application, scored, lender, funder_id, taxonomy)
    return Decision(scored, context, funder_id, terms)


def disbursement_terms(
    application: Mapping[str, Any],
    scored: ScoredApplication,
    lender: LenderFacts,
    funder_id: str | None,
    taxonomy: GreenTaxonomy | None = None,
) -> DisbursementTerms:
    """Price, schedule and CO2e of the loan an approved application opens."""
    taxonomy = taxonomy or default_taxonomy()
    annual_rate_bps, discount_bps = price(
        lender.view.pricing, scored.result.score, application["purpose"], taxonomy
    )
    # The loan starts on the application's business date, not the processing date: a
    # redelivery or a replay after an outage then yields the same schedule.
    schedule = loan_schedule(
        application["requested_amount_minor"],
        annual_rate_bps,
        application["term_months"],
        application["occurred_at"].astimezone(UTC).date(),
    )
    return DisbursementTerms(
        annual_rate_bps=annual_rate_bps,
        rate_discount_bps=discount_bps,
        schedule=tuple(schedule),
        funder_id=funder_id,
        # None until the taxonomy carries a verified factor for the purpose (see its file).
        co2e_avoided_kg=co2e_avoided_kg(
            taxonomy,
            application["purpose"],
            application["requested_amount_minor"],
            application["currency"],
            application.get("appliance_efficiency_grade"),
        ),
    )


def replay_facts(record: Mapping[str, Any]) -> GivenFacts:
    """What a recorded ApplicationDecision (v2) was decided with, to decide it again.

    The context indicators, hard flags and informational codes come from the reasons and
    indicators; the context features from the recorded ``ctx_*`` features; the threshold
    (green bonus included) and the LR weight adjustment are recorded as they were applied.
    Identity rules and model outputs are recomputed from the application itself.
    """
    indicators = record.get("indicators") or {}
    codes = [reason["code"] for reason in record.get("reasons") or ()]
    # IDENTITY_INVALID is the scorer's own flag (from the identity rules it recomputes).
    flags = frozenset(
        HardFlag(code)
        for code in codes
        if code in HardFlag.__members__ and code != HardFlag.IDENTITY_INVALID
    )
    context_codes = tuple(
        code for code in codes if code not in _FUSION_CODES and code not in IDENTITY_RULE_CODES
    )
    features = {
        name[len("ctx_") :]: float(value)
        for name, value in (record.get("features") or {}).items()
        if name.startswith("ctx_")
    }
    identity = indicators.get("identity_risk")
    context = ApplicationContext(
        **{name: _optional_float(indicators.get(name)) for name in _CONTEXT_INDICATORS},
        # The recorded identity risk is max(rules, signals); rules recompute to at most it.
        identity_signals_risk=_optional_float(identity),
        flags=flags,
        codes=context_codes,
        features=features,
    )
    threshold = record.get("approve_below")
    return GivenFacts(
        context,
        approve_below=None if threshold is None else float(threshold),
        lr_weight_adjustment=float(record.get("lr_weight_adjustment") or 0.0),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
