"""Post-loan delinquency management: ``step(state, event, policy) -> (state, escalations)``.

One loan's facts (schedule, repayments, payment holidays, guarantor, collateral, behaviour
risk) live in a small frozen :class:`LoanState`. Every event, and the comprehensive daily
check, re-grades the loan from those facts; an :class:`Escalation` is produced only when the
grade changes, never once per day per loan. Pure: the agent loads and stores the state,
emits the outbox and clears it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from .delinquency_policy import (
    LEGAL_ROUTE,
    CollectionChannel,
    CollectionMode,
    DelinquencyLevel,
    DelinquencyPolicy,
    DelinquencyPolicyError,
    DpdBucket,
    Route,
    Transition,
)

__all__ = [
    "ESCALATION_NAMESPACE",
    "MAX_APPLIED_EVENT_IDS",
    "BehaviourSignal",
    "CollateralRevalued",
    "CollectionChannel",
    "CollectionMode",
    "DailyCheck",
    "DelinquencyLevel",
    "DelinquencyPolicy",
    "DelinquencyPolicyError",
    "DpdBucket",
    "Escalation",
    "GuarantorStatus",
    "Instalment",
    "LoanAssessment",
    "LoanEvent",
    "LoanEventError",
    "LoanOpened",
    "LoanState",
    "PaymentHoliday",
    "RepaymentReceived",
    "Route",
    "Transition",
    "assess",
    "clear_outbox",
    "instalment_days_past_due",
    "open_loan",
    "opened_state_dict",
    "step",
]

# Enough to catch redeliveries after a consumer restart; bounded so years of events on one
# loan do not grow its stored state without limit.
MAX_APPLIED_EVENT_IDS = 500
ESCALATION_NAMESPACE = uuid.UUID("69e20c6e-52ff-4a86-9809-e9156271e2f1")

_CURRENT = DelinquencyLevel.CURRENT
_NO_ROUTE = Route(CollectionMode.NONE, CollectionChannel.NONE)

Holiday = tuple[date, date]

# Due dates as stored: the loans of one day share their due dates (models/pricing.py), and
# date.isoformat costs several times a cache lookup; every state written converts them all.
_iso_day = lru_cache(maxsize=4096)(date.isoformat)


class LoanEventError(ValueError):
    """An event or stored state that cannot be applied to a loan; the message names the field."""


# --- state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instalment:
    """One scheduled instalment (principal and interest together), money in minor units."""

    number: int
    due_date: date
    amount_due_minor: int
    amount_paid_minor: int = 0

    @property
    def outstanding_minor(self) -> int:
        """What is still to be paid on this instalment."""
        return self.amount_due_minor - self.amount_paid_minor


@dataclass(frozen=True)
class Escalation:
    """A change of a loan's delinquency grade, as published on the escalation topic."""

    event_id: str
    loan_id: str
    tenant_id: str
    customer_id: str
    transition: Transition
    previous_level: DelinquencyLevel
    level: DelinquencyLevel
    days_past_due: int
    overdue_amount_minor: int
    currency: str
    overdue_share: float
    collection_mode: CollectionMode
    channel: CollectionChannel
    reason: str
    as_of: date

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (enums as names, date as ISO) for the stored outbox."""
        return {
            **{name: getattr(self, name) for name in _ESCALATION_PLAIN},
            **{name: getattr(self, name).value for name in _ESCALATION_ENUMS},
            "as_of": self.as_of.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Escalation:
        """Inverse of ``to_dict``."""
        return cls(
            **{name: data[name] for name in _ESCALATION_PLAIN},
            **{name: kind(data[name]) for name, kind in _ESCALATION_ENUMS.items()},
            as_of=date.fromisoformat(data["as_of"]),
        )


_ESCALATION_ENUMS: dict[str, Any] = {
    "transition": Transition,
    "previous_level": DelinquencyLevel,
    "level": DelinquencyLevel,
    "collection_mode": CollectionMode,
    "channel": CollectionChannel,
}
_ESCALATION_PLAIN = (
    "event_id", "loan_id", "tenant_id", "customer_id", "days_past_due",
    "overdue_amount_minor", "currency", "overdue_share", "reason",
)  # fmt: skip


@dataclass(frozen=True)
class LoanState:
    """Everything needed to grade one loan; ids only, no personal data.

    ``level`` and ``channel`` are the grade last published. ``version`` grows on every change
    (the store compare-and-sets on it). ``escalation_count`` numbers escalations so their ids
    stay the same on replay. ``outbox`` holds escalations not yet confirmed as emitted.
    """

    loan_id: str
    tenant_id: str
    customer_id: str
    currency: str
    principal_minor: int
    instalments: tuple[Instalment, ...]
    as_of: date
    holidays: tuple[Holiday, ...] = ()
    guarantor_delinquent: bool = False
    collateral_value_minor: int | None = None
    behaviour_risk: float | None = None
    level: DelinquencyLevel = _CURRENT
    channel: CollectionChannel = CollectionChannel.NONE
    applied_event_ids: tuple[str, ...] = ()
    closed: bool = False
    version: int = 1
    escalation_count: int = 0
    outbox: tuple[Escalation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (dates as ISO strings) that ``from_dict`` turns back into this state."""
        return {
            **{name: getattr(self, name) for name in _STATE_PLAIN},
            "instalments": [
                [i.number, _iso_day(i.due_date), i.amount_due_minor, i.amount_paid_minor]
                for i in self.instalments
            ],
            "as_of": self.as_of.isoformat(),
            "holidays": [[start.isoformat(), end.isoformat()] for start, end in self.holidays],
            "level": self.level.value,
            "channel": self.channel.value,
            "applied_event_ids": list(self.applied_event_ids),
            "outbox": [e.to_dict() for e in self.outbox],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoanState:
        """Rebuild a stored state; raises LoanEventError naming what is missing or malformed."""
        try:
            return cls(
                **{name: data[name] for name in _STATE_PLAIN},
                instalments=tuple(
                    Instalment(n, date.fromisoformat(due), owed, paid)
                    for n, due, owed, paid in data["instalments"]
                ),
                as_of=date.fromisoformat(data["as_of"]),
                holidays=tuple(
                    (date.fromisoformat(start), date.fromisoformat(end))
                    for start, end in data["holidays"]
                ),
                level=DelinquencyLevel(data["level"]),
                channel=CollectionChannel(data["channel"]),
                applied_event_ids=tuple(data["applied_event_ids"]),
                outbox=tuple(Escalation.from_dict(e) for e in data["outbox"]),
            )
        except KeyError as err:
            raise LoanEventError(f"stored loan state is missing {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise LoanEventError(f"stored loan state is malformed: {err}") from None


_STATE_PLAIN = (
    "loan_id", "tenant_id", "customer_id", "currency", "principal_minor",
    "guarantor_delinquent", "collateral_value_minor", "behaviour_risk", "closed", "version",
    "escalation_count",
)  # fmt: skip


# --- events -----------------------------------------------------------------------------
# Facts without a date of their own (holiday granted, guarantor, collateral, behaviour) take
# an optional ``observed_on``: the loan is graded as of that day, or of ``state.as_of`` when
# absent. A holiday is not graded as of its start: it is usually granted ahead of it.


@dataclass(frozen=True)
class LoanOpened:
    """A disbursed loan with its schedule of (number, due_date, amount_due_minor)."""

    event_id: str
    loan_id: str
    tenant_id: str
    customer_id: str
    currency: str
    principal_minor: int
    schedule: Sequence[tuple[int, date, int]]
    opened_on: date


@dataclass(frozen=True)
class RepaymentReceived:
    """Money received for an instalment; any excess goes to the next unpaid instalments."""

    event_id: str
    loan_id: str
    instalment_number: int
    amount_paid_minor: int
    paid_on: date


@dataclass(frozen=True)
class PaymentHoliday:
    """A payment holiday from ``start`` to ``end`` inclusive: ageing pauses meanwhile."""

    event_id: str
    loan_id: str
    start: date
    end: date
    observed_on: date | None = None


@dataclass(frozen=True)
class GuarantorStatus:
    """Whether the loan's guarantor is delinquent on their own obligations."""

    event_id: str
    loan_id: str
    delinquent: bool
    observed_on: date | None = None


@dataclass(frozen=True)
class CollateralRevalued:
    """A new valuation of the loan's collateral, minor units."""

    event_id: str
    loan_id: str
    value_minor: int
    observed_on: date | None = None


@dataclass(frozen=True)
class BehaviourSignal:
    """Post-disbursement spending-pattern risk in [0, 1] from the behaviour model."""

    event_id: str
    loan_id: str
    risk: float
    observed_on: date | None = None


@dataclass(frozen=True)
class DailyCheck:
    """The comprehensive daily check: ages every open loan to ``as_of``."""

    as_of: date

    @property
    def event_id(self) -> str:
        """Idempotency key; a check is a no-op once the loan is graded as of a later day."""
        return f"daily:{self.as_of}"


LoanEvent = (
    LoanOpened
    | RepaymentReceived
    | PaymentHoliday
    | GuarantorStatus
    | CollateralRevalued
    | BehaviourSignal
    | DailyCheck
)


# --- grading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoanAssessment:
    """A loan's grade on one day and the findings behind it (short, no personal data)."""

    on: date
    level: DelinquencyLevel
    days_past_due: int
    overdue_minor: int
    overdue_share: float
    route: Route
    findings: tuple[str, ...]


def instalment_days_past_due(
    instalment: Instalment, on: date, holidays: Iterable[Holiday], grace_days: int = 0
) -> int:
    """Days ``instalment`` is past due on ``on``: holiday days and the grace period not counted.

    A holiday pauses ageing, so an instalment falling due inside one starts counting (grace
    first) the day after it ends.
    """
    return _days_past_due(instalment, on, _merged(holidays), grace_days)


def _days_past_due(instalment: Instalment, on: date, merged: list[Holiday], grace: int) -> int:
    if instalment.outstanding_minor <= 0 or on <= instalment.due_date:
        return 0
    elapsed = (on - instalment.due_date).days - _holiday_days(instalment.due_date, on, merged)
    return max(0, elapsed - grace)


def assess(state: LoanState, policy: DelinquencyPolicy, on: date | None = None) -> LoanAssessment:
    """Grade ``state`` as of ``on`` (default ``state.as_of``).

    Level from the DPD bucket, then the amount rules, then guarantor and collateral raises,
    then the behaviour early warning; the order is the policy's documented one.
    """
    on = state.as_of if on is None else on
    holidays = _merged(state.holidays)
    late = [
        (inst, days)
        for inst in state.instalments
        if (days := _days_past_due(inst, on, holidays, policy.grace_days)) > 0
    ]
    dpd = max((days for _, days in late), default=0)
    overdue = sum(inst.outstanding_minor for inst, _ in late)
    share = overdue / state.principal_minor
    level = policy.level_for_days(dpd)
    findings: list[str] = []
    if late:
        oldest = min(late, key=lambda pair: pair[0].number)[0]
        findings.append(f"instalment {oldest.number} unpaid {dpd} day{'s' if dpd > 1 else ''}")
        amount = f"{share:.1%} of principal overdue"
        minor = share < policy.minor_amount_share and overdue < policy.minor_amount_minor
        if minor:
            level = level.shifted(-1, floor=DelinquencyLevel.MILD)
            amount += " (minor amount)"
        elif share > policy.major_amount_share:
            level = level.shifted(+1)
        findings.append(amount)
        paused_until = next((end for start, end in holidays if start <= on <= end), None)
        if paused_until is not None:
            findings.append(f"payment holiday until {paused_until}")
    raises = _risk_raises(state, policy)
    if raises:
        # Nothing to collect on a loan with nothing overdue: a warning, not a delinquency.
        level = DelinquencyLevel.EARLY_WARNING if level is _CURRENT else level.shifted(len(raises))
        findings += raises
    risk = state.behaviour_risk
    if level is _CURRENT and risk is not None and risk >= policy.early_warning_risk:
        level = DelinquencyLevel.EARLY_WARNING
        findings.append(f"behaviour risk {risk:.2f}")
    route = policy.route_for(level, dpd)
    if route == LEGAL_ROUTE:
        findings.append(f"legal action from {policy.legal_after_days} days past due")
    return LoanAssessment(on, level, dpd, overdue, share, route, tuple(findings))


def _risk_raises(state: LoanState, policy: DelinquencyPolicy) -> list[str]:
    raises = []
    if state.guarantor_delinquent:
        raises.append("guarantor delinquent")
    collateral = state.collateral_value_minor
    if collateral is not None:
        # The schedule does not split principal from interest: outstanding principal is
        # taken pro rata to what is still owed.
        owed = sum(i.outstanding_minor for i in state.instalments)
        scheduled = sum(i.amount_due_minor for i in state.instalments)
        outstanding = state.principal_minor * owed // scheduled
        if outstanding > policy.ltv_limit * collateral:
            ltv = f"{outstanding / collateral:.0%}" if collateral else "unbounded"
            raises.append(f"loan-to-value {ltv} above {policy.ltv_limit:.0%} limit")
    return raises


def _merged(holidays: Iterable[Holiday]) -> list[Holiday]:
    """Sorted holidays with overlapping or adjacent ones joined, so no day counts twice."""
    merged: list[Holiday] = []
    for start, end in sorted(holidays):
        if merged and start <= merged[-1][1] + timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _holiday_days(after: date, until: date, holidays: list[Holiday]) -> int:
    """Holiday days in (after, until]; ``holidays`` must be merged."""
    total = 0
    for start, end in holidays:
        first, last = max(start, after + timedelta(days=1)), min(end, until)
        total += max(0, (last - first).days + 1)
    return total


# --- opening and stepping ---------------------------------------------------------------


def open_loan(event: LoanOpened, policy: DelinquencyPolicy) -> LoanState:
    """The state of a newly disbursed loan, graded as of ``opened_on`` (so CURRENT)."""
    opened_on = _checked_opening(event)
    where = f"loan {event.loan_id}"
    instalments = _checked_schedule(event.schedule, opened_on, where)
    scheduled = sum(i.amount_due_minor for i in instalments)
    if scheduled < event.principal_minor:
        raise LoanEventError(
            f"{where}: the schedule totals {scheduled}, less than the principal "
            f"{event.principal_minor}"
        )
    state = _new_state(event, instalments, opened_on)
    # Graded like every later step, so state.level always equals assess(state).level.
    grade = assess(state, policy)
    return replace(state, level=grade.level, channel=grade.route.channel)


def opened_state_dict(event: LoanOpened, policy: DelinquencyPolicy) -> dict[str, Any]:
    """``open_loan(event, policy).to_dict()``, without building the state's instalments.

    Every disbursement opens its loan on the decision's hot path, where building a frozen
    Instalment per row only to serialise it at once cost more than all the rest of the
    opening. Same checks, same result: a schedule whose rows are valid and already in order
    (as the engine computes them) is written row by row; any other (rows out of order, a bad
    row, a short total) goes through open_loan, which sorts it or raises the error naming
    the problem.
    """
    opened_on = _checked_opening(event)
    rows = _rows_in_order(event.schedule, opened_on)
    if rows is None or sum(row[2] for row in rows) < event.principal_minor:
        return open_loan(event, policy).to_dict()
    # Graded without its instalments: every due date lies after opened_on (checked above),
    # so none is late, and nothing else of assess reads them at opening (no collateral yet).
    state = _new_state(event, (), opened_on)
    grade = assess(state, policy)
    stored = state.to_dict()
    stored.update(instalments=rows, level=grade.level.value, channel=grade.route.channel.value)
    return stored


def _checked_opening(event: LoanOpened) -> date:
    """The opening day, once the ids, currency and principal are checked."""
    for name in ("event_id", "loan_id", "tenant_id", "customer_id"):
        value = getattr(event, name)
        if not isinstance(value, str) or not value:
            raise LoanEventError(f"LoanOpened.{name} must be a non-empty string")
    where = f"loan {event.loan_id}"
    currency = event.currency
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isupper()):
        raise LoanEventError(f"{where}: currency must be an ISO 4217 code, got {currency!r}")
    _amount(event.principal_minor, f"{where}: principal_minor", low=1)
    return _day(event.opened_on, f"{where}: opened_on")


def _new_state(
    event: LoanOpened, instalments: tuple[Instalment, ...], opened_on: date
) -> LoanState:
    return LoanState(
        loan_id=event.loan_id,
        tenant_id=event.tenant_id,
        customer_id=event.customer_id,
        currency=event.currency,
        principal_minor=event.principal_minor,
        instalments=instalments,
        as_of=opened_on,
        applied_event_ids=(event.event_id,),
    )


def _rows_in_order(
    schedule: Sequence[tuple[int, date, int]], opened_on: date
) -> list[list[Any]] | None:
    """The stored rows of a valid schedule already in order; None for any other schedule."""
    rows: list[list[Any]] = []
    previous_number, previous_due = 0, opened_on
    for row in schedule:
        if not _valid_row(row):
            return None
        number, due, owed = row
        if number <= previous_number or due <= previous_due:
            return None
        rows.append([number, _iso_day(due), owed, 0])
        previous_number, previous_due = number, due
    return rows or None


def _checked_schedule(
    schedule: Sequence[tuple[int, date, int]], opened_on: date, where: str
) -> tuple[Instalment, ...]:
    """Instalments by number; due dates must rise strictly, all after the opening day."""
    if not schedule:
        raise LoanEventError(f"{where}: schedule is empty")
    # Runs for every disbursed loan: the messages are built only when a row is wrong.
    for row in schedule:
        if not _valid_row(row):
            _explain_bad_row(row, where)
    instalments: list[Instalment] = []
    previous_number, previous_due = 0, opened_on
    for number, due, owed in sorted(schedule, key=lambda row: row[0]):
        if number == previous_number:
            raise LoanEventError(f"{where}: instalment {number} appears twice in the schedule")
        if due <= previous_due:
            raise LoanEventError(
                f"{where}: instalment {number} is due {due}, not after the opening date and "
                "the previous instalment"
            )
        instalments.append(Instalment(number, due, owed))
        previous_number, previous_due = number, due
    return tuple(instalments)


def _valid_row(row: Any) -> bool:
    if len(row) != 3:
        return False
    number, due, owed = row
    return (
        type(number) is int
        and number >= 1
        and type(owed) is int
        and owed >= 1
        and isinstance(due, date)
        and not isinstance(due, datetime)
    )


def _explain_bad_row(row: Any, where: str) -> None:
    """Raise the LoanEventError that names what is wrong with a schedule row."""
    if len(row) != 3:
        raise LoanEventError(f"{where}: schedule rows are (number, due_date, amount_due_minor)")
    _amount(row[0], f"{where}: instalment number", low=1)
    _amount(row[2], f"{where}: instalment {row[0]} amount_due_minor", low=1)
    _day(row[1], f"{where}: instalment {row[0]} due_date")
    # _valid_row refuses int subclasses _amount accepts (IntEnum, say): name the type.
    raise LoanEventError(f"{where}: instalment {row[0]} has a non-integer number or amount")


def step(
    state: LoanState, event: LoanEvent, policy: DelinquencyPolicy
) -> tuple[LoanState, list[Escalation]]:
    """Apply one event and re-grade the loan; return the new state and any escalation.

    Redelivered events, daily checks for a day already graded, a repeated LoanOpened and
    anything after the loan closed return ``state`` itself and no escalation.
    """
    if state.closed:
        return state, []
    if isinstance(event, DailyCheck):
        if event.as_of <= state.as_of:
            return state, []
        return _regrade(state, event.as_of, policy, event_id=None)
    if event.event_id in state.applied_event_ids:
        return state, []
    if event.loan_id != state.loan_id:
        raise LoanEventError(f"event {event.event_id} is for loan {event.loan_id}, not this one")
    if isinstance(event, LoanOpened):
        return state, []  # opening twice, after the id left the applied window
    updated, happened_on = _apply(state, event)
    # Late-arriving facts are applied, but the grading day never moves backwards.
    return _regrade(updated, max(state.as_of, happened_on), policy, event.event_id)


def _apply(state: LoanState, event: LoanEvent) -> tuple[LoanState, date]:
    """The state with the event's fact recorded, and the day the fact happened."""
    where = f"loan {state.loan_id}: event {getattr(event, 'event_id', '?')}"
    observed = getattr(event, "observed_on", None)
    on = state.as_of if observed is None else _day(observed, f"{where} observed_on")
    if isinstance(event, RepaymentReceived):
        paid = _allocate(state.instalments, event.instalment_number, event.amount_paid_minor, where)
        return replace(state, instalments=paid), _day(event.paid_on, f"{where} paid_on")
    if isinstance(event, PaymentHoliday):
        start, end = _day(event.start, f"{where} start"), _day(event.end, f"{where} end")
        if end < start:
            raise LoanEventError(f"{where}: holiday ends {end}, before it starts {start}")
        return replace(state, holidays=tuple(sorted({*state.holidays, (start, end)}))), on
    if isinstance(event, GuarantorStatus):
        if not isinstance(event.delinquent, bool):
            raise LoanEventError(f"{where}: delinquent must be true or false")
        return replace(state, guarantor_delinquent=event.delinquent), on
    if isinstance(event, CollateralRevalued):
        _amount(event.value_minor, f"{where} value_minor", low=0)
        return replace(state, collateral_value_minor=event.value_minor), on
    if isinstance(event, BehaviourSignal):
        risk = event.risk
        if isinstance(risk, bool) or not isinstance(risk, int | float) or not 0 <= risk <= 1:
            raise LoanEventError(f"{where}: risk must be a number in [0, 1], got {risk!r}")
        return replace(state, behaviour_risk=float(risk)), on
    raise LoanEventError(f"{where}: unsupported event type {type(event).__name__}")


def _allocate(
    instalments: tuple[Instalment, ...], number: int, amount: int, where: str
) -> tuple[Instalment, ...]:
    """Pay ``amount`` into instalment ``number``, spilling the excess forward in order.

    What is left after the last instalment goes to earlier unpaid ones; money beyond the
    whole loan is not ours to allocate (the ledger refunds it) and is dropped here.
    """
    _amount(amount, f"{where} amount_paid_minor", low=0)
    index = next((k for k, i in enumerate(instalments) if i.number == number), None)
    if index is None:
        raise LoanEventError(f"{where}: the loan has no instalment {number!r}")
    paid = [i.amount_paid_minor for i in instalments]
    remaining = amount
    for k in [*range(index, len(instalments)), *range(index)]:
        take = min(remaining, instalments[k].amount_due_minor - paid[k])
        paid[k] += take
        remaining -= take
    return tuple(
        replace(inst, amount_paid_minor=p) if p != inst.amount_paid_minor else inst
        for inst, p in zip(instalments, paid, strict=True)
    )


def _regrade(
    state: LoanState, on: date, policy: DelinquencyPolicy, event_id: str | None
) -> tuple[LoanState, list[Escalation]]:
    """Grade as of ``on``, bump the version and queue an escalation if the grade changed."""
    applied = state.applied_event_ids
    if event_id is not None:
        applied = (*applied, event_id)[-MAX_APPLIED_EVENT_IDS:]
    if all(i.outstanding_minor == 0 for i in state.instalments):
        grade = LoanAssessment(on, _CURRENT, 0, 0, 0.0, _NO_ROUTE, ("loan fully repaid",))
        # A loan repaid on schedule never reached collections: nothing to tell them.
        transition = None if state.level is _CURRENT else Transition.RESOLVED
        closed = True
    else:
        grade = assess(state, policy, on)
        transition = _transition(state, grade)
        closed = False
    new = replace(
        state,
        as_of=on,
        level=grade.level,
        channel=grade.route.channel,
        applied_event_ids=applied,
        closed=closed,
        version=state.version + 1,
    )
    if transition is None:
        return new, []
    escalation = _escalation(state, new, transition, grade)
    new = replace(new, escalation_count=new.escalation_count + 1, outbox=(*new.outbox, escalation))
    return new, [escalation]


def _transition(before: LoanState, grade: LoanAssessment) -> Transition | None:
    # Handing a CRITICAL loan to legal action is a step up collectors must hear about,
    # although the level itself does not change.
    was = (before.level.rank, before.channel is CollectionChannel.LEGAL)
    now = (grade.level.rank, grade.route.channel is CollectionChannel.LEGAL)
    if now == was:
        return None
    if grade.level is _CURRENT:
        return Transition.CURED
    return Transition.ESCALATED if now > was else Transition.DEESCALATED


def _escalation(
    before: LoanState, after: LoanState, transition: Transition, grade: LoanAssessment
) -> Escalation:
    # Numbered by escalation, not by state version: clearing the outbox bumps the version,
    # and a replay that clears at other moments must still reproduce the same ids.
    ordinal = after.escalation_count + 1
    key = f"{after.loan_id}:{transition}:{grade.level}:{grade.on}:{ordinal}"
    reason = "; ".join(grade.findings) or "nothing overdue and no risk flags"
    return Escalation(
        event_id=str(uuid.uuid5(ESCALATION_NAMESPACE, key)),
        loan_id=after.loan_id,
        tenant_id=after.tenant_id,
        customer_id=after.customer_id,
        transition=transition,
        previous_level=before.level,
        level=grade.level,
        days_past_due=grade.days_past_due,
        overdue_amount_minor=grade.overdue_minor,
        currency=after.currency,
        overdue_share=grade.overdue_share,
        collection_mode=grade.route.mode,
        channel=grade.route.channel,
        reason=reason,
        as_of=grade.on,
    )


# --- outbox and records -----------------------------------------------------------------


def clear_outbox(state: LoanState, event_ids: Iterable[str]) -> LoanState:
    """The state without the escalations ``event_ids`` (emitted); unchanged if none match."""
    emitted = set(event_ids)
    pending = tuple(e for e in state.outbox if e.event_id not in emitted)
    if len(pending) == len(state.outbox):
        return state
    return replace(state, outbox=pending, version=state.version + 1)


# --- validation helpers -------------------------------------------------------------------


def _amount(value: Any, where: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LoanEventError(f"{where} must be an integer >= {low}, got {value!r}")


def _day(value: Any, where: str) -> date:
    # datetime is a date subclass, but mixing the two breaks day arithmetic.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise LoanEventError(f"{where} must be a date, got {type(value).__name__}")
    return value
