"""Post-loan management end to end: disbursement -> missed instalments -> automatic, then
manual escalation -> cure, on the real embedded stack with a worker process; the daily
check is driven by clock ticks (the engine's injectable clock)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tests.factories import application, example, native
from tests.integration.conftest import publish, read_all, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _tick(as_of: date) -> dict:
    event = example("loan_clock")
    event.update(
        event_id=str(uuid.uuid4()),
        as_of=as_of.isoformat(),
        occurred_at=datetime.now(UTC).isoformat(),
    )
    return native("greencredit.v1.LoanClockTick", event)


def _repayment(loan_id: str, instalment: dict, paid: int, paid_on: date) -> dict:
    event = example("repayment")
    event.update(
        event_id=str(uuid.uuid4()),
        loan_id=loan_id,
        instalment_number=instalment["number"],
        due_date=instalment["due_date"],
        amount_due_minor=instalment["amount_due_minor"],
        amount_paid_minor=paid,
        paid_at=f"{paid_on.isoformat()}T10:00:00+00:00",
        occurred_at=f"{paid_on.isoformat()}T10:00:00+00:00",
    )
    return native("greencredit.v1.Repayment", event)


def _escalations(stack, loan_id, count, timeout=60.0):
    return wait_for(
        stack,
        "greencredit.delinquency-escalations",
        lambda e: e["loan_id"] == loan_id,
        count,
        timeout=timeout,
    )


def test_missed_instalments_escalate_then_cure(fresh_stack, start_worker):
    worker = start_worker("post-loan")
    worker.wait_assigned()
    app = application(900)
    publish(fresh_stack, "greencredit.loan-applications", [app])
    [loan] = wait_for(
        fresh_stack, "greencredit.disbursements", lambda d: d["application_id"] == "app-00900", 1
    )
    loan_id, schedule = loan["loan_id"], loan["schedule"]
    first_due = schedule[0]["due_date"]

    contact = example("customer_contact_update")
    contact.update(
        event_id=str(uuid.uuid4()),
        customer_id=app["customer_id"],
        phone="13700001111",
        email="new.address@example.org",
    )
    publish(
        fresh_stack,
        "greencredit.customer-updates",
        [native("greencredit.v1.CustomerContactUpdate", contact)],
    )

    # Paid on time: the daily check on the due date changes nothing.
    publish(fresh_stack, "greencredit.loan-clock", [_tick(first_due - timedelta(days=1))])
    # Five days late: automatic collection.
    publish(fresh_stack, "greencredit.loan-clock", [_tick(first_due + timedelta(days=5))])
    [mild] = _escalations(fresh_stack, loan_id, 1)
    assert (mild["transition"], mild["previous_level"]) == ("ESCALATED", "CURRENT")
    assert mild["collection_mode"] == "AUTOMATIC"
    assert mild["days_past_due"] == 5
    assert mild["contact_phone_masked"] == "137****1111"
    # The same day again: no second escalation (transitions only).
    publish(fresh_stack, "greencredit.loan-clock", [_tick(first_due + timedelta(days=5))])

    # Sixty-five days late, two instalments unpaid: manual collection.
    publish(fresh_stack, "greencredit.loan-clock", [_tick(first_due + timedelta(days=65))])
    escalations = _escalations(fresh_stack, loan_id, 2)
    severe = escalations[-1]
    assert severe["transition"] == "ESCALATED"
    assert severe["collection_mode"] == "MANUAL"
    assert severe["channel"] in ("PHONE_CALL", "COLLECTION_AGENCY")

    # The borrower pays everything due: cured, back to no collection.
    paid_on = first_due + timedelta(days=66)
    due_now = [i for i in schedule if i["due_date"] <= paid_on]
    repayments = [_repayment(loan_id, i, i["amount_due_minor"], paid_on) for i in due_now]
    publish(fresh_stack, "greencredit.repayments", repayments)
    # Paying instalment 1 first leaves 2 overdue (a de-escalation); paying 2 cures.
    escalations = wait_for(
        fresh_stack,
        "greencredit.delinquency-escalations",
        lambda e: e["loan_id"] == loan_id and e["transition"] == "CURED",
        1,
    )
    cured = escalations[-1]
    assert (cured["transition"], cured["level"]) == ("CURED", "CURRENT")
    assert cured["collection_mode"] == "NONE"
    before_replay = [
        r.event.value["event_id"]
        for r in read_all(fresh_stack, "greencredit.delinquency-escalations")
        if r.event and r.event.value["loan_id"] == loan_id
    ]

    # Replaying the same repayments and ticks creates no new escalation.
    publish(fresh_stack, "greencredit.repayments", repayments)
    publish(fresh_stack, "greencredit.loan-clock", [_tick(paid_on)])
    marker = application(901)
    publish(fresh_stack, "greencredit.loan-applications", [marker])
    wait_for(fresh_stack, "greencredit.decisions", lambda e: e["application_id"] == "app-00901", 1)
    import time

    time.sleep(3)
    final = [
        r.event.value
        for r in read_all(fresh_stack, "greencredit.delinquency-escalations")
        if r.event and r.event.value["loan_id"] == loan_id
    ]
    print([(e["transition"], e["previous_level"], e["level"]) for e in final])
    assert [e["event_id"] for e in final] == before_replay  # nothing new after the replay
    transitions = [e["transition"] for e in final]
    assert transitions[:2] == ["ESCALATED", "ESCALATED"] and transitions[-1] == "CURED"
    assert len(set(before_replay)) == len(before_replay)
    for event in final:  # no raw PII in what collection systems receive
        assert "13700001111" not in str(event) and "new.address" not in str(event)

    # The example collection consumer routes them: robot first, then people, then close.
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "collection_consumer.py")],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": fresh_stack.kafka, "IDLE_SECONDS": "5"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stdout.splitlines() if loan_id in line]
    queues = [line.split("]")[0].strip("[ ") for line in lines]
    assert queues[:2] == ["robot", "agents"] and queues[-1] == "close"
    assert len(queues) == len(final)


def test_workers_publish_one_daily_tick(fresh_stack, start_worker):
    first = start_worker("ticker-a", DAILY_CHECK_POLL_S="1")
    second = start_worker("ticker-b", DAILY_CHECK_POLL_S="1")
    first.wait_assigned()
    second.wait_assigned()
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    wait_for(fresh_stack, "greencredit.loan-clock", lambda e: e["as_of"] == today, 1)
    import time

    time.sleep(4)  # both workers polled several times meanwhile
    ticks = [
        r.event.value
        for r in read_all(fresh_stack, "greencredit.loan-clock")
        if r.event and r.event.value["as_of"] == today
    ]
    assert len(ticks) == 1  # SET NX per day: one tick however many workers poll
