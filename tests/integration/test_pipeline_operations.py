"""Operating the engine: live config changes, labels, two workers, a killed worker, Redis down."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import redis

from greencredit.infra.embedded import free_port
from tests.factories import application, example, native
from tests.integration.conftest import publish, read_all, wait_for


def _config_event(version: int, approve_below: float, matrix=None) -> dict:
    event = example("lender_config")
    event["event_id"] = str(uuid.uuid4())
    event["config_version"] = version
    event["approve_below"] = approve_below
    event["occurred_at"] = datetime.now(UTC).isoformat()
    if matrix is not None:
        event["nodes"][0]["matrix"] = matrix
    return native("greencredit.v1.LenderConfig", event)


def _decision_of(endpoints, application_id):
    return wait_for(
        endpoints, "greencredit.decisions", lambda e: e["application_id"] == application_id, 1
    )[0]


def test_lender_config_takes_effect_without_restart(fresh_stack, start_worker):
    worker = start_worker("cfg")
    worker.wait_assigned()
    publish(fresh_stack, "greencredit.loan-applications", [application(1)])
    assert _decision_of(fresh_stack, "app-00001")["ahp_config_version"] == 1

    # Version 2: nothing scores below 0.0, so no automatic approval any more.
    publish(fresh_stack, "greencredit.lender-config", [_config_event(2, approve_below=0.0)])
    # An inconsistent matrix (CR >= 0.1) is refused and dead-lettered; version 2 stays.
    bad = [[1, 9, 1 / 9, 1], [1 / 9, 1, 9, 1], [9, 1 / 9, 1, 1], [1, 1, 1, 1]]
    publish(fresh_stack, "greencredit.lender-config", [_config_event(3, 0.0, matrix=bad)])
    letters = wait_for(
        fresh_stack,
        "greencredit.dead-letter",
        lambda e: e["source_topic"] == "greencredit.lender-config",
        1,
    )
    assert letters[0]["error_type"] == "InvalidLenderConfig"
    assert "inconsisten" in letters[0]["reason"].lower() or "CR" in letters[0]["reason"]

    deadline_app = None
    for n in range(2, 40):  # configs are re-read every second: wait for version 2
        publish(fresh_stack, "greencredit.loan-applications", [application(n)])
        decision = _decision_of(fresh_stack, f"app-{n:05d}")
        if decision["ahp_config_version"] == 2:
            deadline_app = decision
            break
    assert deadline_app is not None, "config version 2 never took effect"
    assert deadline_app["decision"] != "APPROVE"


def test_labels_teach_the_online_model_and_close_the_case(fresh_stack, start_worker):
    worker = start_worker("learner")
    worker.wait_assigned()
    app = application(500)
    publish(fresh_stack, "greencredit.loan-applications", [app])
    _decision_of(fresh_stack, "app-00500")
    feedback = example("analyst_feedback")
    feedback.update(
        event_id=str(uuid.uuid4()),
        subject_event_id=app["event_id"],
        subject_type="APPLICATION",
        label="DEFAULTED",
        case_id="case-500",
        occurred_at=datetime.now(UTC).isoformat(),
    )
    publish(
        fresh_stack,
        "greencredit.analyst-feedback",
        [native("greencredit.v1.AnalystFeedback", feedback)],
    )
    client = redis.Redis.from_url(fresh_stack.redis)
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and client.get("gc:case:case-500") is None:
        time.sleep(0.3)
    assert client.get("gc:case:case-500") == b"closed:DEFAULTED"
    import json

    state = json.loads(client.get(f"gc:model:application_lr:{app['tenant_id']}"))
    assert state["n_learned"] == 1001  # bootstrap pass (1000) + this label
    assert client.get(f"gc:pending:{app['event_id']}") is None  # learned once
    client.close()
    # The next decision uses the learned model version.
    publish(fresh_stack, "greencredit.loan-applications", [application(501)])
    decision = _decision_of(fresh_stack, "app-00501")
    assert decision["model_versions"]["online_lr"].endswith("n1001")


def test_two_workers_share_partitions_and_a_killed_worker_loses_nothing(fresh_stack, start_worker):
    first = start_worker("a")
    first.wait_assigned()
    second = start_worker("b")
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        a, b = first.health(), second.health()
        if a and b and a["assigned_partitions"] and b["assigned_partitions"]:
            break
        time.sleep(0.5)
    a_parts, b_parts = set(a["assigned_partitions"]), set(b["assigned_partitions"])
    assert a_parts and b_parts and not a_parts & b_parts

    batch_one = [application(1000 + i) for i in range(30)]
    publish(fresh_stack, "greencredit.loan-applications", batch_one)
    wait_for(
        fresh_stack,
        "greencredit.decisions",
        lambda e: e["application_id"].startswith("app-010"),
        30,
    )
    second.stop(kill=True)  # no clean shutdown: uncommitted offsets are redelivered
    batch_two = [application(1100 + i) for i in range(30)]
    publish(fresh_stack, "greencredit.loan-applications", batch_two)
    decisions = wait_for(
        fresh_stack,
        "greencredit.decisions",
        lambda e: e["application_id"].startswith("app-011"),
        30,
        timeout=90,
    )
    ids = {d["application_id"] for d in decisions}
    assert ids == {f"app-{1100 + i:05d}" for i in range(30)}
    # De-duplicated by event id, every application has exactly one decision.
    all_decisions = [r.event.value for r in read_all(fresh_stack, "greencredit.decisions")]
    by_event = {d["event_id"]: d["application_id"] for d in all_decisions}
    assert len(set(by_event.values())) == len(by_event)
    disbursed = [r.event.value for r in read_all(fresh_stack, "greencredit.disbursements")]
    assert len({d["application_id"] for d in disbursed}) == len({d["event_id"] for d in disbursed})


def test_redis_down_means_review_not_a_guess(fresh_stack, start_worker):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    worker = start_worker("no-redis", REDIS_URL=dead_redis, REDIS_RETRY_ATTEMPTS="2")
    worker.wait_assigned()
    publish(fresh_stack, "greencredit.loan-applications", [application(700)])
    decision = _decision_of(fresh_stack, "app-00700")
    assert decision["decision"] == "REVIEW"
    assert "FEATURES_UNAVAILABLE" in [r["code"] for r in decision["reasons"]]
    disbursed = [
        r.event.value["application_id"] for r in read_all(fresh_stack, "greencredit.disbursements")
    ]
    assert "app-00700" not in disbursed


def test_the_plain_faust_command_runs_the_same_worker(fresh_stack, start_worker):
    worker = start_worker("faust-form", via_faust=True)
    worker.wait_assigned()
    publish(fresh_stack, "greencredit.loan-applications", [application(800)])
    assert _decision_of(fresh_stack, "app-00800")["decision"] in ("APPROVE", "REVIEW", "DECLINE")
