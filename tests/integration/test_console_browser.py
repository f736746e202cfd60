"""The console in a real headless Chromium (Debian's, driven by Playwright), end to end.

`greencredit console` runs as a child process on the module's embedded broker and a database
of its own on the session's PostgreSQL; its users are made with `greencredit users add`.
The pages are used as people would, and what they publish is read back from the topics.
Skipped, with the reason, where /usr/bin/chromium is absent (`make browser` installs it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from greencredit.infra.embedded import free_port
from greencredit.infra.endpoints import Endpoints
from greencredit.models.ahp import evaluate_hierarchy
from greencredit.models.lender_config import default_hierarchy
from tests.conftest import fresh_database
from tests.factories import fraud_alert
from tests.integration.conftest import publish, read_all

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} not installed: run `make browser` as root (apt-get install chromium "
        "chromium-driver) to run the console's browser tests",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)
expect = sync_api.expect

HOSTILE = '<img src=x onerror="window.__pwned=1">'
PASSWORD = "a long browser test password"  # noqa: S105 - test users only
BANK_A, BANK_B = f"bank-a-{uuid.uuid4().hex[:6]}", f"bank-b-{uuid.uuid4().hex[:6]}"
POLICY_BANK = f"bank-p-{uuid.uuid4().hex[:6]}"


class ConsoleProcess:
    """`greencredit console` as a child process; restartable on the same port and database."""

    def __init__(self, endpoints: Endpoints, db_url: str, work: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.work = work
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka,
            "DATABASE_URL": db_url,
            "GREENCREDIT_STATE_DIR": str(work / "state"),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [sys.executable, "-m", "greencredit", *args],
            env=self.env,
            input=stdin.encode(),
            capture_output=True,
            cwd=str(self.work),
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    def start(self) -> None:
        log = (self.work / "console.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "greencredit", "console", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(self.work),
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"console exited: {(self.work / 'console.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/health", timeout=2) as response:  # noqa: S310
                    if json.loads(response.read())["reader"]["assigned"]:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("console did not start within 60 s")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)  # aiohttp shuts down cleanly on SIGINT
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def console(
    fresh_stack: Endpoints, postgres: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleProcess]:
    """The console with its users (made by the CLI); its base URL once its reader runs."""
    process = ConsoleProcess(
        fresh_stack, fresh_database(postgres), tmp_path_factory.mktemp("console")
    )
    for name, roles, lenders in (
        ("ana-a", ["analyst"], [BANK_A]),
        ("sup-a", ["supervisor"], [BANK_A]),
        ("maker", ["policy-maker", "policy-approver"], [POLICY_BANK]),
        ("checker", ["policy-approver"], [POLICY_BANK]),
    ):
        args = ["users", "add", name, "--password-stdin"]
        args += [arg for role in roles for arg in ("--role", role)]
        args += [arg for lender in lenders for arg in ("--lender", lender)]
        process.cli(*args, stdin=PASSWORD + "\n")
    listed = json.loads(process.cli("users", "list"))
    assert [u["username"] for u in listed] == ["ana-a", "checker", "maker", "sup-a"]
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


def _new_page(browser: Any, errors: list[str]) -> Any:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


@pytest.fixture
def pages(browser: Any) -> Iterator[Any]:
    """Makes pages, each in its own browser context (its own cookies): one per person."""
    errors: list[str] = []
    made: list[Any] = []

    def make() -> Any:
        page = _new_page(browser, errors)
        made.append(page)
        return page

    yield make
    for page in made:
        page.context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def sign_in(page: Any, base: str, username: str, path: str) -> None:
    page.goto(f"{base}{path}")
    expect(page).to_have_url(re.compile(re.escape(f"{base}/login?next=")))
    page.fill("#login-username", username)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    # Back where the user was going (the case list adds its default filters to the URL).
    expect(page).to_have_url(re.compile(re.escape(f"{base}{path.split('?')[0]}")))
    expect(page.locator("#signed-in-as")).to_contain_text(username)


def test_sign_in_is_required_and_wrong_passwords_are_refused(console, pages):
    page = pages()
    page.goto(f"{console.base}/cases")
    expect(page).to_have_url(f"{console.base}/login?next=/cases")
    page.fill("#login-username", "ana-a")
    page.fill("#login-password", "not the right password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_contain_text("wrong user name or password")
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(re.escape(f"{console.base}/cases")))
    cookie = next(c for c in page.context.cookies() if c["name"] == "gc_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.click("#sign-out")
    expect(page).to_have_url(f"{console.base}/login")
    page.goto(f"{console.base}/cases")
    expect(page).to_have_url(f"{console.base}/login?next=/cases")


def test_analyst_sees_live_cases_of_their_lender_only_and_labels_as_themself(
    fresh_stack, console, pages
):
    page = pages()
    sign_in(page, console.base, "ana-a", f"/cases?lender={BANK_A}&status=open")
    expect(page.locator("#summary")).to_contain_text("0 shown")

    takeover = fraud_alert(
        BANK_A, 1, code="SIM_SWAP_LARGE_AMOUNT", contribution=0.8, customer_id=HOSTILE
    )
    velocity = fraud_alert(
        BANK_A, 2, severity="LOW", code="CARD_VELOCITY", contribution=0.8, customer_id="cust-000777"
    )
    other_lender = fraud_alert(BANK_B, 3, customer_id="cust-b-000001")
    publish(fresh_stack, "greencredit.fraud-alerts", [other_lender, takeover, velocity])

    # Live: the open page picks the new cases up without a reload.
    takeover_row = page.locator(f'tr[data-case-id="{takeover["alert_id"]}"]')
    velocity_row = page.locator(f'tr[data-case-id="{velocity["alert_id"]}"]')
    expect(takeover_row).to_be_visible()
    expect(velocity_row).to_be_visible()
    expect(takeover_row).to_contain_text("ACCOUNT_TAKEOVER")
    # Data is text, never markup: the hostile customer id shows literally and runs nothing.
    expect(takeover_row).to_contain_text(HOSTILE)
    assert page.locator("#cases img").count() == 0
    assert page.evaluate("window.__pwned") is None

    # Lender B's case is nowhere in A's list, not even with every filter off.
    page.goto(f"{console.base}/cases?status=all")
    expect(takeover_row).to_be_visible()
    expect(page.locator(f'tr[data-case-id="{other_lender["alert_id"]}"]')).to_have_count(0)
    assert BANK_B not in page.locator("#filter-lender").inner_text()
    # ... nor by its address, in the page or through the API (404, as an unknown id).
    page.goto(f"{console.base}/cases/{other_lender['alert_id']}")
    expect(page.locator("#case-error")).to_contain_text("no case")
    csrf = page.request.get(f"{console.base}/api/session").json()["csrf_token"]
    refused = page.request.post(
        f"{console.base}/api/cases/{other_lender['alert_id']}/label",
        data={"verdict": "fraud"},
        headers={"X-CSRF-Token": csrf},
    )
    assert refused.status == 404
    assert page.request.get(f"{console.base}/api/cases/{other_lender['alert_id']}").status == 404

    page.goto(f"{console.base}/cases?lender={BANK_A}&status=open")
    page.select_option("#filter-severity", "CRITICAL")
    expect(velocity_row).to_have_count(0)
    expect(takeover_row).to_be_visible()
    assert "severity=CRITICAL" in page.url
    page.select_option("#filter-severity", "")
    page.select_option("#filter-typology", "CARD_VELOCITY")
    expect(takeover_row).to_have_count(0)
    expect(velocity_row).to_be_visible()
    page.select_option("#filter-typology", "")

    takeover_row.locator("a").click()
    expect(page.locator("#case-title")).to_have_text(f"Case {takeover['alert_id']}")
    expect(page.locator("#case-reasons")).to_contain_text("SIM_SWAP_LARGE_AMOUNT")
    expect(page.locator("#label-help")).to_contain_text("FRAUD")
    page.click("#confirm-fraud")
    expect(page.locator("#label-result")).to_contain_text("Published FRAUD")
    expect(page.locator("#case-status")).to_contain_text("Closed as FRAUD by ana-a")
    expect(page.locator("#confirm-fraud")).to_be_disabled()

    feedback = [
        r.event.value
        for r in read_all(fresh_stack, "greencredit.analyst-feedback")
        if r.event is not None and r.event.value["case_id"] == takeover["alert_id"]
    ]
    assert len(feedback) == 1
    assert feedback[0]["label"] == "FRAUD" and feedback[0]["analyst_id"] == "ana-a"
    assert feedback[0]["subject_event_id"] == takeover["source_event_id"]
    assert [
        r.event.value
        for r in read_all(fresh_stack, "greencredit.analyst-feedback")
        if r.event is not None and r.event.value["case_id"] == other_lender["alert_id"]
    ] == []

    # Closed cases leave the open queue.
    page.goto(f"{console.base}/cases?lender={BANK_A}&status=open")
    expect(velocity_row).to_be_visible()
    expect(takeover_row).to_have_count(0)


def test_cases_owners_and_comments_survive_a_console_restart(fresh_stack, console, pages):
    alert = fraud_alert(BANK_A, 50, customer_id="cust-000050")
    publish(fresh_stack, "greencredit.fraud-alerts", [alert])
    page = pages()
    # Ingestion from Kafka is asynchronous: open the case once the live list shows it, so a
    # slow machine does not open the page before the case exists (it would show "not found").
    sign_in(page, console.base, "ana-a", f"/cases?lender={BANK_A}&status=open")
    expect(page.locator(f'tr[data-case-id="{alert["alert_id"]}"]')).to_be_visible(timeout=30_000)
    page.goto(f"{console.base}/cases/{alert['alert_id']}")
    expect(page.locator("#case-work-status")).to_contain_text("owner: nobody")
    page.click("#take-case")
    expect(page.locator("#case-work-status")).to_contain_text("owner: ana-a")
    page.click("#start-work")
    expect(page.locator("#case-work-status")).to_contain_text("Status: in progress")
    page.fill("#comment-text", "Customer called back; card was stolen on 13812345678")
    page.click("#add-comment")
    comment = page.locator('#case-timeline li[data-action="comment"]')
    expect(comment).to_contain_text("card was stolen on")
    expect(comment).not_to_contain_text("13812345678")  # masked when saved

    console.stop()
    console.start()

    page.reload()
    # The session itself survives too: it lives in PostgreSQL, not in the process.
    expect(page.locator("#case-work-status")).to_contain_text("owner: ana-a")
    expect(page.locator("#case-work-status")).to_contain_text("Status: in progress")
    expect(comment).to_contain_text("ana-a comment: Customer called back")
    expect(page.locator("#case-timeline li")).to_have_count(4)  # opened, assigned, status, comment
    # A supervisor sees who owns it and can hand it over.
    supervisor = pages()
    sign_in(supervisor, console.base, "sup-a", f"/cases/{alert['alert_id']}")
    expect(supervisor.locator("#case-work-status")).to_contain_text("owner: ana-a")
    expect(supervisor.locator("#reassign")).to_be_visible()


def _cell(page: Any, node: str, row: int, col: int) -> Any:
    return page.locator(f'#nodes input[data-node="{node}"][data-row="{row}"][data-col="{col}"]')


def _configs(endpoints: Endpoints, tenant: str) -> list[dict[str, Any]]:
    return [
        r.event.value
        for r in read_all(endpoints, "greencredit.lender-config")
        if r.event is not None and r.event.value["tenant_id"] == tenant
    ]


def test_policy_maker_proposes_cannot_approve_it_and_a_second_person_publishes_it(
    fresh_stack, console, pages, start_worker
):
    worker = start_worker("console-policy")
    worker.wait_assigned()
    maker = pages()
    sign_in(maker, console.base, "maker", f"/lenders/{POLICY_BANK}")
    goal_cr = maker.locator('[data-cr-node="goal"]')
    default_cr = evaluate_hierarchy(default_hierarchy()).node_results["goal"].cr
    expect(goal_cr).to_have_text(f"CR {default_cr:.3f}")  # the default hierarchy's
    expect(maker.locator("#ahp-status")).to_contain_text("Consistent")

    # fraud_risk vs green_esg from 3 to 1/9: contradicts the other judgements (live CR).
    _cell(maker, "goal", 0, 2).fill("1/9")
    expect(maker.locator('td.mirror[data-node="goal"][data-row="2"][data-col="0"]')).to_have_text(
        "9"
    )
    expect(goal_cr).to_have_class("cr bad")
    assert float(goal_cr.inner_text().removeprefix("CR ")) >= 0.1
    expect(maker.locator("#ahp-status")).to_contain_text("Inconsistent")
    maker.click("#propose")
    expect(maker.locator("#publish-result")).to_contain_text("Refused")
    expect(maker.locator("#publish-result")).to_contain_text("CR")

    # A consistent edit is proposed; nothing is published yet.
    _cell(maker, "goal", 0, 2).fill("3")
    _cell(maker, "goal", 0, 3).fill("4")
    expect(goal_cr).to_have_class("cr ok")
    maker.click("#propose")
    expect(maker.locator("#publish-result")).to_contain_text("Proposed #")
    row = maker.locator("#proposals tbody tr").first
    expect(row).to_contain_text("pending")
    expect(row).to_contain_text("maker")
    assert _configs(fresh_stack, POLICY_BANK) == []

    # The maker is also an approver, but not of their own proposal.
    row.locator("button[data-approve]").click()
    expect(maker.locator("#publish-result")).to_contain_text("other than its author")
    assert _configs(fresh_stack, POLICY_BANK) == []

    checker = pages()
    sign_in(checker, console.base, "checker", f"/lenders/{POLICY_BANK}")
    expect(checker.locator("#propose")).to_be_disabled()  # an approver only
    checker.locator("#proposals tbody tr").first.locator("button[data-approve]").click()
    expect(checker.locator("#publish-result")).to_contain_text("Published version 2")
    expect(checker.locator("#lender-version")).to_contain_text("version 2 (published)")
    expect(checker.locator("#lender-approvals")).to_contain_text(
        "Proposed by maker, approved by checker"
    )

    configs = _configs(fresh_stack, POLICY_BANK)
    assert [c["config_version"] for c in configs] == [2]  # the refused edits never left
    assert (configs[0]["proposed_by"], configs[0]["approved_by"]) == ("maker", "checker")
    goal = next(n for n in configs[0]["nodes"] if n["name"] == "goal")
    assert goal["matrix"][0][3] == 4.0 and goal["matrix"][3][0] == 0.25

    # The running worker has applied it: its stored config for the lender is version 2.
    client = redis.Redis.from_url(fresh_stack.redis)
    try:
        deadline = time.monotonic() + 30
        stored: dict[str, Any] = {}
        while time.monotonic() < deadline:
            raw = client.hget(f"gc:cfg:{POLICY_BANK}", "config")
            stored = json.loads(raw) if raw else {}
            if stored.get("version") == 2:
                break
            time.sleep(0.3)
        assert stored.get("version") == 2, stored
    finally:
        client.close()
