"""The console over HTTP against the real embedded broker (and a real worker for learning).

The console runs in-process under aiohttp's test client with its real Kafka reader and
producer; events go in with the project's publisher and come out of the topics as a
consumer would read them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import redis
from aiohttp.test_utils import TestClient, TestServer

from greencredit.agents.lender_configs import config_from_event
from greencredit.console.service import ConsoleService
from greencredit.console.web import build_app
from greencredit.infra.endpoints import Endpoints
from greencredit.streams.codec import AvroCodec
from tests.factories import application, example, fraud_alert, native
from tests.integration.conftest import publish, read_all, wait_for

CODEC = AvroCodec()
WAIT_S = 45.0
CONSISTENT_GOAL = [[1, 2, 3, 5], ["1/2", 1, 2, 3], ["1/3", "1/2", 1, 2], ["1/5", "1/3", "1/2", 1]]
INCONSISTENT_GOAL = [[1, 5, "1/9", 5], ["1/5", 1, 5, 5], [9, "1/5", 1, 5], ["1/5", "1/5", "1/5", 1]]


def with_console(endpoints: Endpoints, test: Callable[[TestClient], Awaitable[None]]) -> None:
    """Run ``test`` against a console reading and writing the stack's topics."""

    async def main() -> None:
        service = ConsoleService({"bootstrap.servers": endpoints.kafka}, CODEC, max_cases=1000)
        client = TestClient(TestServer(build_app(service)))
        await client.start_server()
        try:
            await until(client, "/api/health", lambda h: h["reader"]["assigned"])
            await test(client)
        finally:
            await client.close()

    asyncio.run(main())


async def until(
    client: TestClient, path: str, predicate: Callable[[Any], bool], timeout: float = WAIT_S
) -> Any:
    """GET ``path`` until ``predicate`` holds for its JSON body; fail with the last body."""
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        response = await client.get(path)
        body = await response.json()
        if response.status == 200 and predicate(body):
            return body
        await asyncio.sleep(0.3)
    raise AssertionError(f"{path}: condition not met after {timeout}s; last answer {body}")


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


def test_cases_are_listed_labelled_once_and_closed_from_the_topic(fresh_stack):
    tenant = f"bank-{uuid.uuid4().hex[:8]}"
    alert, review = fraud_alert(tenant, 1), review_event(tenant, 2)
    state: dict[str, Any] = {}

    async def label_them(client: TestClient) -> None:
        await asyncio.to_thread(publish, fresh_stack, "greencredit.fraud-alerts", [alert])
        await asyncio.to_thread(publish, fresh_stack, "greencredit.reviews", [review])
        listed = await until(client, f"/api/cases?lender={tenant}", lambda b: len(b["cases"]) == 2)
        assert [c["case_id"] for c in listed["cases"]] == [
            f"review-app-{tenant}-2",
            f"alert-{tenant}-1",
        ]
        takeovers = await (
            await client.get(f"/api/cases?lender={tenant}&typology=ACCOUNT_TAKEOVER")
        ).json()
        assert [c["case_id"] for c in takeovers["cases"]] == [alert["alert_id"]]

        url = f"/api/cases/{alert['alert_id']}/label"
        headers = {"X-Analyst-Id": "analyst-017"}
        first = await client.post(url, json={"verdict": "fraud"}, headers=headers)
        assert first.status == 200, await first.text()
        first_body = await first.json()
        assert first_body["published"] and first_body["label"] == "FRAUD"
        again = await (await client.post(url, json={"verdict": "fraud"}, headers=headers)).json()
        assert not again["published"] and again["event_id"] == first_body["event_id"]
        other = await client.post(url, json={"verdict": "legitimate"}, headers=headers)
        assert other.status == 409
        legit = await client.post(
            f"/api/cases/review-app-{tenant}-2/label",
            json={"verdict": "legitimate", "analyst_id": "analyst-018"},
        )
        assert (await legit.json())["label"] == "REPAID"
        state["event_id"] = first_body["event_id"]

    with_console(fresh_stack, label_them)

    feedback = feedback_for(fresh_stack, alert["alert_id"])
    assert len(feedback) == 1  # the double click did not teach the model twice
    [event] = feedback
    assert event["event_id"] == state["event_id"]
    assert (event["label"], event["subject_type"]) == ("FRAUD", "TRANSACTION")
    assert event["subject_event_id"] == alert["source_event_id"]
    assert event["analyst_id"] == "analyst-017" and event["tenant_id"] == tenant
    [review_label] = feedback_for(fresh_stack, f"review-app-{tenant}-2")
    assert review_label["subject_type"] == "APPLICATION"
    assert review_label["subject_event_id"] == review["application_event_id"]

    async def reopen(client: TestClient) -> None:
        # A console started later rebuilds the cases, closed, from the topics alone.
        body = await until(
            client,
            f"/api/cases?lender={tenant}&status=closed",
            lambda b: len(b["cases"]) == 2,
        )
        assert {c["label"] for c in body["cases"]} == {"FRAUD", "REPAID"}

    with_console(fresh_stack, reopen)


