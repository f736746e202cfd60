"""More of the agents' processing on the in-memory stores: replays, lender views, diversion."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

from greencredit.agents.applications import process_applications
from greencredit.agents.batch import record_acknowledged
from greencredit.agents.devices import process_device_signals
from greencredit.agents.lender_configs import process_lender_configs
from greencredit.agents.transactions import process_transactions
from greencredit.models.delinquency import DelinquencyPolicy
from greencredit.models.lender_view import LenderView
from tests.factories import example, native, transaction
from tests.processors.support import (
    APPLICATIONS,
    NOW,
    TENANT,
    batch,
    lender_event,
    memory_worker,
    messages,
)

T_NIGHT = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)  # 02:30 in Shanghai


def test_a_replayed_batch_emits_nothing_new() -> None:
    async def main():
        worker = memory_worker()
        batch_messages = messages(APPLICATIONS, batch(6))
        first = await process_applications(worker.applications, batch_messages, NOW)
        # What finish_batch records once the broker acknowledged the outputs.
        await record_acknowledged(worker.books, first)
        again = await process_applications(worker.applications, batch_messages, NOW)
        return first, again

    first, again = asyncio.run(main())
    assert len([o for o in first.outputs if o.topic == "greencredit.decisions"]) == 10
    assert again.outputs == [] and again.done_event_ids == []


def test_done_applications_drop_out_and_the_rest_count_each_application_once() -> None:
    """Done markers are read with the velocity: done ones are neither recorded nor decided."""
    records = batch(6)

    async def main():
        worker = memory_worker()
        done = await process_applications(worker.applications, messages(APPLICATIONS, records[:3]))
        await record_acknowledged(worker.books, done)
        mixed = await process_applications(worker.applications, messages(APPLICATIONS, records))
        alone = await process_applications(
            memory_worker().applications, messages(APPLICATIONS, records)
        )
        return done, mixed, alone

    done, mixed, alone = asyncio.run(main())
    first_ids = [r["event_id"] for r in records[:3]]
    assert done.done_event_ids == first_ids
    assert mixed.done_event_ids == [r["event_id"] for r in records[3:]]
    # The others are decided as if the whole batch had come at once: nothing counted twice.
    decided = {o.record["application_event_id"]: o.record for o in mixed.outputs
               if o.topic == "greencredit.decisions"}  # fmt: skip
    reference = {o.record["application_event_id"]: o.record for o in alone.outputs
                 if o.topic == "greencredit.decisions"}  # fmt: skip
    assert set(decided) == {r["event_id"] for r in records[3:]}
    for event_id, record in decided.items():
        assert record["features"] == reference[event_id]["features"]
        assert record["decision"] == reference[event_id]["decision"]


def test_the_lender_caches_parse_a_lender_document_once_per_version() -> None:
    """One view per stored version: the same object until a newer version is stored."""
    event = lender_event()
    policy = DelinquencyPolicy().to_dict()
    policy["grace_days"] = 3
    event["delinquency_policy"] = json.dumps(policy)
    newer = {**event, "event_id": str(uuid.uuid4()), "config_version": event["config_version"] + 1}

    async def main():
        worker = memory_worker()
        await process_lender_configs(worker.configs, messages("greencredit.lender-config", [event]))
        first = (await worker.lenders.lender_views([TENANT]))[TENANT]
        worker.lenders._views_read_at.clear()  # the refresh interval passed
        again = (await worker.lenders.lender_views([TENANT]))[TENANT]
        stored = (await worker.state.configs([TENANT]))[TENANT]
        await process_lender_configs(worker.configs, messages("greencredit.lender-config", [newer]))
        cached = (await worker.lenders.lender_views([TENANT]))[TENANT]
        worker.lenders._views_read_at.clear()
        return first, again, stored, cached, (await worker.lenders.lender_views([TENANT]))[TENANT]

    first, again, stored, cached, latest = asyncio.run(main())
    assert first == LenderView.from_document(stored)
    assert again is first and cached is first  # not parsed again, not re-read before due
    assert first.delinquency.grace_days == 3 and len(first.funders) == 2
    assert latest.version == first.version + 1 and latest.delinquency.grace_days == 3


def test_green_loan_money_spent_elsewhere_raises_a_diversion_alert() -> None:
    [ev] = [a for a in batch(30) if a["purpose"] == "ELECTRIC_VEHICLE"][:1]

    async def main():
        worker = memory_worker()
        decided = await process_applications(worker.applications, messages(APPLICATIONS, [ev]), NOW)
        [loan] = [o.record for o in decided.outputs if o.topic == "greencredit.disbursements"]
        await record_acknowledged(worker.books, decided)  # the broker acknowledged the outputs
        spend = transaction(
            1,
            tenant_id=TENANT,
            loan_id=loan["loan_id"],
            amount_minor=ev["requested_amount_minor"] * 3 // 10,  # 30 %: above the 20 % tolerance
            mcc="7995",
            occurred_at=NOW.isoformat(),
        )
        return await process_transactions(
            worker.transactions, messages("greencredit.transactions", [spend]), NOW
        )

    result = asyncio.run(main())
    alerts = [o.record for o in result.outputs if o.topic == "greencredit.fraud-alerts"]
    assert [a["reasons"][0]["code"] for a in alerts if a["source"] == "GREEN_PURPOSE"] == [
        "DIVERSION_ALERT"
    ]


def _spending(n: int) -> list[dict]:
    """One card's burst at night at new merchants, then a drained account: alerts."""
    out = []
    for i in range(n):
        out.append(
            transaction(
                100 + i,
                tenant_id=TENANT,
                merchant_id=f"m-{i}",
                amount_minor=2_000 if i < n - 3 else 900_000,
                occurred_at=(T_NIGHT + timedelta(minutes=i)).isoformat(),
            )
        )
    return out


