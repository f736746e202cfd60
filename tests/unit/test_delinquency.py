"""Delinquency ageing: scripted timelines with explicit dates, routing, records and invariants."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greencredit.models.delinquency import (
    MAX_APPLIED_EVENT_IDS,
    BehaviourSignal,
    CollateralRevalued,
    CollectionChannel,
    CollectionMode,
    DailyCheck,
    DelinquencyLevel,
    DelinquencyPolicy,
    DelinquencyPolicyError,
    DpdBucket,
    Escalation,
    GuarantorStatus,
    Instalment,
    LoanEvent,
    LoanEventError,
    LoanOpened,
    LoanState,
    PaymentHoliday,
    RepaymentReceived,
    Route,
    Transition,
    assess,
    clear_outbox,
    instalment_days_past_due,
    open_loan,
    step,
)
from greencredit.streams.codec import AvroCodec
from greencredit.streams.records import escalation_record

L = DelinquencyLevel
POLICY = DelinquencyPolicy()
OPENED = date(2026, 1, 1)
PRINCIPAL = 1_200_000
INSTALMENT = 105_000  # 12 of them: principal plus interest
FIRST_DUE = date(2026, 2, 1)


def monthly(n: int = 12, amount: int = INSTALMENT) -> list[tuple[int, date, int]]:
    return [(k + 1, date(2026 + (k + 1) // 12, (k + 1) % 12 + 1, 1), amount) for k in range(n)]


def opened(
    schedule: list[tuple[int, date, int]] | None = None,
    principal: int = PRINCIPAL,
    policy: DelinquencyPolicy = POLICY,
) -> LoanState:
    event = LoanOpened(
        "open-1", "loan-1", "bank-a", "cust-1", "CNY", principal, schedule or monthly(), OPENED
    )
    return open_loan(event, policy)


def pay(number: int, amount: int, on: date, event_id: str | None = None) -> RepaymentReceived:
    return RepaymentReceived(
        event_id or f"pay-{number}-{on}-{amount}", "loan-1", number, amount, on
    )


def days(start: date, end: date) -> list[DailyCheck]:
    """A DailyCheck for every day from start to end inclusive."""
    return [DailyCheck(start + timedelta(days=k)) for k in range((end - start).days + 1)]


def run(
    state: LoanState,
    events: Iterable[LoanEvent],
    policy: DelinquencyPolicy = POLICY,
    clear_every_step: bool = False,
) -> tuple[LoanState, list[Escalation]]:
    emitted: list[Escalation] = []
    for event in events:
        state, out = step(state, event, policy)
        emitted += out
        if clear_every_step and out:
            state = clear_outbox(state, [e.event_id for e in out])
    return state, emitted


def by_date(*streams: Iterable[LoanEvent]) -> list[LoanEvent]:
    """Merge event streams by day; on one day, facts come before the daily check."""

    def key(event: LoanEvent) -> tuple[date, int]:
        if isinstance(event, DailyCheck):
            return event.as_of, 1
        assert isinstance(event, RepaymentReceived)
        return event.paid_on, 0

    return sorted((e for s in streams for e in s), key=key)


def on_time(numbers: Iterable[int]) -> list[LoanEvent]:
    return [pay(n, INSTALMENT, monthly()[n - 1][1]) for n in numbers]


def summary(escalations: Iterable[Escalation]) -> list[tuple[Any, ...]]:
    return [(e.transition, e.previous_level, e.level, e.days_past_due) for e in escalations]


# --- timelines ---------------------------------------------------------------------------


def test_on_time_payments_never_escalate_and_close_quietly() -> None:
    state, emitted = run(opened(), by_date(on_time(range(1, 13)), days(OPENED, date(2027, 2, 1))))

    assert emitted == []
    assert state.closed
    assert state.level is L.CURRENT


def test_a_missed_instalment_ages_through_every_bucket_once() -> None:
    year = days(OPENED, date(2027, 3, 1))
    state, emitted = run(opened(), by_date(on_time(range(2, 13)), year))

    assert summary(emitted) == [
        (Transition.ESCALATED, L.CURRENT, L.MILD, 1),
        (Transition.ESCALATED, L.MILD, L.MODERATE, 31),
        (Transition.ESCALATED, L.MODERATE, L.SEVERE, 61),
        (Transition.ESCALATED, L.SEVERE, L.CRITICAL, 91),
        (Transition.ESCALATED, L.CRITICAL, L.CRITICAL, 180),  # handed to legal
    ]
    assert [e.as_of for e in emitted] == [
        FIRST_DUE + timedelta(days=d) for d in (1, 31, 61, 91, 180)
    ]
    assert [(e.collection_mode, e.channel) for e in emitted] == [
        (CollectionMode.AUTOMATIC, CollectionChannel.SMS),
        (CollectionMode.AUTOMATIC, CollectionChannel.AUTO_DEBIT_RETRY),
        (CollectionMode.MANUAL, CollectionChannel.PHONE_CALL),
        (CollectionMode.MANUAL, CollectionChannel.COLLECTION_AGENCY),
        (CollectionMode.MANUAL, CollectionChannel.LEGAL),
    ]
    first = emitted[0]
    assert first.overdue_amount_minor == INSTALMENT
    assert first.overdue_share == pytest.approx(INSTALMENT / PRINCIPAL)
    assert first.reason == "instalment 1 unpaid 1 day; 8.8% of principal overdue"
    assert "legal action" in emitted[-1].reason
    assert state.outbox == tuple(emitted)
    assert len({e.event_id for e in emitted}) == 5


def test_a_tiny_overdue_amount_stays_mild() -> None:
    state = opened()
    state, _ = step(state, pay(1, INSTALMENT - 500, FIRST_DUE), POLICY)
    state, emitted = run(state, by_date(on_time([2]), days(FIRST_DUE, date(2026, 3, 20))))

    assert summary(emitted) == [(Transition.ESCALATED, L.CURRENT, L.MILD, 1)]
    assert assess(state, POLICY).days_past_due == 47
    assert state.level is L.MILD
    assert "(minor amount)" in emitted[0].reason
    # Not below MILD, however small: it is still late.
    assert assess(state, POLICY, FIRST_DUE + timedelta(days=1)).level is L.MILD


def test_a_majority_overdue_raises_a_level_and_partial_payment_lowers_it() -> None:
    schedule = [(1, FIRST_DUE, 600_000), (2, date(2026, 3, 1), 600_000)]
    state = opened(schedule, principal=1_000_000)
    state, emitted = run(state, [DailyCheck(FIRST_DUE + timedelta(days=1))])
    assert summary(emitted) == [(Transition.ESCALATED, L.CURRENT, L.MODERATE, 1)]

    state, emitted = step(state, pay(1, 200_000, FIRST_DUE + timedelta(days=2)), POLICY)

    assert summary(emitted) == [(Transition.DEESCALATED, L.MODERATE, L.MILD, 2)]
    assert emitted[0].overdue_amount_minor == 400_000
    assert state.instalments[0].amount_paid_minor == 200_000


def test_paying_everything_due_cures_the_loan() -> None:
    state, _ = run(opened(), days(OPENED, FIRST_DUE + timedelta(days=40)))
    assert state.level is L.MODERATE

    # Instalment 2 fell due meanwhile: everything due is two instalments.
    state, emitted = step(state, pay(1, 2 * INSTALMENT, FIRST_DUE + timedelta(days=41)), POLICY)

    assert summary(emitted) == [(Transition.CURED, L.MODERATE, L.CURRENT, 0)]
    assert (emitted[0].collection_mode, emitted[0].channel) == (
        CollectionMode.NONE,
        CollectionChannel.NONE,
    )
    assert emitted[0].overdue_amount_minor == 0
    assert not state.closed


def test_full_payoff_resolves_and_later_events_are_ignored() -> None:
    state, _ = run(opened(), days(OPENED, FIRST_DUE + timedelta(days=10)))
    assert state.level is L.MILD

    payoff = FIRST_DUE + timedelta(days=11)
    state, emitted = step(state, pay(1, 12 * INSTALMENT, payoff), POLICY)

    assert summary(emitted) == [(Transition.RESOLVED, L.MILD, L.CURRENT, 0)]
    assert emitted[0].reason == "loan fully repaid"
    assert state.closed
    assert all(i.outstanding_minor == 0 for i in state.instalments)
    for later in (
        DailyCheck(payoff + timedelta(days=400)),
        pay(2, 1, payoff),
        GuarantorStatus("g-1", "loan-1", True),
    ):
        assert step(state, later, POLICY) == (state, [])


def test_a_payment_holiday_pauses_ageing() -> None:
    holiday = PaymentHoliday("hol-1", "loan-1", date(2026, 2, 11), date(2026, 3, 12))
    granted = FIRST_DUE + timedelta(days=9)
    state, _ = run(opened(), days(OPENED, granted))
    state, _ = step(state, holiday, POLICY)
    assert state.holidays == ((date(2026, 2, 11), date(2026, 3, 12)),)

    def dpd(on: date) -> int:
        return assess(state, POLICY, on).days_past_due

    assert dpd(date(2026, 2, 10)) == 9
    assert dpd(date(2026, 2, 11)) == dpd(date(2026, 3, 12)) == 9  # paused
    assert dpd(date(2026, 3, 13)) == 10  # resumes
    # Instalment 2 fell due inside the holiday: it counts from the day after.
    second = state.instalments[1]
    assert instalment_days_past_due(second, date(2026, 3, 13), state.holidays) == 1

    state, emitted = run(state, days(granted, date(2026, 5, 1)), POLICY)
    moderate = next(e for e in emitted if e.level is L.MODERATE)
    assert moderate.as_of == FIRST_DUE + timedelta(days=31 + 30)  # 30 holiday days later


def test_grace_days_delay_ageing() -> None:
    policy = DelinquencyPolicy(grace_days=3)
    _, emitted = run(opened(policy=policy), days(OPENED, FIRST_DUE + timedelta(days=5)), policy)

    assert summary(emitted) == [(Transition.ESCALATED, L.CURRENT, L.MILD, 1)]
    assert emitted[0].as_of == FIRST_DUE + timedelta(days=4)


def test_a_delinquent_guarantor_raises_one_level() -> None:
    state, _ = run(opened(), days(OPENED, FIRST_DUE + timedelta(days=5)))
    assert state.level is L.MILD

    state, emitted = step(state, GuarantorStatus("g-1", "loan-1", True), POLICY)
    assert summary(emitted) == [(Transition.ESCALATED, L.MILD, L.MODERATE, 5)]
    assert emitted[0].reason.endswith("; guarantor delinquent")

    state, emitted = step(state, GuarantorStatus("g-2", "loan-1", False), POLICY)
    assert summary(emitted) == [(Transition.DEESCALATED, L.MODERATE, L.MILD, 5)]


def test_a_delinquent_guarantor_on_a_current_loan_is_an_early_warning() -> None:
    _, emitted = step(opened(), GuarantorStatus("g-1", "loan-1", True), POLICY)

    assert summary(emitted) == [(Transition.ESCALATED, L.CURRENT, L.EARLY_WARNING, 0)]
    assert (emitted[0].collection_mode, emitted[0].channel) == (
        CollectionMode.AUTOMATIC,
        CollectionChannel.APP_PUSH,
    )


def test_collateral_below_the_ltv_limit_raises_the_level() -> None:
    state, emitted = step(opened(), CollateralRevalued("c-1", "loan-1", 2_000_000), POLICY)
    assert emitted == []  # loan-to-value 60 %

    state, emitted = step(state, CollateralRevalued("c-2", "loan-1", 1_000_000), POLICY)
    assert summary(emitted) == [(Transition.ESCALATED, L.CURRENT, L.EARLY_WARNING, 0)]
    assert emitted[0].reason == "loan-to-value 120% above 80% limit"

    # Both raises count on a delinquent loan: MILD + guarantor + collateral.
    state, _ = step(state, GuarantorStatus("g-1", "loan-1", True), POLICY)
    state, emitted = step(state, DailyCheck(FIRST_DUE + timedelta(days=1)), POLICY)
    assert summary(emitted) == [(Transition.ESCALATED, L.EARLY_WARNING, L.SEVERE, 1)]


def test_behaviour_risk_warns_early_on_a_current_loan_only() -> None:
    state, emitted = step(opened(), BehaviourSignal("b-1", "loan-1", 0.75), POLICY)
    assert summary(emitted) == [(Transition.ESCALATED, L.CURRENT, L.EARLY_WARNING, 0)]
    assert emitted[0].reason == "behaviour risk 0.75"

    state, emitted = step(state, BehaviourSignal("b-2", "loan-1", 0.2), POLICY)
    assert summary(emitted) == [(Transition.CURED, L.EARLY_WARNING, L.CURRENT, 0)]

    state, _ = run(state, days(OPENED, FIRST_DUE + timedelta(days=3)))
    state, emitted = step(state, BehaviourSignal("b-3", "loan-1", 0.99), POLICY)
    assert emitted == [] and state.level is L.MILD


def test_observed_on_ages_the_loan_to_that_day() -> None:
    later = FIRST_DUE + timedelta(days=31)
    state, emitted = step(opened(), BehaviourSignal("b-1", "loan-1", 0.1, later), POLICY)

    assert state.as_of == later
    assert summary(emitted) == [(Transition.ESCALATED, L.CURRENT, L.MODERATE, 31)]


# --- idempotence, replay, outbox ---------------------------------------------------------


def test_a_redelivered_event_changes_nothing() -> None:
    state, _ = run(opened(), days(OPENED, FIRST_DUE + timedelta(days=3)))
    payment = pay(1, 50_000, FIRST_DUE + timedelta(days=4))
    once, _ = step(state, payment, POLICY)

    again, emitted = step(once, payment, POLICY)

    assert again is once and emitted == []
    assert once.instalments[0].amount_paid_minor == 50_000
    assert step(once, DailyCheck(FIRST_DUE), POLICY) == (once, [])  # a day already graded
    reopened = LoanOpened("open-2", "loan-1", "bank-a", "c", "CNY", 1, [], OPENED)
    assert step(once, reopened, POLICY) == (once, [])


def test_replaying_a_timeline_gives_the_same_escalation_ids() -> None:
    events = by_date(on_time([2, 3]), days(OPENED, date(2026, 9, 1)))
    first, emitted_first = run(opened(), events)
    second, emitted_second = run(opened(), events, clear_every_step=True)

    assert [e.event_id for e in emitted_first] == [e.event_id for e in emitted_second]
    assert emitted_first == emitted_second
    assert second.outbox == ()
    assert second.version > first.version  # every clear is a write


def test_clear_outbox_removes_emitted_escalations_only() -> None:
    state, emitted = run(opened(), days(OPENED, FIRST_DUE + timedelta(days=31)))
    assert len(state.outbox) == 2

    cleared = clear_outbox(state, [emitted[0].event_id])

    assert cleared.outbox == (emitted[1],)
    assert cleared.version == state.version + 1
    assert clear_outbox(cleared, ["unknown"]) is cleared


def test_late_events_never_move_the_grading_day_back() -> None:
    state, _ = run(opened(), days(OPENED, FIRST_DUE + timedelta(days=27)))
    state, emitted = step(state, pay(1, INSTALMENT, FIRST_DUE), POLICY)  # paid on time, told late

    assert state.as_of == FIRST_DUE + timedelta(days=27)
    assert summary(emitted) == [(Transition.CURED, L.MILD, L.CURRENT, 0)]


def test_overpayment_spills_to_the_next_instalments() -> None:
    state, _ = step(opened(), pay(1, 2 * INSTALMENT + 90_000, OPENED), POLICY)

    paid = [i.amount_paid_minor for i in state.instalments[:4]]
    assert paid == [INSTALMENT, INSTALMENT, 90_000, 0]


def test_the_applied_window_is_bounded() -> None:
    state = opened()
    for k in range(MAX_APPLIED_EVENT_IDS + 10):
        state, _ = step(state, BehaviourSignal(f"b-{k}", "loan-1", 0.1), POLICY)

    assert len(state.applied_event_ids) == MAX_APPLIED_EVENT_IDS
    assert state.applied_event_ids[-1] == f"b-{MAX_APPLIED_EVENT_IDS + 9}"


def test_events_for_another_loan_are_refused() -> None:
    with pytest.raises(LoanEventError, match="for loan other"):
        step(opened(), GuarantorStatus("g-1", "other", True), POLICY)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (RepaymentReceived("r", "loan-1", 99, 1, OPENED), "no instalment 99"),
        (RepaymentReceived("r", "loan-1", 1, -5, OPENED), "amount_paid_minor"),
        (PaymentHoliday("h", "loan-1", date(2026, 3, 1), date(2026, 2, 1)), "before it starts"),
        (BehaviourSignal("b", "loan-1", 1.5), r"risk must be a number in \[0, 1\]"),
        (BehaviourSignal("b", "loan-1", math.nan), "risk"),
        (CollateralRevalued("c", "loan-1", -1), "value_minor"),
        (GuarantorStatus("g", "loan-1", "yes"), "true or false"),  # type: ignore[arg-type]
        (RepaymentReceived("r", "loan-1", 1, 1, datetime(2026, 1, 1, tzinfo=UTC)), "a date"),
    ],
)
def test_malformed_events_are_refused(event: LoanEvent, message: str) -> None:
    with pytest.raises(LoanEventError, match=message):
        step(opened(), event, POLICY)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schedule": []}, "schedule is empty"),
        ({"schedule": [(1, FIRST_DUE, 1), (1, date(2026, 3, 1), 1)]}, "appears twice"),
        ({"schedule": [(1, OPENED, PRINCIPAL)]}, "not after the opening date"),
        ({"schedule": [(1, FIRST_DUE)]}, "schedule rows are"),
        ({"schedule": [(0, FIRST_DUE, PRINCIPAL)]}, "instalment number must be"),
        ({"schedule": [(True, FIRST_DUE, PRINCIPAL)]}, "instalment number must be"),
        ({"schedule": [(1, FIRST_DUE, 0)]}, "instalment 1 amount_due_minor"),
        ({"schedule": [(1, FIRST_DUE, 1.5)]}, "instalment 1 amount_due_minor"),
        ({"schedule": [(1, "2026-02-01", PRINCIPAL)]}, "instalment 1 due_date must be a date"),
        (
            {"schedule": [(1, datetime(2026, 2, 1, tzinfo=UTC), PRINCIPAL)]},
            "instalment 1 due_date must be a date",
        ),
        ({"schedule": [(1, FIRST_DUE, 1000)]}, "less than the principal"),
        ({"currency": "cny"}, "ISO 4217"),
        ({"principal_minor": 0}, "principal_minor"),
        ({"loan_id": ""}, "loan_id"),
    ],
)
def test_malformed_openings_are_refused(changes: dict[str, Any], message: str) -> None:
    event = LoanOpened("o", "loan-1", "bank-a", "c", "CNY", PRINCIPAL, monthly(), OPENED)
    with pytest.raises(LoanEventError, match=message):
        open_loan(dataclasses.replace(event, **changes), POLICY)


# --- policy ------------------------------------------------------------------------------


def test_routing_sends_mild_to_machines_and_severe_to_people() -> None:
    route = POLICY.route_for
    assert route(L.CURRENT, 0) == Route(CollectionMode.NONE, CollectionChannel.NONE)
    assert route(L.MILD, 5) == Route(CollectionMode.AUTOMATIC, CollectionChannel.SMS)
    assert route(L.SEVERE, 70) == Route(CollectionMode.MANUAL, CollectionChannel.PHONE_CALL)
    assert route(L.CRITICAL, 179).channel is CollectionChannel.COLLECTION_AGENCY
    assert route(L.CRITICAL, 180) == Route(CollectionMode.MANUAL, CollectionChannel.LEGAL)
    assert DelinquencyPolicy(legal_after_days=120).route_for(L.CRITICAL, 120).channel == "LEGAL"


def test_default_buckets_follow_the_fineract_style_ranges() -> None:
    assert [POLICY.level_for_days(d) for d in (0, 1, 30, 31, 60, 61, 90, 91, 5000)] == [
        L.CURRENT, L.MILD, L.MILD, L.MODERATE, L.MODERATE,
        L.SEVERE, L.SEVERE, L.CRITICAL, L.CRITICAL,
    ]  # fmt: skip


def test_custom_buckets_and_routing_from_plain_json() -> None:
    policy = DelinquencyPolicy.from_dict(
        {
            "buckets": [[1, 15, "MILD"], [16, 45, "SEVERE"], {"min_days": 46, "level": "CRITICAL"}],
            "routing": {**POLICY.to_dict()["routing"], "MILD": ["MANUAL", "PHONE_CALL"]},
        }
    )

    assert policy.buckets[1] == DpdBucket(16, 45, L.SEVERE)
    assert policy.level_for_days(16) is L.SEVERE
    assert policy.route_for(L.MILD, 3) == Route(CollectionMode.MANUAL, CollectionChannel.PHONE_CALL)


def test_policy_round_trips_through_json() -> None:
    policy = DelinquencyPolicy(
        buckets=(DpdBucket(1, 10, L.MILD), DpdBucket(11, None, L.CRITICAL)),
        grace_days=2,
        routing={
            **POLICY.routing,
            L.MILD: Route(CollectionMode.AUTOMATIC, CollectionChannel.APP_PUSH),
        },
    )

    restored = DelinquencyPolicy.from_dict(orjson.loads(orjson.dumps(policy.to_dict())))

    assert restored == policy
    assert hash(restored) == hash(policy)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"buckets": ((1, 30, "MILD"), (32, None, "SEVERE"))}, "starts at day 32, expected 31"),
        ({"buckets": ((1, 30, "MILD"), (20, None, "SEVERE"))}, "without gaps or overlaps"),
        ({"buckets": ((0, 30, "MILD"), (31, None, "SEVERE"))}, "min_days must be an integer >= 1"),
        ({"buckets": ((1, 30, "MILD"), (31, 60, "SEVERE"))}, "must be open-ended"),
        ({"buckets": ((1, None, "MILD"), (31, None, "SEVERE"))}, "only the last bucket"),
        ({"buckets": ((1, 30, "SEVERE"), (31, None, "MILD"))}, "milder than the previous"),
        ({"buckets": ((1, None, "CURRENT"),)}, "not a delinquent level"),
        ({"buckets": ((1, None, "LATE"),)}, "'LATE' is not one of"),
        ({"buckets": ()}, "non-empty list"),
        ({"minor_amount_share": 0.6}, "must be below major_amount_share"),
        ({"major_amount_share": math.nan}, "must be a number"),
        ({"ltv_limit": 0}, r"ltv_limit must be in \(0.0"),
        ({"early_warning_risk": 1.2}, "early_warning_risk"),
        ({"grace_days": -1}, "grace_days must be an integer >= 0"),
        ({"minor_amount_minor": True}, "minor_amount_minor"),
        ({"legal_after_days": 0}, "legal_after_days"),
        ({"routing": {L.MILD: ("AUTOMATIC", "SMS")}}, "no route for EARLY_WARNING"),
        ({"routing": {**POLICY.routing, L.MILD: ("NONE", "NONE")}}, "needs a collection mode"),
        ({"routing": {**POLICY.routing, L.CURRENT: ("AUTOMATIC", "SMS")}}, "never collected"),
    ],
)
def test_invalid_policies_are_refused_with_the_field_named(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(DelinquencyPolicyError, match=message):
        DelinquencyPolicy(**changes)


def test_unknown_policy_keys_are_refused() -> None:
    with pytest.raises(DelinquencyPolicyError, match="unknown policy keys: grace_day"):
        DelinquencyPolicy.from_dict({"grace_day": 3})


# --- serialisation -----------------------------------------------------------------------


def test_escalation_record_encodes_as_a_delinquency_escalation() -> None:
    _, emitted = run(opened(), days(OPENED, FIRST_DUE + timedelta(days=2)))
    now = datetime(2026, 2, 3, 1, 0, tzinfo=UTC)
    record = escalation_record(emitted[0], now)

    codec = AvroCodec()
    decoded = codec.decode(codec.encode("greencredit.delinquency-escalations", record)).value

    assert decoded["event_id"] == emitted[0].event_id
    assert decoded["occurred_at"] == now
    assert decoded["tenant_id"] == "bank-a"
    assert decoded["schema_version"] == 1
    assert (decoded["transition"], decoded["previous_level"], decoded["level"]) == (
        "ESCALATED",
        "CURRENT",
        "MILD",
    )
    assert (decoded["collection_mode"], decoded["channel"]) == ("AUTOMATIC", "SMS")
    assert decoded["days_past_due"] == 1
    assert decoded["overdue_amount_minor"] == INSTALMENT
    with pytest.raises(ValueError, match="timezone-aware"):
        escalation_record(emitted[0], datetime(2026, 2, 3))  # noqa: DTZ001


def test_state_round_trips_through_orjson() -> None:
    state, _ = run(opened(), days(OPENED, FIRST_DUE + timedelta(days=35)))
    for event in (
        PaymentHoliday("h", "loan-1", date(2026, 3, 10), date(2026, 3, 20)),
        CollateralRevalued("c", "loan-1", 900_000),
        BehaviourSignal("b", "loan-1", 0.4),
        pay(1, 1234, date(2026, 3, 8)),
    ):
        state, _ = step(state, event, POLICY)
    assert state.outbox and state.holidays and state.collateral_value_minor

    restored = LoanState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))

    assert restored == state
    assert step(restored, DailyCheck(date(2026, 6, 1)), POLICY) == step(
        state, DailyCheck(date(2026, 6, 1)), POLICY
    )


def test_a_truncated_stored_state_is_reported() -> None:
    data = opened().to_dict()
    del data["instalments"]
    with pytest.raises(LoanEventError, match="missing 'instalments'"):
        LoanState.from_dict(data)


# --- properties --------------------------------------------------------------------------

_DAY = st.integers(min_value=0, max_value=420).map(lambda d: OPENED + timedelta(days=d))
_EVENTS = st.one_of(
    st.builds(
        lambda n, amount, on: ("pay", n, amount, on),
        st.integers(1, 6),
        st.integers(0, 700_000),
        _DAY,
    ),
    st.builds(lambda s, n: ("holiday", s, s + timedelta(days=n)), _DAY, st.integers(0, 60)),
    st.builds(lambda b: ("guarantor", b), st.booleans()),
    st.builds(lambda v: ("collateral", v), st.integers(0, 3_000_000)),
    st.builds(lambda r: ("behaviour", r), st.floats(0, 1)),
    st.builds(lambda d: ("daily", d), _DAY),
)


def _event(k: int, spec: tuple[Any, ...], instalments: int) -> LoanEvent:
    kind, *args = spec
    eid = f"e{k}"
    if kind == "pay":
        return RepaymentReceived(eid, "loan-1", min(args[0], instalments), args[1], args[2])
    if kind == "holiday":
        return PaymentHoliday(eid, "loan-1", args[0], args[1])
    if kind == "guarantor":
        return GuarantorStatus(eid, "loan-1", args[0])
    if kind == "collateral":
        return CollateralRevalued(eid, "loan-1", args[0])
    if kind == "behaviour":
        return BehaviourSignal(eid, "loan-1", args[0])
    return DailyCheck(args[0])


@settings(max_examples=150, deadline=None)
@given(
    amounts=st.lists(st.integers(1, 500_000), min_size=1, max_size=6),
    principal_share=st.floats(0.01, 1.0),
    grace=st.integers(0, 5),
    specs=st.lists(_EVENTS, max_size=40),
)
def test_grading_invariants_hold_for_any_timeline(
    amounts: list[int], principal_share: float, grace: int, specs: list[tuple[Any, ...]]
) -> None:
    policy = DelinquencyPolicy(grace_days=grace)
    schedule = [(k + 1, OPENED + timedelta(days=30 * (k + 1)), a) for k, a in enumerate(amounts)]
    principal = max(1, int(sum(amounts) * principal_share))
    state = opened(schedule, principal, policy)
    events = [_event(k, spec, len(amounts)) for k, spec in enumerate(specs)]
    scheduled = sum(amounts)
    emitted: list[Escalation] = []
    for event in events:
        before = state
        state, out = step(state, event, policy)
        emitted += out
        grade = assess(state, policy)
        assert grade.days_past_due >= 0
        assert grade.level in set(DelinquencyLevel)
        assert 0 <= grade.overdue_minor <= scheduled
        assert all(0 <= i.amount_paid_minor <= i.amount_due_minor for i in state.instalments)
        assert state.as_of >= before.as_of
        assert state.version in (before.version, before.version + 1)
        if not state.closed:
            assert state.level is grade.level
        if out:
            [escalation] = out
            assert escalation.previous_level is before.level
            assert escalation.level is state.level
            assert (before.level, before.channel) != (state.level, state.channel)
        elif not state.closed:
            assert state.level is before.level

    # Redelivering every event (at-least-once delivery) changes nothing.
    twice, emitted_twice = run(opened(schedule, principal, policy), _doubled(events), policy)
    assert twice == state
    assert emitted_twice == emitted


def _doubled(events: list[LoanEvent]) -> list[LoanEvent]:
    return [e for event in events for e in (event, event)]


def test_instalment_dpd_is_zero_until_due_and_when_paid() -> None:
    inst = Instalment(1, FIRST_DUE, 100)
    assert instalment_days_past_due(inst, FIRST_DUE, ()) == 0
    assert instalment_days_past_due(inst, FIRST_DUE + timedelta(days=3), (), grace_days=1) == 2
    overlapping = [(date(2026, 2, 2), date(2026, 2, 5)), (date(2026, 2, 4), date(2026, 2, 6))]
    assert instalment_days_past_due(inst, date(2026, 2, 10), overlapping) == 9 - 5
    paid = dataclasses.replace(inst, amount_paid_minor=100)
    assert instalment_days_past_due(paid, FIRST_DUE + timedelta(days=3), ()) == 0
