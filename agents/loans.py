"""Post-loan management: loans opened, aged and escalated.

The worker that sends a disbursement opens its loan (agents/applications.py with
:func:`loan_opening`, once the broker acknowledged it: no round trip through Kafka);
repayments, servicing events and the daily check age them;
level changes become escalations for the collection systems. The loan's state lives in
Redis (infra/loan_store.py) and changes only through the pure `models.delinquency.step`.
Several agents may touch one loan, so each write is a compare-and-set on the state's
version: the loser re-reads and re-applies. Escalations go through the state's outbox:
written with the state, emitted, then cleared — a crash in between re-emits the same
deterministic ids instead of losing a transition.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from greencredit.infra.engine_store import Disbursed
from greencredit.infra.loan_store import LoanOpening
from greencredit.infra.stores import EngineStateStore, LoanStoreProtocol
from greencredit.models.delinquency import (
    BehaviourSignal,
    CollateralRevalued,
    DailyCheck,
    DelinquencyPolicy,
    GuarantorStatus,
    LoanOpened,
    LoanState,
    PaymentHoliday,
    RepaymentReceived,
    clear_outbox,
    opened_state_dict,
    step,
)
from greencredit.models.green import IntegrityState, default_taxonomy
from greencredit.streams import topics
from greencredit.streams.masking import mask_email, mask_phone, pseudonym
from greencredit.streams.records import escalation_record

from .batch import BatchResult
from .lender_cache import LenderCaches
from .messages import Decoder, Incoming, Outgoing, dead_letter
from .resources import Resources
from .retry import Retry

__all__ = [
    "ContactDeps",
    "LoanDeps",
    "LoanOpeningDeps",
    "disbursed_marker",
    "loan_opening",
    "process_clock",
    "process_contacts",
    "process_loan_events",
    "process_loan_openings",
]

log = logging.getLogger(__name__)
_CAS_ATTEMPTS = 8
_PAGE = 256
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class LoanDeps:
    """What ageing loans uses: the loan store and the lenders' delinquency policies."""

    decoder: Decoder
    retry: Retry
    loans: LoanStoreProtocol
    lenders: LenderCaches

    @classmethod
    def of(cls, r: Resources) -> LoanDeps:
        """The worker's part for the repayment, servicing and clock processors."""
        return cls(r.decoder, r.retry, r.loans, r.lenders)


@dataclass(frozen=True)
class LoanOpeningDeps:
    """What opening deferred loans uses: loans, policies, and the claims to mark sent."""

    decoder: Decoder
    retry: Retry
    state: EngineStateStore  # disbursement claims marked sent
    loans: LoanStoreProtocol
    lenders: LenderCaches

    @classmethod
    def of(cls, r: Resources) -> LoanOpeningDeps:
        """The worker's part for this processor."""
        return cls(r.decoder, r.retry, r.state, r.loans, r.lenders)


@dataclass(frozen=True)
class ContactDeps:
    """What keeping customer contacts uses: the loan store (masked values and pseudonyms)."""

    decoder: Decoder
    retry: Retry
    loans: LoanStoreProtocol
    pii_key: bytes

    @classmethod
    def of(cls, r: Resources) -> ContactDeps:
        """The worker's part for this processor."""
        return cls(r.decoder, r.retry, r.loans, r.pii_key)


def loan_opening(disbursement: Mapping[str, Any], policy: DelinquencyPolicy) -> LoanOpening:
    """The loan a disbursement record opens (the worker that sends it opens it, see README)."""
    opened_on = disbursement["occurred_at"].astimezone(UTC).date()
    state = opened_state_dict(
        LoanOpened(
            event_id=disbursement["event_id"],
            loan_id=disbursement["loan_id"],
            tenant_id=disbursement["tenant_id"],
            customer_id=disbursement["customer_id"],
            currency=disbursement["currency"],
            principal_minor=disbursement["amount_minor"],
            schedule=[
                (i["number"], i["due_date"], i["amount_due_minor"])
                for i in disbursement["schedule"]
            ],
            opened_on=opened_on,
        ),
        policy,
    )
    return LoanOpening(
        tenant_id=state["tenant_id"],
        loan_id=state["loan_id"],
        state=state,
        opened_day=(opened_on - _EPOCH).days,
        term_days=len(state["instalments"]) * 31,
    )


def disbursed_marker(disbursement: Mapping[str, Any]) -> Disbursed:
    """What record_outcomes marks for a sent disbursement: sent, and a green loan's watch."""
    if not default_taxonomy().is_green(disbursement["purpose"]):
        return Disbursed(disbursement["application_id"], disbursement["event_id"])
    watch = IntegrityState(
        disbursement["loan_id"], disbursement["purpose"], int(disbursement["amount_minor"])
    )
    term = int(disbursement["term_months"])
    return Disbursed(disbursement["application_id"], disbursement["event_id"], watch, term)


