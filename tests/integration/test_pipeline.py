"""The engine end to end on the real embedded broker and Redis, with real worker processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from greencredit.streams.topics import TOPICS
from tests.factories import application, transaction
from tests.integration.conftest import publish, publish_raw, read_all, wait_for

OUTPUT_TOPICS = [
    t.name for t in TOPICS if t.direction == "output" and t.name != "greencredit.dead-letter"
]


def _risky_profile() -> dict:
    return {
        "checking_account": "BELOW_ZERO",
        "credit_history": "CRITICAL_ACCOUNT",
        "savings": "BELOW_100",
        "employment_since": "UNEMPLOYED",
        "property": "UNKNOWN_OR_NONE",
        "housing": "FOR_FREE",
        "other_installment_plans": "BANK",
        "installment_rate_pct": 4,
        "job": "UNSKILLED_NON_RESIDENT",
    }


@pytest.fixture(scope="module")
def scenario():
    """Applications, transactions and a poison message with known expected outcomes."""
    night = datetime.now(UTC).replace(hour=18, minute=30)  # 02:30 in Asia/Shanghai
    good = application(1)
    bad_id = application(2, applicant={"id_card_number": "110105199003071234"})
    risky = application(
        3,
        requested_amount_minor=9_000_000,
        term_months=60,
        purpose="TRAVEL",
        monthly_income_minor=400_000,
        credit_profile=_risky_profile(),
    )
    farm = [application(10 + i, device_id="dev-shared-farm") for i in range(3)]
    history = [
        transaction(
            100 + i,
            amount_minor=10_000,
            merchant_id="m-grocer",
            occurred_at=(night - timedelta(days=2, hours=i)).isoformat(),
        )
        for i in range(6)
    ]
    takeover = transaction(
        200, amount_minor=5_000_000, merchant_id="m-unknown-shop", occurred_at=night.isoformat()
    )
    return {
        "good": good,
        "bad_id": bad_id,
        "risky": risky,
        "farm": farm,
        "history": history,
        "takeover": takeover,
    }


def _by_app(decisions):
    return {d["application_id"]: d for d in decisions}


def test_pipeline_decides_alerts_disburses_and_dead_letters(fresh_stack, start_worker, scenario):
    worker = start_worker("w1")
    worker.wait_assigned()
    apps = [scenario["good"], scenario["bad_id"], scenario["risky"], *scenario["farm"]]
    publish(fresh_stack, "greencredit.loan-applications", apps[:2])
    # A poison message between good events: it must not stop the ones after it.
    publish_raw(
        fresh_stack,
        "greencredit.loan-applications",
        b"\x00\x00\x00\x00\x01\xff\xff",
        key=b"cust-00002",
    )
    publish(fresh_stack, "greencredit.loan-applications", apps[2:])
    publish(fresh_stack, "greencredit.transactions", scenario["history"])
    publish(fresh_stack, "greencredit.transactions", [scenario["takeover"]])

    decisions = _by_app(wait_for(fresh_stack, "greencredit.decisions", lambda e: True, len(apps)))
    assert decisions["app-00001"]["decision"] == "APPROVE"
    assert decisions["app-00002"]["decision"] == "REVIEW"
    assert "ID_CHECKSUM_INVALID" in [r["code"] for r in decisions["app-00002"]["reasons"]]
    assert decisions["app-00003"]["decision"] in ("REVIEW", "DECLINE")
    # The farm's three applications are keyed by customer, so they land on different
    # partitions and may be decided in any order: the one decided last sees all three,
    # the one decided first only itself (which one that is, is not fixed).
    flagged = [
        decisions[a["application_id"]]
        for a in scenario["farm"]
        if "DEVICE_FARM" in [r["code"] for r in decisions[a["application_id"]]["reasons"]]
    ]
    assert flagged and all(d["decision"] != "APPROVE" for d in flagged)
    assert len(flagged) < len(scenario["farm"])
    for decision in decisions.values():
        assert decision["ahp_config_version"] == 1
        assert set(decision["model_versions"]) == {"bp", "online_lr"}

    reviews = _by_app(wait_for(fresh_stack, "greencredit.reviews", lambda e: True, 1))
    assert set(reviews) == {a for a, d in decisions.items() if d["decision"] == "REVIEW"}

    disbursements = wait_for(fresh_stack, "greencredit.disbursements", lambda e: True, 1)
    # Any failed check forces at least REVIEW, so every APPROVE passed them all.
    approved = {a for a, d in decisions.items() if d["decision"] == "APPROVE"}
    assert "app-00001" in approved
    assert {d["application_id"] for d in disbursements} == approved
    first = disbursements[0]
    assert sum(i["amount_due_minor"] for i in first["schedule"]) >= first["amount_minor"]
    assert first["rate_discount_bps"] == 50  # green purpose (electric vehicle)
    assert first["destination_account_masked"].startswith("622202")

    alerts = wait_for(
        fresh_stack, "greencredit.fraud-alerts", lambda e: e["source"] == "TRANSACTION", 1
    )
    assert [a["source_event_id"] for a in alerts] == [scenario["takeover"]["event_id"]]
    assert {"AMOUNT_ANOMALY", "NIGHT_TIME_NEW_MERCHANT"} <= {
        r["code"] for r in alerts[0]["reasons"]
    }

    letters = wait_for(fresh_stack, "greencredit.dead-letter", lambda e: True, 1)
    assert letters[0]["source_topic"] == "greencredit.loan-applications"
    assert letters[0]["original_value"] == b"\x00\x00\x00\x00\x01\xff\xff"
    assert letters[0]["error_type"] in ("TruncatedBody", "CorruptBody")


def test_outputs_carry_no_raw_pii(fresh_stack, scenario):
    secrets = []
    for app in [scenario["good"], scenario["bad_id"], scenario["risky"], *scenario["farm"]]:
        person = app["applicant"]
        secrets += [
            person["id_card_number"],
            person["phone"],
            person["email"],
            person["bank_card_number"],
            person["full_name"],
        ]
    secrets += [t["card_number"] for t in scenario["history"]]
    for topic in OUTPUT_TOPICS:
        for result in read_all(fresh_stack, topic):
            raw = result.raw or b""
            for secret in secrets:
                assert secret.encode() not in raw, f"{topic} leaks raw PII"


def test_replay_creates_no_duplicate_decision_or_disbursement(fresh_stack, start_worker, scenario):
    worker = start_worker("w-replay")
    worker.wait_assigned()
    before = {
        t: len(read_all(fresh_stack, t))
        for t in ("greencredit.decisions", "greencredit.disbursements", "greencredit.fraud-alerts")
    }
    assert before["greencredit.disbursements"] >= 1
    apps = [scenario["good"], scenario["bad_id"], scenario["risky"], *scenario["farm"]]
    publish(fresh_stack, "greencredit.loan-applications", apps)  # the same events again
    publish(fresh_stack, "greencredit.transactions", [scenario["takeover"]])
    marker = application(99)  # processed after the replays (same partition order not needed)
    publish(fresh_stack, "greencredit.loan-applications", [marker])
    wait_for(fresh_stack, "greencredit.decisions", lambda e: e["application_id"] == "app-00099", 1)
    after = {t: read_all(fresh_stack, t) for t in before}
    decisions = [r.event.value for r in after["greencredit.decisions"]]
    assert len(decisions) == before["greencredit.decisions"] + 1
    disbursed = [r.event.value["application_id"] for r in after["greencredit.disbursements"]]
    assert len(disbursed) == len(set(disbursed))
    assert len(after["greencredit.fraud-alerts"]) == before["greencredit.fraud-alerts"]


def test_audit_chain_of_the_run_verifies(fresh_stack):
    import json
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": fresh_stack.kafka,
        "REDIS_URL": fresh_stack.redis,
    }
    run = subprocess.run(
        [sys.executable, "-m", "greencredit", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert sum(p["records"] for p in report["greencredit.decisions"].values()) >= 7
