"""Loans open in the worker that sends their disbursement, once the broker acknowledged it.

No round trip through Kafka: the loan is opened from the record just sent. The claim kept
with a pending disbursement makes a redelivery send the same records and open the same
loan, even when the redelivery would decide otherwise.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from greencredit.agents.applications import process_applications
from greencredit.agents.batch import BatchResult, record_acknowledged
from greencredit.agents.lender_configs import process_lender_configs
from greencredit.models.delinquency import LoanState
from greencredit.models.green import default_taxonomy
from tests.processors.support import (
    APPLICATIONS,
    NOW,
    TENANT,
    MemoryWorker,
    batch,
    lender_event,
    memory_worker,
    messages,
)


def _on(result: BatchResult, topic: str) -> list[dict[str, Any]]:
    return [o.record for o in result.outputs if o.topic == f"greencredit.{topic}"]


async def _configured() -> MemoryWorker:
    worker = memory_worker()
    await process_lender_configs(
        worker.configs, messages("greencredit.lender-config", [lender_event()])
    )
    return worker


def test_acknowledged_disbursements_open_their_loans_once() -> None:
    async def main():
        worker = await _configured()
        first = await process_applications(
            worker.applications, messages(APPLICATIONS, batch(20)), NOW
        )
        before = dict(worker.loans.loans)
        await record_acknowledged(worker.books, first)
        opened = dict(worker.loans.loans)
        await record_acknowledged(worker.books, first)  # acknowledged twice: nothing changes
        return first, before, opened, worker

    first, before, opened, worker = asyncio.run(main())
    sent = _on(first, "disbursements")
    assert sent and before == {}  # nothing opens before the broker acknowledged
    assert set(opened) == {d["loan_id"] for d in sent}
    assert worker.loans.loans == opened
    for record in sent:
        state = LoanState.from_dict(opened[record["loan_id"]])
        assert state.principal_minor == record["amount_minor"]
        assert [(i.number, i.due_date, i.amount_due_minor) for i in state.instalments] == [
            (i["number"], i["due_date"], i["amount_due_minor"]) for i in record["schedule"]
        ]
        assert state.applied_event_ids == (record["event_id"],)
    index = worker.loans.index[TENANT]
    assert set(index) == set(opened)
    green = {d["loan_id"] for d in sent if default_taxonomy().is_green(d["purpose"])}
    assert green and green != set(opened)  # both kinds were disbursed
    assert set(worker.state.watches) == green


def test_a_redelivery_sends_a_pending_claim_as_claimed_even_if_it_decides_otherwise() -> None:
    """Claimed, maybe sent, then a crash before the acks: the claim's records go out again."""
    apps = batch(20)

    async def main():
        worker = await _configured()
        first = await process_applications(worker.applications, messages(APPLICATIONS, apps), NOW)
        # Crash before the acks. Meanwhile the lender tightened its policy: decided now,
        # nothing would be approved.
        strict = lender_event()
        strict.update(
            event_id=str(uuid.uuid4()),
            config_version=strict["config_version"] + 1,
            approve_below=0.0,
        )
        await process_lender_configs(
            worker.configs, messages("greencredit.lender-config", [strict])
        )
        worker.lenders._views_read_at.clear()
        again = await process_applications(worker.applications, messages(APPLICATIONS, apps), NOW)
        await record_acknowledged(worker.books, again)
        fresh = await process_applications(
            worker.applications, messages(APPLICATIONS, batch(40)[20:]), NOW
        )
        return first, again, fresh, worker

    first, again, fresh, worker = asyncio.run(main())
    claimed = _on(first, "disbursements")
    assert claimed and _on(fresh, "disbursements") == []  # the new policy approves nothing
    assert _on(again, "disbursements") == claimed
    by_app = {d["application_id"]: d for d in _on(again, "decisions")}
    for record in _on(first, "decisions"):
        if record["decision"] == "APPROVE":
            assert by_app[record["application_id"]] == record  # the claim's decision
        else:
            assert by_app[record["application_id"]]["decision"] != "APPROVE"
    assert set(worker.loans.loans) == {d["loan_id"] for d in claimed}


def test_a_sent_disbursement_is_not_sent_again() -> None:
    apps = batch(12)

    async def main():
        worker = await _configured()
        first = await process_applications(worker.applications, messages(APPLICATIONS, apps), NOW)
        await record_acknowledged(worker.books, first)
        worker.state.done.clear()  # markers expired: replayed
        again = await process_applications(worker.applications, messages(APPLICATIONS, apps), NOW)
        return first, again

    first, again = asyncio.run(main())
    assert _on(first, "disbursements")
    assert _on(again, "disbursements") == [] and again.opened_loans == []
    assert len(_on(again, "decisions")) == len(_on(first, "decisions"))