async def process_loan_openings(deps: LoanOpeningDeps, messages: Sequence[Incoming]) -> BatchResult:
    """Open the loans of disbursements sent while Redis was down (see finish_batch).

    While Redis is still down this raises RedisUnavailable and the runtime waits it out:
    only this stream stops, and nothing is committed past what is not opened yet.
    """
    result = BatchResult()
    records = [r for _, r in deps.decoder.decode_all(messages, result.outputs)]
    if not records:
        return result
    tenants = {r["tenant_id"] for r in records}
    views = await deps.lenders.lender_views(tenants)
    openings = [loan_opening(r, views[r["tenant_id"]].delinquency) for r in records]
    await deps.retry("open_loans", partial(deps.loans.open, openings))
    marks = [disbursed_marker(r) for r in records]
    await deps.retry("record_outcomes", partial(deps.state.record_outcomes, marks, {}, []))
    return result


def _domain_event(topic: str, event: dict[str, Any]) -> tuple[str, Any] | None:
    """(loan_id, delinquency event) for one decoded input; None when it is not for a loan."""
    if topic == topics.REPAYMENTS.name:
        paid_on = (event["paid_at"] or event["occurred_at"]).date()
        return event["loan_id"], RepaymentReceived(
            event_id=event["event_id"],
            loan_id=event["loan_id"],
            instalment_number=event["instalment_number"],
            amount_paid_minor=event["amount_paid_minor"],
            paid_on=paid_on,
        )
    kind = event["kind"]
    loan_id: str = event["loan_id"]
    if kind == "PAYMENT_HOLIDAY" and event["holiday_start"] and event["holiday_end"]:
        return loan_id, PaymentHoliday(
            event["event_id"], loan_id, event["holiday_start"], event["holiday_end"]
        )
    if kind in ("GUARANTOR_DELINQUENT", "GUARANTOR_CURED"):
        return loan_id, GuarantorStatus(event["event_id"], loan_id, kind == "GUARANTOR_DELINQUENT")
    if kind == "COLLATERAL_REVALUED" and event["collateral_value_minor"] is not None:
        return loan_id, CollateralRevalued(
            event["event_id"], loan_id, event["collateral_value_minor"]
        )
    if kind == "BEHAVIOUR_RISK" and event["behaviour_risk"] is not None:
        return loan_id, BehaviourSignal(event["event_id"], loan_id, float(event["behaviour_risk"]))
    return None


async def apply_to_loans(
    deps: LoanDeps,
    events: Sequence[tuple[str, Any]],
    result: BatchResult,
) -> None:
    """Apply (loan_id, event) in order with compare-and-set; queue the escalations."""
    pending: dict[str, list[Any]] = {}
    for loan_id, event in events:
        pending.setdefault(loan_id, []).append(event)
    changed: dict[str, LoanState] = {}
    for _ in range(_CAS_ATTEMPTS):
        if not pending:
            break
        stored = await deps.retry("load_loans", partial(deps.loans.load, list(pending)))
        tenants = {s["tenant_id"] for s in stored.values()}
        policies = {t: v.delinquency for t, v in (await deps.lenders.lender_views(tenants)).items()}
        states = _applied(pending, stored, policies)
        updates = [
            (loan_id, expected, state.to_dict(), len(state.instalments) * 31)
            for loan_id, (expected, state) in states.items()
        ]
        written = await deps.retry("loan_cas", partial(deps.loans.compare_and_set, updates))
        won = {loan_id for (loan_id, *_), ok in zip(updates, written, strict=True) if ok}
        changed.update((loan_id, states[loan_id][1]) for loan_id in won)
        # Written, or nothing to write (unknown loan, already applied): done with them.
        pending = {i: evs for i, evs in pending.items() if i in states and i not in won}
    if pending:
        raise RuntimeError(f"loan updates kept conflicting: {sorted(pending)[:5]}")
    await _queue_escalations(deps, changed, result)


def _applied(
    pending: Mapping[str, list[Any]],
    stored: Mapping[str, Mapping[str, Any]],
    policies: Mapping[str, DelinquencyPolicy],
) -> dict[str, tuple[int, LoanState]]:
    """loan_id -> (the version read, the state after its events), for states that changed."""
    out = {}
    for loan_id, loan_events in pending.items():
        if loan_id not in stored:
            log.warning("event for unknown loan %s skipped", loan_id)
            continue
        state = LoanState.from_dict(stored[loan_id])
        expected = state.version
        for event in loan_events:
            state, _ = step(state, event, policies[state.tenant_id])
        if state.version != expected:
            out[loan_id] = (expected, state)
    return out


