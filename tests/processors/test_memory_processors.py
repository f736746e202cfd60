"""More of the agents' processing on the in-memory stores: replays, lender views, diversion."""

from __future__ import annotations

import asyncio
import json

from greencredit.agents.applications import process_applications
from greencredit.agents.lender_configs import process_lender_configs
from greencredit.agents.transactions import process_transactions
from greencredit.models.delinquency import DelinquencyPolicy
from greencredit.models.lender_view import LenderViews
from tests.factories import transaction
from tests.processors.support import (
    APPLICATIONS,
    NOW,
    TENANT,
    batch,
    lender_event,
    memory_engine,
    messages,
)


def test_a_replayed_batch_emits_nothing_new() -> None:
    async def main():
        engine = memory_engine()
        batch_messages = messages(APPLICATIONS, batch(6))
        first = await process_applications(engine, batch_messages, NOW)
        # What finish_batch records once the broker acknowledged the outputs.
        await engine.store.record_outcomes(first.disbursed, first.scored, first.done_event_ids)
        again = await process_applications(engine, batch_messages, NOW)
        return first, again

    first, again = asyncio.run(main())
    assert len([o for o in first.outputs if o.topic == "greencredit.decisions"]) == 10
    assert again.outputs == [] and again.done_event_ids == []


def test_one_lender_view_holds_what_the_engine_parses_twice() -> None:
    """LenderViews gives the config and extensions the engine's two caches give today."""
    event = lender_event()
    policy = DelinquencyPolicy().to_dict()
    policy["grace_days"] = 3
    event["delinquency_policy"] = json.dumps(policy)

    async def main():
        engine = memory_engine()
        await process_lender_configs(engine, messages("greencredit.lender-config", [event]))
        configs = await engine.lender_configs([TENANT])
        extensions = await engine.lender_extensions([TENANT])
        stored = await engine.store.configs([TENANT])
        return configs[TENANT], extensions[TENANT], stored[TENANT]

    config, extensions, document = asyncio.run(main())
    view = LenderViews().update(TENANT, document)
    assert view.config == config
    assert (view.delinquency, view.pricing, view.funders) == (
        extensions.delinquency,
        extensions.pricing,
        extensions.funders,
    )
    assert view.delinquency.grace_days == 3 and len(view.funders) == 2


def test_green_loan_money_spent_elsewhere_raises_a_diversion_alert() -> None:
    [ev] = [a for a in batch(30) if a["purpose"] == "ELECTRIC_VEHICLE"][:1]

    async def main():
        engine = memory_engine()
        decided = await process_applications(engine, messages(APPLICATIONS, [ev]), NOW)
        [loan] = [o.record for o in decided.outputs if o.topic == "greencredit.disbursements"]
        await engine.store.start_purpose_watch(loan)  # the after-emit step
        spend = transaction(
            1,
            tenant_id=TENANT,
            loan_id=loan["loan_id"],
            amount_minor=ev["requested_amount_minor"] * 3 // 10,  # 30 %: above the 20 % tolerance
            mcc="7995",
            occurred_at=NOW.isoformat(),
        )
        return await process_transactions(
            engine, messages("greencredit.transactions", [spend]), NOW
        )

    result = asyncio.run(main())
    alerts = [o.record for o in result.outputs if o.topic == "greencredit.fraud-alerts"]
    assert [a["reasons"][0]["code"] for a in alerts if a["source"] == "GREEN_PURPOSE"] == [
        "DIVERSION_ALERT"
    ]
