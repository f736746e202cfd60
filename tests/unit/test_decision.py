"""models/decision.py on its own: context from facts, thresholds, funders, terms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from greencredit.models.bp import BpCreditModel
from greencredit.models.decision import (
    ApplicationFacts,
    GivenFacts,
    LenderFacts,
    application_context,
    decide,
)
from greencredit.models.features import ApplicationVelocity, DeviceState, WindowCounts
from greencredit.models.fusion import HardFlag
from greencredit.models.green import Funder, GreenPricing, default_taxonomy
from greencredit.models.lender_config import default_lender_config
from greencredit.models.lender_view import LenderView, LenderViews
from greencredit.models.online_lr import OnlineRiskModel
from greencredit.models.scoring import CONTEXT_FEATURES, ApplicationContext, ApplicationScorer
from tests.factories import application

T = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TENANT = "lender-unit"


@pytest.fixture(scope="module")
def scorer() -> ApplicationScorer:
    return ApplicationScorer(BpCreditModel.load())


def velocity(event_id: str, apps_1h: int = 1, identities: int = 1) -> ApplicationVelocity:
    counts = WindowCounts(apps_1h, apps_1h, apps_1h)
    state = DeviceState("device_" + "0" * 32, distinct_identities_30d=identities)
    return ApplicationVelocity(event_id, counts, WindowCounts(1, 1, 1), counts, state)


def lender(funders: tuple[Funder, ...] = (), used: dict[str, int] | None = None) -> LenderFacts:
    view = LenderView(default_lender_config(TENANT), funders=funders)
    return LenderFacts(view, OnlineRiskModel(), 0.0, used or {})


def apps(n: int, **changes) -> list[dict]:
    return [
        application(100 + i, tenant_id=TENANT, occurred_at=T.isoformat(), **changes)
        for i in range(n)
    ]


def test_the_context_records_every_feature_the_scorer_always_scores() -> None:
    context = application_context(velocity("e", identities=2), T)
    assert set(context.features) == set(CONTEXT_FEATURES)
    assert application_context(None, T).flags == {HardFlag.FEATURES_UNAVAILABLE}
    farm = application_context(velocity("e", identities=5), T)
    assert HardFlag.DEVICE_FARM in farm.flags
    burst = application_context(velocity("e", apps_1h=6), T)
    assert HardFlag.VELOCITY_BURST in burst.flags


def test_green_loans_get_the_green_threshold_offline_too(scorer) -> None:
    [green] = apps(1, purpose="SOLAR_PV")
    [grey] = apps(1, purpose="TRAVEL")
    config = default_lender_config(TENANT)
    bonus = GreenPricing().green_approve_below_bonus
    decisions = decide([green, grey], [GivenFacts(), GivenFacts()], {TENANT: lender()}, scorer)
    assert decisions[0].scored.approve_below == pytest.approx(config.approve_below + bonus)
    assert decisions[1].scored.approve_below == config.approve_below
    # A recorded threshold wins over the computed one.
    [given] = decide([green], [GivenFacts(approve_below=0.3)], {TENANT: lender()}, scorer)
    assert given.scored.approve_below == 0.3


def test_funders_fill_in_batch_order_and_the_rest_goes_to_review(scorer) -> None:
    batch = apps(3, purpose="TRAVEL", requested_amount_minor=400_000)
    funder = Funder("f", green_only=False, capacity_minor=1_000_000, max_risk_score=1.0)
    facts = [ApplicationFacts(velocity(a["event_id"])) for a in batch]
    decisions = decide(batch, facts, {TENANT: lender((funder,))}, scorer)
    assert [d.funder_id for d in decisions] == ["f", "f", None]
    assert [d.outcome for d in decisions] == ["APPROVE", "APPROVE", "REVIEW"]
    assert HardFlag.FUNDING_UNAVAILABLE in decisions[2].context.flags
    assert decisions[2].terms is None
    assert decisions[0].terms is not None and decisions[0].terms.funder_id == "f"
    # Capacity used before the batch counts; a held reservation keeps its funder.
    later = decide(batch[:1], facts[:1], {TENANT: lender((funder,), {"f": 700_000})}, scorer)
    assert later[0].outcome == "REVIEW"
    held = [ApplicationFacts(facts[0].velocity, held_funder="f-old")]
    [again] = decide(batch[:1], held, {TENANT: lender((funder,))}, scorer)
    assert again.funder_id == "f-old"


@pytest.mark.parametrize("other_features", [False, True])
def test_unfunded_rows_score_as_a_full_rescore_would(scorer, other_features) -> None:
    """Only the unfunded rows are scored again; they must equal scoring the whole batch."""
    batch = apps(5, purpose="TRAVEL")
    for i, app in enumerate(batch):  # rows that score differently, so a mix-up shows
        app["requested_amount_minor"] = 400_000 + 10_000 * i
    funder = Funder("f", green_only=False, capacity_minor=1_000_000, max_risk_score=1.0)
    facts: list[ApplicationFacts | GivenFacts] = [
        ApplicationFacts(velocity(a["event_id"])) for a in batch
    ]
    if other_features:  # a given context with a feature beyond the fixed set
        features = {**dict.fromkeys(CONTEXT_FEATURES, 1.0), "sessions_7d": 4.0}
        facts[4] = GivenFacts(ApplicationContext(features=features))
    facts_of_lender = lender((funder,))
    decisions = decide(batch, facts, {TENANT: facts_of_lender}, scorer)
    flagged = [HardFlag.FUNDING_UNAVAILABLE in d.context.flags for d in decisions]
    assert flagged[:4] == [False, False, True, True]
    n = len(batch)
    full = ApplicationScorer(scorer.bp_model).score_batch(
        batch,
        [d.context for d in decisions],
        [facts_of_lender.view.config] * n,
        [facts_of_lender.lr_model] * n,
        [0.0] * n,
        [d.scored.approve_below for d in decisions],
    )
    assert [d.scored for d in decisions] == full


def test_terms_price_the_loan_and_its_co2e(scorer) -> None:
    [ev] = apps(1, purpose="ELECTRIC_VEHICLE", term_months=12)
    [decision] = decide(
        [ev], [ApplicationFacts(velocity(ev["event_id"]))], {TENANT: lender()}, scorer
    )
    assert decision.terms is not None
    assert decision.terms.rate_discount_bps == GreenPricing().green_discount_bps
    assert len(decision.terms.schedule) == 12
    assert sum(i.principal_minor for i in decision.terms.schedule) == ev["requested_amount_minor"]
    factor = default_taxonomy().purpose("ELECTRIC_VEHICLE").co2e
    assert factor is not None and decision.terms.co2e_avoided_kg == factor.kg_co2e_avoided


def test_lender_views_parse_once_per_version() -> None:
    views = LenderViews()
    document = {**default_lender_config(TENANT).to_dict(), "version": 2}
    first = views.update(TENANT, document)
    assert views.update(TENANT, dict(document)) is first  # same version: not parsed again
    newer = views.update(TENANT, {**document, "version": 3, "funders": "[]"})
    assert newer is not first and newer.version == 3
    kept = views.update(TENANT, {**document, "version": 4, "green_pricing": "{not json"})
    assert kept is newer  # an invalid document keeps the current view
    assert views.update("other", None).version == 1  # the default