def test_transactions_are_done_only_once_their_outputs_are_acknowledged() -> None:
    batch_messages = messages("greencredit.transactions", _spending(24))

    async def main():
        worker = memory_worker()
        first = await process_transactions(worker.transactions, batch_messages, NOW)
        # Redelivered before the broker acknowledged: processed again, the same outputs.
        again = await process_transactions(worker.transactions, batch_messages, NOW)
        for task in again.after_emit:  # what finish_batch runs after the acks
            await task()
        after_ack = await process_transactions(worker.transactions, batch_messages, NOW)
        return first, again, after_ack

    first, again, after_ack = asyncio.run(main())
    alerts = [o.record for o in first.outputs if o.topic == "greencredit.fraud-alerts"]
    assert len(alerts) >= 3 and set(first.scored) == {a["source_event_id"] for a in alerts}
    assert [o.record for o in again.outputs] == [o.record for o in first.outputs]
    assert after_ack.outputs == [] and after_ack.after_emit == [] and not after_ack.scored


def _signal(n: int, customer: str, minutes: int, **flags) -> dict:
    event = example("device_signal")
    event.update(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"signal-{n}")),
        tenant_id=TENANT,
        device_id="dev-farm-7",
        customer_id=customer,
        occurred_at=(T_NIGHT + timedelta(minutes=minutes)).isoformat(),
        sim_change_age_hours=9000,
        **flags,
    )
    return native("greencredit.v1.DeviceSignal", event)


def test_a_device_finding_alerts_once_and_a_new_one_alerts_again() -> None:
    farm = [_signal(i, f"cust-farm-{i}", i) for i in range(4)]  # the 3rd customer: a farm
    later = [_signal(9, "cust-farm-0", 30, is_emulator=True)]
    topic = "greencredit.device-signals"

    async def main():
        worker = memory_worker()
        first = await process_device_signals(worker.devices, messages(topic, farm), NOW)
        replay = await process_device_signals(worker.devices, messages(topic, farm), NOW)
        emulator = await process_device_signals(worker.devices, messages(topic, later), NOW)
        return first, replay, emulator

    first, replay, emulator = asyncio.run(main())

    def reasons(result):
        return [[r["code"] for r in o.record["reasons"]] for o in result.outputs]

    assert reasons(first) == [["DEVICE_FARM"]]
    assert first.outputs[0].record["source_event_id"] == farm[2]["event_id"]
    # The batch again (its alert may not have been sent before a crash): the signal that
    # holds the finding alerts again, with the same alert id; no other signal does.
    assert [o.record["event_id"] for o in replay.outputs] == [first.outputs[0].record["event_id"]]
    # New: EMULATOR; the farm is still on. Equal weights list by code.
    assert reasons(emulator) == [["DEVICE_FARM", "EMULATOR"]]