def test_lender_judgements_inconsistent_refused_consistent_published(fresh_stack):
    tenant = f"bank-{uuid.uuid4().hex[:8]}"

    async def edit(client: TestClient) -> None:
        base = f"/api/lenders/{tenant}"
        lender = await (await client.get(base)).json()
        assert lender["config_version"] == 1 and not lender["published"]
        live = await (
            await client.post(f"{base}/ahp", json={"matrices": {"goal": INCONSISTENT_GOAL}})
        ).json()
        assert not live["consistent"] and live["nodes"]["goal"]["cr"] >= 0.1
        refused = await client.post(
            f"{base}/config", json={"base_version": 1, "matrices": {"goal": INCONSISTENT_GOAL}}
        )
        assert refused.status == 422
        assert "matrix[" in (await refused.json())["error"]
        published = await client.post(
            f"{base}/config", json={"base_version": 1, "matrices": {"goal": CONSISTENT_GOAL}}
        )
        assert published.status == 200, await published.text()
        assert (await published.json())["config_version"] == 2
        stale = await client.post(
            f"{base}/config", json={"base_version": 1, "matrices": {"goal": CONSISTENT_GOAL}}
        )
        assert stale.status == 409
        now = await (await client.get(base)).json()
        assert now["config_version"] == 2 and now["published"]

    with_console(fresh_stack, edit)

    configs = [
        r.event.value
        for r in read_all(fresh_stack, "greencredit.lender-config")
        if r.event is not None and r.event.value["tenant_id"] == tenant
    ]
    assert [c["config_version"] for c in configs] == [2]  # the refused matrix never left
    config = config_from_event(configs[0])  # what the worker will apply
    goal = next(n for n in configs[0]["nodes"] if n["name"] == "goal")
    assert goal["matrix"][0] == [1.0, 2.0, 3.0, 5.0]
    assert config.ahp.node_results["goal"].cr < 0.1


def test_a_label_from_the_console_teaches_the_running_worker(fresh_stack, start_worker):
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

        async def confirm(console: TestClient) -> None:
            await until(console, f"/api/cases/{case_id}", lambda b: b["status"] == "open")
            response = await console.post(
                f"/api/cases/{case_id}/label",
                json={"verdict": "fraud", "analyst_id": "analyst-017"},
            )
            assert response.status == 200, await response.text()

        with_console(fresh_stack, confirm)

        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and client.get(f"gc:case:{case_id}") is None:
            time.sleep(0.3)
        assert client.get(f"gc:case:{case_id}") == b"closed:DEFAULTED"
        state = json.loads(client.get(model_key))
        assert state["n_learned"] == learned_before + 1
    finally:
        client.close()