async def _queue_escalations(
    deps: LoanDeps, changed: dict[str, LoanState], result: BatchResult
) -> None:
    opened = [
        (s.tenant_id, s.loan_id, (s.as_of - _EPOCH).days) for s in changed.values() if not s.closed
    ]
    closed = [(s.tenant_id, s.loan_id) for s in changed.values() if s.closed]
    await deps.retry("loan_index", lambda: deps.loans.index_open(opened))
    if closed:
        await deps.retry("loan_close", lambda: deps.loans.close(closed))
    with_outbox = [s for s in changed.values() if s.outbox]
    if not with_outbox:
        return
    contacts = await deps.retry(
        "contacts", lambda: deps.loans.contacts(s.customer_id for s in with_outbox)
    )
    now = datetime.now(UTC)
    for state in with_outbox:
        contact = contacts.get(state.customer_id, {})
        for escalation in state.outbox:
            record = escalation_record(escalation, now)
            record["contact_phone_masked"] = contact.get("phone_masked")
            record["contact_email_masked"] = contact.get("email_masked")
            result.outputs.append(
                Outgoing(topics.DELINQUENCY_ESCALATIONS.name, state.loan_id, record)
            )
        result.after_emit.append(_clearer(deps, state.loan_id, [e.event_id for e in state.outbox]))


def _clearer(deps: LoanDeps, loan_id: str, ids: list[str]) -> Any:
    async def clear() -> None:
        for _ in range(_CAS_ATTEMPTS):
            stored = (await deps.loans.load([loan_id])).get(loan_id)
            if stored is None:
                return
            state = LoanState.from_dict(stored)
            cleared = clear_outbox(state, ids)
            if cleared == state:
                return
            [ok] = await deps.loans.compare_and_set(
                [(loan_id, state.version, cleared.to_dict(), len(state.instalments) * 31)]
            )
            if ok:
                return

    return clear


async def process_loan_events(deps: LoanDeps, messages: Sequence[Incoming]) -> BatchResult:
    """Disbursements, repayments and servicing events -> loan states -> escalations."""
    result = BatchResult()
    events = []
    for message, event in deps.decoder.decode_all(messages, result.outputs):
        mapped = _domain_event(message.topic, event)
        if mapped is None:
            result.outputs.append(
                dead_letter(
                    message,
                    ValueError(
                        f"{event.get('kind', 'event')} is missing the fields its kind needs"
                    ),
                )
            )
        else:
            events.append(mapped)
    if events:
        await apply_to_loans(deps, events, result)
    return result


async def process_clock(deps: LoanDeps, messages: Sequence[Incoming]) -> BatchResult:
    """The daily check: age every open loan of every lender as of the tick's date."""
    result = BatchResult()
    days = sorted({e["as_of"] for _, e in deps.decoder.decode_all(messages, result.outputs)})
    for as_of in days:
        for tenant in await deps.loans.tenants_with_open_loans():
            start = 0
            while True:
                page = await deps.loans.open_loans(tenant, start, _PAGE)
                if not page:
                    break
                await apply_to_loans(deps, [(i, DailyCheck(as_of)) for i in page], result)
                start += len(page)
    return result


async def process_contacts(deps: ContactDeps, messages: Sequence[Incoming]) -> BatchResult:
    """Customer contact updates: keep masked values (and pseudonyms) for escalations."""
    result = BatchResult()
    contacts: dict[str, dict[str, str]] = {}
    for _, event in deps.decoder.decode_all(messages, result.outputs):
        fields = contacts.setdefault(event["customer_id"], {})
        if event.get("phone"):
            fields["phone_masked"] = mask_phone(event["phone"])
            fields["phone_ref"] = pseudonym(event["phone"], deps.pii_key, "phone")
        if event.get("email"):
            fields["email_masked"] = mask_email(event["email"])
            fields["email_ref"] = pseudonym(event["email"], deps.pii_key, "email")
    contacts = {k: v for k, v in contacts.items() if v}
    await deps.retry("contacts", lambda: deps.loans.put_contacts(contacts))
    return result


def register(app: Any, topics_by_name: dict[str, Any], runtime: Any) -> None:
    """Attach the post-loan agents and the daily tick to the Faust app."""
    for topic, name, process, deps_of in (
        (topics.LOAN_OPENINGS, "loan_openings", process_loan_openings, LoanOpeningDeps.of),
        (topics.REPAYMENTS, "repayments", process_loan_events, LoanDeps.of),
        (topics.LOAN_SERVICING, "loan_servicing", process_loan_events, LoanDeps.of),
        (topics.LOAN_CLOCK, "loan_clock", process_clock, LoanDeps.of),
        (topics.CUSTOMER_UPDATES, "customer_updates", process_contacts, ContactDeps.of),
    ):
        runtime.attach(app, topics_by_name[topic.name], name, process, deps_of, quiet=True)

    if not runtime.settings.daily_check_enabled:
        return

    @app.timer(interval=runtime.settings.daily_check_poll_s)
    async def daily_tick() -> None:
        await runtime.daily_tick()
