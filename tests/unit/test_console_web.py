"""The console's HTTP API with aiohttp's test client; events are fed in without a broker.

Publishing needs the broker (tests/integration/test_console.py); here the service is not
started, so a request that would publish answers 503, which shows what was validated first.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from greencredit.console.service import ALERTS, FEEDBACK, REVIEWS, ConsoleService
from greencredit.console.web import build_app, render_page
from greencredit.streams.codec import AvroCodec
from tests.unit.test_console_cases import alert, review
from tests.unit.test_console_lenders import CONSISTENT_GOAL, INCONSISTENT_GOAL

CODEC = AvroCodec()


def run(test: Callable[[TestClient, ConsoleService], Awaitable[None]]) -> None:
    """Run ``test`` against a console app whose service is fed by hand."""

    async def main() -> None:
        service = ConsoleService({"bootstrap.servers": "127.0.0.1:1"}, CODEC, max_cases=100)
        client = TestClient(TestServer(build_app(service, manage_service=False)))
        await client.start_server()
        try:
            await test(client, service)
        finally:
            await client.close()

    asyncio.run(main())


def feed(service: ConsoleService, topic: str, event: dict[str, Any]) -> None:
    service.ingest(topic, CODEC.encode(topic, event))


def test_cases_are_listed_newest_first_and_filtered():
    async def check(client: TestClient, service: ConsoleService) -> None:
        feed(service, ALERTS, alert(1, minutes=1, tenant_id="bank-a"))
        feed(service, ALERTS, alert(1, minutes=1, tenant_id="bank-a"))  # redelivered
        feed(
            service,
            ALERTS,
            alert(
                2,
                minutes=2,
                severity="CRITICAL",
                reasons=[{"code": "DEVICE_FARM", "contribution": 0.3}],
            ),
        )
        feed(service, REVIEWS, review(3, minutes=3))
        response = await client.get("/api/cases?status=all")
        assert response.status == 200
        body = await response.json()
        assert [c["case_id"] for c in body["cases"]] == ["review-app-00003", "alert-2", "alert-1"]
        assert body["facets"]["lenders"] == ["bank-a", "lender-green-bank"]
        filtered = await (await client.get("/api/cases?typology=DEVICE_FARM")).json()
        assert [c["case_id"] for c in filtered["cases"]] == ["alert-2"]
        by_lender = await (await client.get("/api/cases?lender=bank-a")).json()
        assert [c["case_id"] for c in by_lender["cases"]] == ["alert-1"]
        reviews = await (await client.get("/api/cases?severity=REVIEW")).json()
        assert [c["severity"] for c in reviews["cases"]] == ["REVIEW"]

    run(check)


@pytest.mark.parametrize(
    "query", ["severity=URGENT", "typology=nope", "status=x", "limit=0", "limit=a"]
)
def test_bad_filters_are_a_clear_400(query):
    async def check(client: TestClient, service: ConsoleService) -> None:
        response = await client.get(f"/api/cases?{query}")
        assert response.status == 400
        assert (await response.json())["error"]

    run(check)


def test_the_case_view_carries_the_decision_record_and_labels():
    async def check(client: TestClient, service: ConsoleService) -> None:
        event = review(5)
        feed(service, REVIEWS, event)
        body = await (await client.get("/api/cases/review-app-00005")).json()
        assert body["record"]["record_hash"] == event["record_hash"]
        assert body["record"]["indicators"] == event["indicators"]
        assert body["labels"] == {"fraud": "DEFAULTED", "legitimate": "REPAID"}
        assert body["labelled"] is None
        missing = await client.get("/api/cases/nope")
        assert missing.status == 404

    run(check)


def test_a_label_read_from_the_feedback_topic_closes_the_case():
    async def check(client: TestClient, service: ConsoleService) -> None:
        feed(service, ALERTS, alert(1))
        feed(
            service,
            FEEDBACK,
            {
                "event_id": str(uuid.uuid4()),
                "tenant_id": "lender-green-bank",
                "occurred_at": alert(1)["occurred_at"],
                "schema_version": 1,
                "subject_event_id": alert(1)["source_event_id"],
                "subject_type": "TRANSACTION",
                "label": "FRAUD",
                "analyst_id": "analyst-2",
                "case_id": "alert-1",
            },
        )
        body = await (await client.get("/api/cases/alert-1")).json()
        assert body["status"] == "closed" and body["labelled"]["analyst_id"] == "analyst-2"
        listed = await (await client.get("/api/cases")).json()  # default: every status
        assert [c["status"] for c in listed["cases"]] == ["closed"]
        assert (await (await client.get("/api/cases?status=open")).json())["cases"] == []

    run(check)


def test_label_requests_are_checked_before_anything_is_published():
    async def check(client: TestClient, service: ConsoleService) -> None:
        feed(service, ALERTS, alert(1))
        url = "/api/cases/alert-1/label"
        form = await client.post(url, data={"verdict": "fraud", "analyst_id": "a-1"})
        assert form.status == 415  # JSON only: a cross-site form cannot label
        garbled = await client.post(url, data=b"{", headers={"Content-Type": "application/json"})
        assert garbled.status == 400
        no_analyst = await client.post(url, json={"verdict": "fraud"})
        assert no_analyst.status == 400 and "analyst_id" in (await no_analyst.json())["error"]
        phone = await client.post(
            url, json={"verdict": "fraud"}, headers={"X-Analyst-Id": "13912345678"}
        )
        assert phone.status == 400 and "13912345678" not in await phone.text()
        verdict = await client.post(url, json={"verdict": "maybe", "analyst_id": "a-1"})
        assert verdict.status == 400
        unknown = await client.post(
            "/api/cases/nope/label", json={"verdict": "fraud", "analyst_id": "a-1"}
        )
        assert unknown.status == 404
        # Valid, but the broker is not there: 503 and the case stays open.
        valid = await client.post(url, json={"verdict": "fraud", "analyst_id": "a-1"})
        assert valid.status == 503
        assert service.cases.get("alert-1").status == "open"

    run(check)


def test_undecodable_messages_are_counted_not_fatal():
    async def check(client: TestClient, service: ConsoleService) -> None:
        service.ingest(ALERTS, b"\x01garbage")
        service.ingest(ALERTS, None)
        feed(service, ALERTS, alert(1))
        health = await (await client.get("/api/health")).json()
        assert health["reader"]["undecodable"] == 2 and health["reader"]["messages"] == 3
        assert health["cases"]["open"] == 1

    run(check)


def test_lender_page_api_reports_cr_live_and_refuses_inconsistent_matrices():
    async def check(client: TestClient, service: ConsoleService) -> None:
        lender = await (await client.get("/api/lenders/bank-x")).json()
        assert lender["config_version"] == 1 and not lender["published"]
        assert lender["report"]["consistent"]
        good = await client.post(
            "/api/lenders/bank-x/ahp", json={"matrices": {"goal": CONSISTENT_GOAL}}
        )
        assert good.status == 200 and (await good.json())["consistent"]
        bad = await (
            await client.post(
                "/api/lenders/bank-x/ahp", json={"matrices": {"goal": INCONSISTENT_GOAL}}
            )
        ).json()
        assert not bad["consistent"] and bad["nodes"]["goal"]["cr"] >= 0.1
        refused = await client.post(
            "/api/lenders/bank-x/config",
            json={"base_version": 1, "matrices": {"goal": INCONSISTENT_GOAL}},
        )
        assert refused.status == 422
        assert "node 'goal'" in (await refused.json())["error"]
        stale = await client.post(
            "/api/lenders/bank-x/config",
            json={"base_version": 7, "matrices": {"goal": CONSISTENT_GOAL}},
        )
        assert stale.status == 409
        unknown = await client.post("/api/lenders/bank-x/ahp", json={"matrices": {"x": [[1]]}})
        assert unknown.status == 422

    run(check)


def test_pages_are_static_with_a_strict_content_security_policy():
    async def check(client: TestClient, service: ConsoleService) -> None:
        feed(service, ALERTS, alert(1, customer_id="<script>alert(1)</script>"))
        for path in ("/cases", "/cases/alert-1", "/lenders", "/lenders/bank-x"):
            response = await client.get(path)
            assert response.status == 200
            html = await response.text()
            assert "<script>alert(1)</script>" not in html  # data only ever comes as JSON
            policy = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        for name in ("common.js", "cases.js", "case.js", "lenders.js", "lender.js"):
            script = await client.get(f"/static/{name}")
            assert script.status == 200 and "innerHTML" not in await script.text()
        home = await client.get("/", allow_redirects=False)
        assert home.status == 302 and home.headers["Location"] == "/cases"
        listed = await (await client.get("/api/cases")).json()
        assert listed["cases"][0]["customer_id"] == "<script>alert(1)</script>"  # JSON, as text

    run(check)


def test_every_page_is_the_shared_layout_around_its_own_body_and_script():
    for name, title in (("cases", "Cases"), ("case", "Case"), ("lenders", "Lenders")):
        html = render_page(name, title)
        assert html.startswith("<!doctype html>") and html.endswith("</html>\n")
        assert f"<title>{title} · greencredit console</title>" in html
        assert f'<script src="/static/{name}.js" defer></script>' in html
        assert "<!--" not in html  # every marker of the layout was filled
