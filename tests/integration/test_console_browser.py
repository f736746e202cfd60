"""The console in a real headless Chromium (Debian's, driven by Playwright), end to end.

`greencredit console` runs as a child process on the module's embedded broker; the pages
are used as an analyst would, and what they publish is read back from the topics.
Skipped, with the reason, where /usr/bin/chromium is absent (`make browser` installs it).
"""

from __future__ import annotations

import json
import os
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

from greencredit.infra.embedded import free_port
from greencredit.infra.endpoints import Endpoints
from greencredit.models.ahp import evaluate_hierarchy
from greencredit.models.lender_config import default_hierarchy
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


@pytest.fixture(scope="module")
def console(fresh_stack: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`greencredit console` on a free port; its base URL once its reader is assigned."""
    work = tmp_path_factory.mktemp("console")
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": fresh_stack.kafka,
        "GREENCREDIT_STATE_DIR": str(work / "state"),
    }
    log = (work / "console.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "greencredit", "console", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(work),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"console exited: {(work / 'console.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/api/health", timeout=2) as response:  # noqa: S310
                    if json.loads(response.read())["reader"]["assigned"]:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("console did not start within 60 s")
            time.sleep(0.3)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)  # aiohttp shuts down cleanly on SIGINT
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_analyst_sees_a_live_case_filters_and_confirms_fraud(fresh_stack, console, page):
    tenant = f"bank-{uuid.uuid4().hex[:8]}"
    page.goto(f"{console}/cases?lender={tenant}&status=open")
    expect(page.locator("#summary")).to_contain_text("0 shown")

    takeover = fraud_alert(
        tenant, 1, code="SIM_SWAP_LARGE_AMOUNT", contribution=0.8, customer_id=HOSTILE
    )
    velocity = fraud_alert(
        tenant, 2, severity="LOW", code="CARD_VELOCITY", contribution=0.8, customer_id="cust-000777"
    )
    publish(fresh_stack, "greencredit.fraud-alerts", [takeover, velocity])

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
    page.fill("#analyst-id", "analyst-042")
    page.dispatch_event("#analyst-id", "change")
    page.click("#confirm-fraud")
    expect(page.locator("#label-result")).to_contain_text("Published FRAUD")
    expect(page.locator("#case-status")).to_contain_text("Closed as FRAUD by analyst-042")
    expect(page.locator("#confirm-fraud")).to_be_disabled()

    feedback = [
        r.event.value
        for r in read_all(fresh_stack, "greencredit.analyst-feedback")
        if r.event is not None and r.event.value["case_id"] == takeover["alert_id"]
    ]
    assert len(feedback) == 1
    assert feedback[0]["label"] == "FRAUD" and feedback[0]["analyst_id"] == "analyst-042"
    assert feedback[0]["subject_event_id"] == takeover["source_event_id"]

    # Closed cases leave the open queue.
    page.goto(f"{console}/cases?lender={tenant}&status=open")
    expect(velocity_row).to_be_visible()
    expect(takeover_row).to_have_count(0)


def _cell(page: Any, node: str, row: int, col: int) -> Any:
    return page.locator(f'#nodes input[data-node="{node}"][data-row="{row}"][data-col="{col}"]')


def _configs(endpoints: Endpoints, tenant: str) -> list[dict[str, Any]]:
    return [
        r.event.value
        for r in read_all(endpoints, "greencredit.lender-config")
        if r.event is not None and r.event.value["tenant_id"] == tenant
    ]


def test_lender_edits_judgements_sees_cr_live_and_inconsistent_is_refused(
    fresh_stack, console, page
):
    tenant = f"bank-{uuid.uuid4().hex[:8]}"
    page.goto(f"{console}/lenders/{tenant}")
    goal_cr = page.locator('[data-cr-node="goal"]')
    default_cr = evaluate_hierarchy(default_hierarchy()).node_results["goal"].cr
    expect(goal_cr).to_have_text(f"CR {default_cr:.3f}")  # the default hierarchy's
    expect(page.locator("#ahp-status")).to_contain_text("Consistent")

    # fraud_risk vs green_esg from 3 to 1/9: contradicts the other judgements.
    _cell(page, "goal", 0, 2).fill("1/9")
    expect(page.locator('td.mirror[data-node="goal"][data-row="2"][data-col="0"]')).to_have_text(
        "9"
    )
    expect(goal_cr).to_have_class("cr bad")
    cr = float(goal_cr.inner_text().removeprefix("CR "))
    assert cr >= 0.1
    expect(page.locator("#ahp-status")).to_contain_text("Inconsistent")
    expect(page.locator("#nodes input.invalid")).to_have_count(1)
    page.click("#publish")
    expect(page.locator("#publish-result")).to_contain_text("Refused")
    expect(page.locator("#publish-result")).to_contain_text("CR")

    # Off Saaty's scale: invalid, and the cell is named.
    _cell(page, "goal", 0, 2).fill("12")
    expect(page.locator("#ahp-status")).to_contain_text("matrix[0][2]")
    expect(page.locator("#ahp-status")).to_contain_text("Saaty")
    expect(_cell(page, "goal", 0, 2)).to_have_class("invalid")

    # A consistent edit: CR updates live and the new version is published.
    _cell(page, "goal", 0, 2).fill("3")
    _cell(page, "goal", 0, 3).fill("4")
    expect(goal_cr).to_have_class("cr ok")
    expect(page.locator("#ahp-status")).to_contain_text("Consistent")
    page.click("#publish")
    expect(page.locator("#publish-result")).to_contain_text("Published version 2")
    expect(page.locator("#lender-version")).to_contain_text("version 2 (published)")

    configs = _configs(fresh_stack, tenant)
    assert [c["config_version"] for c in configs] == [2]  # the refused edits never left
    goal = next(n for n in configs[0]["nodes"] if n["name"] == "goal")
    assert goal["matrix"][0][3] == 4.0 and goal["matrix"][3][0] == 0.25
