"""GET /metrics on a real worker: the counters equal what went through the pipeline."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.factories import application, example, native
from tests.integration.conftest import publish, publish_raw, read_all

APPLICATIONS = "greencredit.loan-applications"
FEEDBACK = "greencredit.analyst-feedback"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode("utf-8")
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return content_type, samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def wait_until(port: int, ready: Callable[[Samples], bool], what: str) -> Samples:
    deadline = time.monotonic() + 90
    samples: Samples = {}
    while time.monotonic() < deadline:
        _, samples = scrape(port)
        if ready(samples):
            return samples
        time.sleep(0.5)
    raise AssertionError(f"/metrics never showed {what}; last scrape: {samples}")


def decoded(endpoints: Any, topic: str) -> list[dict[str, Any]]:
    return [r.event.value for r in read_all(endpoints, topic) if r.event is not None]


def label(app: dict[str, Any], defaulted: bool) -> dict[str, Any]:
    feedback = example("analyst_feedback")
    feedback.update(
        event_id=str(uuid.uuid4()),
        subject_event_id=app["event_id"],
        subject_type="APPLICATION",
        label="DEFAULTED" if defaulted else "REPAID",
        case_id=f"case-{app['application_id']}",
        occurred_at=datetime.now(UTC).isoformat(),
    )
    return native("greencredit.v1.AnalystFeedback", feedback)


def test_metrics_count_what_the_worker_consumed_and_emitted(fresh_stack, start_worker):
    worker = start_worker("metrics")
    worker.wait_assigned()
    content_type, before = scrape(worker.port)
    assert content_type.startswith("text/plain")
    assert total(before, "greencredit_events_consumed_total", topic=APPLICATIONS) == 0

    apps = [application(700 + n) for n in range(12)]
    publish(fresh_stack, APPLICATIONS, apps)
    publish_raw(fresh_stack, APPLICATIONS, b"\x07 not avro", key=b"poison")
    consumed = len(apps) + 1
    samples = wait_until(
        worker.port,
        lambda s: (
            total(s, "greencredit_decisions_total") >= len(apps)
            and total(s, "greencredit_dead_letters_total") >= 1
        ),
        f"{len(apps)} decisions and a dead letter",
    )

    decisions = decoded(fresh_stack, "greencredit.decisions")
    assert len(decisions) == len(apps)
    outcomes = Counter((d["tenant_id"], d["decision"]) for d in decisions)
    for (tenant, outcome), n in outcomes.items():
        assert total(samples, "greencredit_decisions_total", tenant=tenant, outcome=outcome) == n
    assert total(samples, "greencredit_decisions_total") == len(apps)
    assert total(samples, "greencredit_events_consumed_total", topic=APPLICATIONS) == consumed
    assert total(samples, "greencredit_batch_size_sum", topic=APPLICATIONS) == consumed
    letters = [
        (d["source_topic"], d["error_type"])
        for d in decoded(fresh_stack, "greencredit.dead-letter")
    ]
    assert letters == [(APPLICATIONS, "BadMagicByte")]
    got = total(
        samples,
        "greencredit_dead_letters_total",
        source_topic=APPLICATIONS,
        error_type="BadMagicByte",
    )
    assert got == 1
    disbursed = decoded(fresh_stack, "greencredit.disbursements")
    assert total(samples, "greencredit_disbursements_total") == len(disbursed)
    alerts = decoded(fresh_stack, "greencredit.fraud-alerts")
    assert total(samples, "greencredit_fraud_alerts_total") == len(alerts)
    assert total(samples, "greencredit_decision_latency_seconds_count") == len(apps)
    emitted_decisions = total(
        samples, "greencredit_events_emitted_total", topic="greencredit.decisions"
    )
    assert emitted_decisions == len(apps)

    # Labels of both classes reach the monitor: the champion's and challenger's AUC appear.
    deadline = time.monotonic() + 60
    while (worker.health() or {}).get("processed", 0) < consumed and time.monotonic() < deadline:
        time.sleep(0.3)  # scored entries are stored once the batch is fully processed
    publish(fresh_stack, FEEDBACK, [label(a, defaulted=n % 2 == 0) for n, a in enumerate(apps)])
    tenant = apps[0]["tenant_id"]
    samples = wait_until(
        worker.port,
        lambda s: total(s, "greencredit_model_labels_in_window", tenant=tenant) >= len(apps),
        "the labels in the model monitor",
    )
    assert total(samples, "greencredit_model_labels_in_window", tenant=tenant) == len(apps)
    assert total(samples, "greencredit_events_consumed_total", topic=FEEDBACK) == len(apps)
    for model, role in (("bp", "champion"), ("lr", "challenger")):
        key = (
            "greencredit_model_auc",
            frozenset({"tenant": tenant, "model": model, "role": role}.items()),
        )
        assert key in samples, f"no AUC for {model}"
        assert 0.0 <= samples[key] <= 1.0
