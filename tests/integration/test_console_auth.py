"""Console sign-in, sessions, CSRF, throttling, roles and tenant isolation over HTTP.

Real PostgreSQL (the session's embedded server, a database of this module's own); cases are
ingested straight into the store, so no broker is needed for what is refused here.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from greencredit.console.auth import ADMIN, ANALYST, POLICY_APPROVER, POLICY_MAKER, SUPERVISOR
from greencredit.console.cases import case_from_alert
from greencredit.console.web import WebSettings
from tests.conftest import fresh_database
from tests.factories import fraud_alert
from tests.integration.console_harness import ensure_users, running_console, short_policy

BANK_A, BANK_B = "bank-a", "bank-b"
CASE_ROLES = (ANALYST, SUPERVISOR)
POLICY_ROLES = (POLICY_MAKER, POLICY_APPROVER)
CONSISTENT_GOAL = [[1, 2, 3, 5], ["1/2", 1, 2, 3], ["1/3", "1/2", 1, 2], ["1/5", "1/3", "1/2", 1]]
ONE_ROLE_USERS = [
    ("ana", [ANALYST], [BANK_A]),
    ("sam", [SUPERVISOR], [BANK_A]),
    ("pam", [POLICY_MAKER], [BANK_A]),
    ("pat", [POLICY_APPROVER], [BANK_A]),
    ("adm", [ADMIN], [BANK_A]),
    ("bob", [ANALYST, SUPERVISOR, POLICY_MAKER, POLICY_APPROVER], [BANK_B]),
    ("all", [ANALYST, SUPERVISOR, POLICY_MAKER, POLICY_APPROVER, ADMIN], [BANK_A]),
]
USER_OF_ROLE = {roles[0]: name for name, roles, _ in ONE_ROLE_USERS[:5]}

# Every API endpoint behind sign-in, with a body it accepts and the roles that may call it.
ENDPOINTS = [
    ("GET", "/api/cases", None, CASE_ROLES),
    ("GET", "/api/cases/{case}", None, CASE_ROLES),
    ("POST", "/api/cases/{case}/label", {"verdict": "fraud"}, CASE_ROLES),
    ("POST", "/api/cases/{case}/assign", {"owner": None}, CASE_ROLES),
    ("POST", "/api/cases/{case}/status", {"status": "in_progress"}, CASE_ROLES),
    ("POST", "/api/cases/{case}/comments", {"text": "seen"}, CASE_ROLES),
    ("GET", "/api/lenders", None, POLICY_ROLES),
    ("GET", "/api/lenders/{tenant}", None, POLICY_ROLES),
    ("POST", "/api/lenders/{tenant}/ahp", {"matrices": {}}, POLICY_ROLES),
    ("GET", "/api/lenders/{tenant}/proposals", None, POLICY_ROLES),
    (
        "POST",
        "/api/lenders/{tenant}/proposals",
        {"base_version": 1, "matrices": {"goal": CONSISTENT_GOAL}},
        (POLICY_MAKER,),
    ),
    ("POST", "/api/proposals/{proposal}/approve", {}, (POLICY_APPROVER,)),
    ("POST", "/api/proposals/{proposal}/reject", {}, (POLICY_APPROVER,)),
    ("GET", "/api/audit", None, (ADMIN,)),
    ("GET", "/api/users", None, (ADMIN,)),
    ("POST", "/api/users/{user}", {"disabled": False}, (ADMIN,)),
]


@pytest.fixture(scope="module")
def db_url(postgres: str) -> str:
    return fresh_database(postgres)


def run(test) -> None:
    asyncio.run(test())


async def _seed(console) -> dict[str, str]:
    """Users, a case of each lender, and a pending proposal of lender A."""
    await ensure_users(console, *ONE_ROLE_USERS)
    ids = {}
    for tenant in (BANK_A, BANK_B):
        alert = fraud_alert(tenant, int(uuid.uuid4().int % 10**6))
        await console.service.cases.ingest_case(case_from_alert(alert))
        ids[tenant] = alert["alert_id"]
    pam = await console.client("pam")
    status, proposal = await pam.call(
        "POST",
        f"/api/lenders/{BANK_A}/proposals",
        {"base_version": 1, "matrices": {"goal": CONSISTENT_GOAL}},
    )
    assert status == 201, proposal
    ids["proposal"] = str(proposal["id"])
    return ids


def _path(template: str, ids: dict[str, str], tenant: str = BANK_A) -> str:
    return template.format(case=ids[tenant], tenant=tenant, proposal=ids["proposal"], user="ana")


def test_sign_in_sets_a_strict_httponly_cookie_and_sign_out_ends_the_session(stack, db_url):
    async def test() -> None:
        async with running_console(stack, db_url) as console:
            await ensure_users(console, *ONE_ROLE_USERS)
            client = await console.client()
            assert (await client.call("GET", "/api/cases"))[0] == 401
            status, body = await client.sign_in("ana", "not the password at all")
            assert status == 401 and "wrong user name or password" in body["error"]
            async with client.http.post(
                console.server.make_url("/api/session"),
                json={"username": "ana", "password": "correct horse battery staple"},
            ) as response:
                assert response.status == 200
                cookie = response.headers["Set-Cookie"]
                client.csrf = (await response.json())["csrf_token"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert "Secure" not in cookie  # plain HTTP here; Secure over TLS
            status, me = await client.call("GET", "/api/session")
            assert me["user"] == {
                "username": "ana",
                "roles": ["analyst"],
                "lenders": [BANK_A],
                "disabled": False,
            }
            assert (await client.call("DELETE", "/api/session", csrf=False))[0] == 403
            assert (await client.call("DELETE", "/api/session"))[0] == 200
            assert (await client.call("GET", "/api/cases"))[0] == 401
            # Pages send a signed-out browser to the sign-in page.
            async with client.http.get(
                console.server.make_url("/cases"), allow_redirects=False
            ) as page:
                assert page.status == 302 and page.headers["Location"].startswith("/login")

    run(test)


def test_an_idle_session_expires_and_a_disabled_user_is_signed_out(stack, db_url):
    async def test() -> None:
        async with running_console(stack, db_url, session_idle=timedelta(seconds=1)) as console:
            await ensure_users(console, *ONE_ROLE_USERS)
            idle = await console.client("ana")
            await asyncio.sleep(1.5)
            assert (await idle.call("GET", "/api/cases"))[0] == 401
        async with running_console(stack, db_url) as console:
            sam = await console.client("sam")
            assert (await sam.call("GET", "/api/cases"))[0] == 200
            await console.service.users.update("sam", actor="test", disabled=True)
            assert (await sam.call("GET", "/api/cases"))[0] == 401
            assert (await (await console.client()).sign_in("sam"))[0] == 401
            await console.service.users.update("sam", actor="test", disabled=False)

    run(test)


def test_repeated_failed_sign_ins_are_throttled_per_user_and_per_address(stack, db_url):
    async def test() -> None:
        async with running_console(stack, db_url, **short_policy()) as console:
            victim = f"victim-{uuid.uuid4().hex[:6]}"
            await ensure_users(console, (victim, [ANALYST], [BANK_A]))
            guesser = await console.client()
            for n in range(3):
                assert (await guesser.sign_in(victim, f"guess number {n:04d}"))[0] == 401
            # The limit is reached: even the right password is refused for now.
            status, body = await guesser.sign_in(victim)
            assert status == 429, body
            assert "too many failed sign-ins" in body["error"]
            # Per address: failures spread over other names still add up (5 from here).
            for n in range(2):
                await guesser.sign_in(f"nobody-{n}", "wrong password here")
            other = f"other-{uuid.uuid4().hex[:6]}"
            await ensure_users(console, (other, [ANALYST], [BANK_A]))
            assert (await guesser.sign_in(other))[0] == 429
            page = await console.service.audit_page(None, 20)
            actions = [e["action"] for e in page]
            assert actions.count("sign-in-failed") >= 5 and "sign-in-throttled" in actions

    run(test)


def test_every_state_changing_request_without_the_csrf_token_is_refused(stack, db_url):
    async def test() -> None:
        async with running_console(stack, db_url) as console:
            ids = await _seed(console)
            client = await console.client("all")  # every role: only CSRF can refuse
            unsafe = sorted(
                {
                    (route.method, route.resource.canonical)
                    for route in console.server.app.router.routes()
                    if route.method not in ("GET", "HEAD") and route.resource is not None
                }
            )
            unsafe.remove(("POST", "/api/session"))  # sign-in: there is no session yet
            assert len(unsafe) == 10
            for method, template in unsafe:
                path = template.format(
                    case_id=ids[BANK_A],
                    tenant=BANK_A,
                    proposal_id=ids["proposal"],
                    username="ana",
                )
                for headers in ({}, {"X-CSRF-Token": "forged"}):
                    status, body = await client.call(method, path, {}, csrf=False, headers=headers)
                    assert status == 403, (method, path, status, body)
                    assert "X-CSRF-Token" in body["error"]
            # Nothing happened: the case is untouched and the proposal still pending.
            status, case = await client.call("GET", f"/api/cases/{ids[BANK_A]}")
            assert case["status"] == "open" and case["owner"] is None
            assert [e["action"] for e in case["timeline"]] == ["opened"]

    run(test)


def test_every_role_endpoint_pair_that_must_be_refused_is_refused(stack, db_url):
    async def test() -> None:
        async with running_console(stack, db_url) as console:
            ids = await _seed(console)
            routes = {
                (route.method, route.resource.canonical)
                for route in console.server.app.router.routes()
                if route.resource is not None
                and route.resource.canonical.startswith("/api/")
                and route.method != "HEAD"
            }
            covered = {
                (m, p.replace("{case}", "{case_id}").replace("{proposal}", "{proposal_id}"))
                for m, p, _, _ in ENDPOINTS
            }
            covered = {(m, p.replace("{user}", "{username}")) for m, p in covered}
            public = {("GET", "/api/health"), ("POST", "/api/session")}
            public |= {("GET", "/api/session"), ("DELETE", "/api/session")}
            assert routes - public == covered  # a new endpoint must be added to the table
            refused = 0
            for role, username in USER_OF_ROLE.items():
                client = await console.client(username)
                for method, template, body, allowed in ENDPOINTS:
                    if role in allowed:
                        continue
                    status, answer = await client.call(method, _path(template, ids), body)
                    assert status == 403, (role, method, template, status, answer)
                    refused += 1
            assert refused == 54
            # Nothing a refused call would have done happened.
            all_roles = await console.client("all")
            case = (await all_roles.call("GET", f"/api/cases/{ids[BANK_A]}"))[1]
            assert case["label"] is None and case["owner"] is None
            proposals = (await all_roles.call("GET", f"/api/lenders/{BANK_A}/proposals"))[1]
            assert proposals["proposals"][0]["status"] == "pending"

    run(test)


def test_role_rules_within_an_endpoint(stack, db_url):
    async def test() -> None:
        async with running_console(stack, db_url) as console:
            ids = await _seed(console)
            case = f"/api/cases/{ids[BANK_A]}"
            ana, sam = await console.client("ana"), await console.client("sam")
            # An analyst takes an unowned case, but cannot give it to someone else ...
            assert (await ana.call("POST", f"{case}/assign", {"owner": "sam"}))[0] == 403
            assert (await ana.call("POST", f"{case}/assign", {"owner": "ana"}))[0] == 200
            # ... nor take it from its owner; a supervisor reassigns.
            assert (await sam.call("POST", f"{case}/assign", {"owner": "sam"}))[0] == 200
            assert (await ana.call("POST", f"{case}/assign", {"owner": "ana"}))[0] == 403
            # Only analysts of the case's lender can own it.
            status, body = await sam.call("POST", f"{case}/assign", {"owner": "bob"})
            assert status == 400 and "not an analyst of this case's lender" in body["error"]
            closed = {"status": "closed", "resolution": "duplicate"}
            assert (await ana.call("POST", f"{case}/status", closed))[0] == 200
            reopen = {"status": "open"}
            assert (await ana.call("POST", f"{case}/status", reopen))[0] == 403
            status, reopened = await sam.call("POST", f"{case}/status", reopen)
            assert status == 200 and reopened["status"] == "open"
            # A policy-maker who is also an approver cannot approve their own proposal.
            bob = await console.client("bob")
            own = await bob.call(
                "POST",
                f"/api/lenders/{BANK_B}/proposals",
                {"base_version": 1, "matrices": {"goal": CONSISTENT_GOAL}},
            )
            assert own[0] == 201
            status, body = await bob.call("POST", f"/api/proposals/{own[1]['id']}/approve", {})
            assert status == 403 and "other than its author" in body["error"]
            audit = await console.service.audit_page(None, 50)
            assert {"assignment", "reopen", "proposal"} <= {e["action"] for e in audit}

    run(test)


def test_another_lenders_case_lender_and_proposal_are_404(stack, db_url):
    async def test() -> None:
        async with running_console(stack, db_url) as console:
            ids = await _seed(console)
            ana, pat = await console.client("ana"), await console.client("pat")
            listed = (await ana.call("GET", "/api/cases?status=all&limit=1000"))[1]
            assert {c["tenant_id"] for c in listed["cases"]} == {BANK_A}
            assert ids[BANK_B] not in {c["case_id"] for c in listed["cases"]}
            assert listed["facets"]["lenders"] == [BANK_A]
            unknown = f"alert-{BANK_B}-does-not-exist"
            for case_id in (ids[BANK_B], unknown):  # the same answer: the id is not confirmed
                for method, suffix, body in (
                    ("GET", "", None),
                    ("POST", "/label", {"verdict": "fraud"}),
                    ("POST", "/assign", {"owner": "ana"}),
                    ("POST", "/status", {"status": "in_progress"}),
                    ("POST", "/comments", {"text": "x"}),
                ):
                    status, answer = await ana.call(method, f"/api/cases/{case_id}{suffix}", body)
                    assert status == 404, (case_id, suffix, status, answer)
                    assert answer == {"error": f"no case {case_id!r}"}
            for method, path in (
                ("GET", f"/api/lenders/{BANK_B}"),
                ("POST", f"/api/lenders/{BANK_B}/ahp"),
                ("GET", f"/api/lenders/{BANK_B}/proposals"),
            ):
                status, _ = await pat.call(method, path, {} if method == "POST" else None)
                assert status == 404
            lenders = (await pat.call("GET", "/api/lenders"))[1]["lenders"]
            assert [lender["tenant_id"] for lender in lenders] == [BANK_A]
            bob = await console.client("bob")  # approver of lender B only
            status, _ = await bob.call("POST", f"/api/proposals/{ids['proposal']}/approve", {})
            assert status == 404

    run(test)


def test_a_proxy_user_header_is_trusted_only_from_the_proxy_a_setting_names(stack, db_url):
    header = {"X-Forwarded-User": "ana"}

    async def test() -> None:
        async with running_console(stack, db_url) as console:  # no proxy named: ignored
            await ensure_users(console, *ONE_ROLE_USERS)
            client = await console.client()
            assert (await client.call("GET", "/api/session", headers=header))[0] == 401
        elsewhere = WebSettings(trusted_proxy="192.0.2.1")  # not where requests come from
        async with running_console(stack, db_url, elsewhere) as console:
            client = await console.client()
            assert (await client.call("GET", "/api/session", headers=header))[0] == 401
        here = WebSettings(trusted_proxy="127.0.0.1")
        async with running_console(stack, db_url, here) as console:
            client = await console.client()
            status, me = await client.call("GET", "/api/session", headers=header)
            assert status == 200 and me["user"]["username"] == "ana"
            # Cross-site POSTs through the proxy still need the session's CSRF token.
            fresh = await console.client()
            path = "/api/cases/anything/comments"
            status, _ = await fresh.call("POST", path, {"text": "x"}, headers=header)
            assert status == 403
            client.csrf = me["csrf_token"]
            status, _ = await client.call("POST", path, {"text": "x"}, headers=header)
            assert status == 404  # past sign-in and CSRF: no such case
            unknown = {"X-Forwarded-User": "nobody-known"}
            assert (await (await console.client()).call("GET", "/api/session", headers=unknown))[
                0
            ] == 401

    run(test)
