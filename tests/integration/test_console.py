"""The console over HTTP against the real embedded broker, PostgreSQL and a real worker.

The console runs in-process under aiohttp's test server with its real Kafka reader and
producer and its own database; events go in with the project's publisher and come out of
the topics as a consumer would read them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from greencredit.agents.lender_configs import config_from_event
from greencredit.console.auth import ANALYST, POLICY_APPROVER, POLICY_MAKER, SUPERVISOR
from greencredit.infra.endpoints import Endpoints
from tests.conftest import fresh_database
from tests.factories import application, example, fraud_alert, native
from tests.integration.conftest import publish, read_all, wait_for
from tests.integration.console_harness import WAIT_S, ensure_users, running_console

CONSISTENT_GOAL = [[1, 2, 3, 5], ["1/2", 1, 2, 3], ["1/3", "1/2", 1, 2], ["1/5", "1/3", "1/2", 1]]
INCONSISTENT_GOAL = [[1, 5, "1/9", 5], ["1/5", 1, 5, 5], [9, "1/5", 1, 5], ["1/5", "1/5", "1/5", 1]]
GREEN_BANK = "lender-green-bank"  # the tenant of the example application


@pytest.fixture(scope="module")
def db_url(postgres: str) -> str:
    return fresh_database(postgres)


def review_event(tenant: str, n: int) -> dict[str, Any]:
    event = example("decision")
    event.update(
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        application_id=f"app-{tenant}-{n}",
        application_event_id=str(uuid.uuid4()),
        decision="REVIEW",
        occurred_at=datetime.now(UTC).isoformat(),
    )
    return native("greencredit.v1.ApplicationDecision", event)


def feedback_for(endpoints: Endpoints, case_id: str) -> list[dict[str, Any]]:
    return [
        r.event.value
        for r in read_all(endpoints, "greencredit.analyst-feedback")
        if r.event is not None and r.event.value["case_id"] == case_id
    ]


def configs_of(endpoints: Endpoints, tenant: str) -> list[dict[str, Any]]:
    return [
        r.event.value
        for r in read_all(endpoints, "greencredit.lender-config")
        if r.event is not None and r.event.value["tenant_id"] == tenant
    ]


def test_cases_are_ingested_once_worked_labelled_as_the_user_and_survive_a_restart(
    fresh_stack, db_url
):
    tenant = f"bank-{uuid.uuid4().hex[:8]}"
    alert, review = fraud_alert(tenant, 1), review_event(tenant, 2)
    early_alert = fraud_alert(tenant, 3)
    early_label = native(
        "greencredit.v1.AnalystFeedback",
        {
            **example("analyst_feedback"),
            "event_id": str(uuid.uuid4()),
            "tenant_id": tenant,
            "subject_event_id": early_alert["source_event_id"],
            "subject_type": "TRANSACTION",
            "label": "NOT_FRAUD",
            "analyst_id": "analyst-elsewhere",
            "case_id": None,
        },
    )
    users = (("ana", [ANALYST], [tenant]), ("sam", [SUPERVISOR], [tenant]))
    review_id = f"review-app-{tenant}-2"
    state: dict[str, Any] = {}

    async def first() -> None:
        async with running_console(fresh_stack, db_url) as console:
            await ensure_users(console, *users)
            # The alert twice (at-least-once delivery), a label before its case.
            publish(fresh_stack, "greencredit.fraud-alerts", [alert, alert])
            publish(fresh_stack, "greencredit.reviews", [review])
            publish(fresh_stack, "greencredit.analyst-feedback", [early_label])
            publish(fresh_stack, "greencredit.fraud-alerts", [early_alert])
            ana = await console.client("ana")
            listed = await ana.until(
                f"/api/cases?lender={tenant}&status=all", lambda b: len(b["cases"]) == 3
            )
            by_id = {c["case_id"]: c for c in listed["cases"]}
            assert by_id[early_alert["alert_id"]]["status"] == "closed"
            assert by_id[early_alert["alert_id"]]["resolution"] == "NOT_FRAUD"

            url = f"/api/cases/{alert['alert_id']}/label"
            # A typed analyst id is ignored: the label carries the signed-in user.
            status, first_label = await ana.call(
                "POST", url, {"verdict": "fraud", "analyst_id": "somebody-else"}
            )
            assert status == 200, first_label
            assert first_label["published"] and first_label["label"] == "FRAUD"
            again = (await ana.call("POST", url, {"verdict": "fraud"}))[1]
            assert not again["published"] and again["event_id"] == first_label["event_id"]
            assert (await ana.call("POST", url, {"verdict": "legitimate"}))[0] == 409
            state["event_id"] = first_label["event_id"]

            review_url = f"/api/cases/{review_id}"
            assert (await ana.call("POST", f"{review_url}/status", {"status": "in_progress"}))[
                0
            ] == 200
            status, worked = await ana.call(
                "POST", f"{review_url}/comments", {"text": "called 13912345678, no answer"}
            )
            assert status == 200
            assert worked["owner"] == "ana" and worked["status"] == "in_progress"
            comment = next(e for e in worked["timeline"] if e["action"] == "comment")
            assert "13912345678" not in comment["detail"]["text"]  # masked
            assert comment["actor"] == "ana"

    asyncio.run(first())

    [event] = feedback_for(fresh_stack, alert["alert_id"])  # the repeat was not published
    assert event["event_id"] == state["event_id"]
    assert event["analyst_id"] == "ana" and event["tenant_id"] == tenant
    assert (event["label"], event["subject_type"]) == ("FRAUD", "TRANSACTION")
    assert event["subject_event_id"] == alert["source_event_id"]

    async def after_restart() -> None:
        # A new console re-reads every topic from its start: nothing is duplicated or lost.
        async with running_console(fresh_stack, db_url) as console:
            sam = await console.client("sam")
            await sam.until("/api/health", lambda h: h["reader"]["messages"] >= 5)
            await asyncio.sleep(1.0)  # let the reader go past what it re-read
            listed = (await sam.call("GET", f"/api/cases?lender={tenant}&status=all"))[1]
            assert len(listed["cases"]) == 3
            labelled = (await sam.call("GET", f"/api/cases/{alert['alert_id']}"))[1]
            assert labelled["labelled"]["analyst_id"] == "ana"
            actions = [e["action"] for e in labelled["timeline"]]
            assert actions == ["opened", "labelled"]
            worked = (await sam.call("GET", f"/api/cases/{review_id}"))[1]
            assert worked["owner"] == "ana" and worked["status"] == "in_progress"
            assert [e["action"] for e in worked["timeline"]] == [
                "opened",
                "status",
                "comment",
            ]
            audit = await console.service.audit_page(None, 100)
            assert any(e["action"] == "label" and e["actor"] == "ana" for e in audit)

    asyncio.run(after_restart())


def test_policy_is_published_only_on_a_second_persons_approval_and_reaches_the_worker(
    fresh_stack, db_url, start_worker
):
    worker = start_worker("policy")
    worker.wait_assigned()
    publish(fresh_stack, "greencredit.loan-applications", [application(8001)])
    first = wait_for(
        fresh_stack, "greencredit.decisions", lambda e: e["application_id"] == "app-08001", 1
    )[0]
    base_version = first["ahp_config_version"]
    state: dict[str, Any] = {}

    async def four_eyes() -> None:
        async with running_console(fresh_stack, db_url) as console:
            await ensure_users(
                console,
                ("maker", [POLICY_MAKER, POLICY_APPROVER], [GREEN_BANK]),
                ("checker", [POLICY_APPROVER], [GREEN_BANK]),
            )
            maker, checker = await console.client("maker"), await console.client("checker")
            base = f"/api/lenders/{GREEN_BANK}"
            await maker.until(base, lambda b: b["config_version"] == base_version)
            live = (
                await maker.call("POST", f"{base}/ahp", {"matrices": {"goal": INCONSISTENT_GOAL}})
            )[1]
            assert not live["consistent"] and live["nodes"]["goal"]["cr"] >= 0.1
            refused = await maker.call(
                "POST",
                f"{base}/proposals",
                {"base_version": base_version, "matrices": {"goal": INCONSISTENT_GOAL}},
            )
            assert refused[0] == 422 and "matrix[" in refused[1]["error"]
            status, proposal = await maker.call(
                "POST",
                f"{base}/proposals",
                {
                    "base_version": base_version,
                    "matrices": {"goal": CONSISTENT_GOAL},
                    "thresholds": {"approve_below": 0.0},  # no automatic approval any more
                },
            )
            assert status == 201, proposal
            assert proposal["proposed_by"] == "maker" and proposal["cr_total"] < 0.1
            assert configs_of(fresh_stack, GREEN_BANK) == []  # nothing published yet
            approve = f"/api/proposals/{proposal['id']}/approve"
            assert (await maker.call("POST", approve, {}))[0] == 403  # not their own
            status, published = await checker.call("POST", approve, {})
            assert status == 200, published
            assert published["config_version"] == base_version + 1
            assert (published["proposed_by"], published["approved_by"]) == ("maker", "checker")
            assert (await checker.call("POST", approve, {}))[0] == 409  # once
            # A proposal made on the old version can no longer be approved.
            stale = await maker.call(
                "POST",
                f"{base}/proposals",
                {"base_version": base_version, "matrices": {"goal": CONSISTENT_GOAL}},
            )
            assert stale[0] == 409
            state["version"] = published["config_version"]
            audit = await console.service.audit_page(None, 50)
            approval = next(e for e in audit if e["action"] == "approval")
            assert approval["actor"] == "checker" and approval["detail"]["proposed_by"] == "maker"

    asyncio.run(four_eyes())

    [config] = configs_of(fresh_stack, GREEN_BANK)
    assert (config["proposed_by"], config["approved_by"]) == ("maker", "checker")
    assert config["approve_below"] == 0.0
    assert config_from_event(config).ahp.node_results["goal"].cr < 0.1
    # The running worker applies it: later decisions record the new version.
    for n in range(8002, 8040):
        publish(fresh_stack, "greencredit.loan-applications", [application(n)])
        decision = wait_for(
            fresh_stack,
            "greencredit.decisions",
            lambda e, n=n: e["application_id"] == f"app-{n:05d}",
            1,
        )[0]
        if decision["ahp_config_version"] == state["version"]:
            assert decision["decision"] != "APPROVE"
            break
    else:
        raise AssertionError("the approved config never reached the worker")


def test_a_label_from_the_console_teaches_the_running_worker(fresh_stack, db_url, start_worker):
    worker = start_worker("console-learner")
    worker.wait_assigned()
    # A wrong ID check digit forces REVIEW.
    app = application(7001, applicant={"id_card_number": "110105199003071234"})
    publish(fresh_stack, "greencredit.loan-applications", [app])
    wait_for(fresh_stack, "greencredit.reviews", lambda e: e["application_id"] == "app-07001", 1)
    case_id = "review-app-07001"
    model_key = f"gc:model:application_lr:{app['tenant_id']}"
    client = redis.Redis.from_url(fresh_stack.redis)
    try:
        before = client.get(model_key)
        learned_before = json.loads(before)["n_learned"] if before else 1000  # bootstrap

        async def confirm() -> None:
            async with running_console(fresh_stack, db_url) as console:
                await ensure_users(console, ("learner-analyst", [ANALYST], [GREEN_BANK]))
                analyst = await console.client("learner-analyst")
                await analyst.until(f"/api/cases/{case_id}", lambda b: b["status"] == "open")
                status, body = await analyst.call(
                    "POST", f"/api/cases/{case_id}/label", {"verdict": "fraud"}
                )
                assert status == 200, body

        asyncio.run(confirm())

        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and client.get(f"gc:case:{case_id}") is None:
            time.sleep(0.3)
        assert client.get(f"gc:case:{case_id}") == b"closed:DEFAULTED"
        state = json.loads(client.get(model_key))
        assert state["n_learned"] == learned_before + 1
    finally:
        client.close()
