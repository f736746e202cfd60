"""Worker metrics: what goes in is what a Prometheus scrape reads back out."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from greencredit.agents.messages import Incoming, Outgoing
from greencredit.agents.metrics import (
    LATENCY_BUCKETS,
    MAX_TENANT_LABELS,
    OTHER_TENANT,
    EngineMetrics,
)
from greencredit.models.monitoring import ModelMonitor, observe_label, snapshot
from tests.factories import example, native

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
APPLICATIONS = "greencredit.loan-applications"


def samples(metrics: EngineMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse the rendered text exactly as a Prometheus server would read it."""
    text = metrics.render().decode("utf-8")
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(parsed: dict[Any, float], name: str, **labels: str) -> float | None:
    return parsed.get((name, frozenset(labels.items())))


def output(schema: str, example_name: str, **changes: Any) -> Outgoing:
    record = native(schema, example(example_name))
    record.update(changes)
    topic = {
        "decision": "greencredit.decisions",
        "fraud_alert": "greencredit.fraud-alerts",
        "disbursement": "greencredit.disbursements",
        "delinquency_escalation": "greencredit.delinquency-escalations",
        "dead_letter": "greencredit.dead-letter",
    }[example_name]
    return Outgoing(topic, "key", record)


def decision(tenant: str, outcome: str, application_event_id: str = "") -> Outgoing:
    return output(
        "greencredit.v1.ApplicationDecision",
        "decision",
        tenant_id=tenant,
        decision=outcome,
        application_event_id=application_event_id or str(uuid.uuid4()),
    )


def test_consumed_events_and_batch_sizes_per_topic():
    metrics = EngineMetrics()
    batches = [
        [Incoming(APPLICATIONS, 0, i, None, b"") for i in range(7)],
        [Incoming(APPLICATIONS, 1, i, None, b"") for i in range(3)],
        [Incoming("greencredit.transactions", 0, i, None, b"") for i in range(40)],
    ]
    for batch in batches:
        metrics.consumed(batch)
    parsed = samples(metrics)
    for topic in (APPLICATIONS, "greencredit.transactions"):
        sizes = [len(b) for b in batches if b[0].topic == topic]
        assert value(parsed, "greencredit_events_consumed_total", topic=topic) == sum(sizes)
        assert value(parsed, "greencredit_batch_size_count", topic=topic) == len(sizes)
        assert value(parsed, "greencredit_batch_size_sum", topic=topic) == sum(sizes)
        assert value(parsed, "greencredit_batch_size_bucket", topic=topic, le="5.0") == sum(
            1 for s in sizes if s <= 5
        )


def test_outputs_are_counted_by_their_labels():
    outcomes = [("lender-a", "APPROVE")] * 3 + [("lender-a", "REVIEW"), ("lender-b", "DECLINE")]
    alerts = [("TRANSACTION", "HIGH"), ("TRANSACTION", "HIGH"), ("DEVICE_SIGNAL", "LOW")]
    fraud = "greencredit.v1.FraudAlert"
    outputs = [decision(t, o) for t, o in outcomes]
    outputs += [output(fraud, "fraud_alert", source=s, severity=v) for s, v in alerts]
    outputs += [output("greencredit.v1.Disbursement", "disbursement", tenant_id="lender-a")] * 2
    escalation = "greencredit.v1.DelinquencyEscalation"
    outputs += [output(escalation, "delinquency_escalation", collection_mode="MANUAL")]
    letters = [(APPLICATIONS, "BadMagicByte"), (APPLICATIONS, "BadMagicByte")]
    letters += [("greencredit.transactions", "TruncatedBody")]
    outputs += [
        output("greencredit.v1.DeadLetter", "dead_letter", source_topic=t, error_type=e)
        for t, e in letters
    ]
    metrics = EngineMetrics()
    metrics.emitted(outputs, NOW)
    parsed = samples(metrics)
    for (tenant, outcome), n in Counter(outcomes).items():
        assert value(parsed, "greencredit_decisions_total", tenant=tenant, outcome=outcome) == n
    for (source, severity), n in Counter(alerts).items():
        got = value(parsed, "greencredit_fraud_alerts_total", source=source, severity=severity)
        assert got == n
    assert value(parsed, "greencredit_disbursements_total", tenant="lender-a") == 2
    assert value(parsed, "greencredit_escalations_total", mode="MANUAL") == 1
    for (topic, kind), n in Counter(letters).items():
        got = value(parsed, "greencredit_dead_letters_total", source_topic=topic, error_type=kind)
        assert got == n
    for topic, n in Counter(o.topic for o in outputs).items():
        assert value(parsed, "greencredit_events_emitted_total", topic=topic) == n


def test_decision_latency_runs_from_occurred_at_to_the_ack():
    # The last one's clock is ahead of the worker's: it counts as zero, not negative.
    lags = [0.003, 0.04, 0.3, 2.0, 12.0, -1.0]
    ids = [str(uuid.uuid4()) for _ in lags]
    occurred = {i: NOW - timedelta(seconds=lag) for i, lag in zip(ids, lags, strict=True)}
    # A decision whose input is unknown (not in `occurred`) is not timed.
    outputs = [decision("lender-a", "APPROVE", i) for i in ids] + [decision("lender-a", "REVIEW")]
    metrics = EngineMetrics()
    metrics.emitted(outputs, NOW, occurred)
    parsed = samples(metrics)
    seen = [max(lag, 0.0) for lag in lags]
    assert value(parsed, "greencredit_decision_latency_seconds_count") == len(lags)
    assert abs(value(parsed, "greencredit_decision_latency_seconds_sum") - sum(seen)) < 1e-6
    for bound in LATENCY_BUCKETS:
        expected = sum(1 for s in seen if s <= bound)
        got = value(parsed, "greencredit_decision_latency_seconds_bucket", le=str(bound))
        assert got == expected, bound
    assert value(parsed, "greencredit_decision_latency_seconds_bucket", le="+Inf") == len(lags)


def test_model_auc_is_read_from_the_monitors_at_scrape_time():
    monitors: dict[str, ModelMonitor] = {}
    metrics = EngineMetrics(lambda: {t: snapshot(m) for t, m in monitors.items()})
    assert not [k for k in samples(metrics) if k[0] == "greencredit_model_auc"]

    monitor = monitors.setdefault("lender-a", ModelMonitor())
    # BP separates the classes perfectly; the LR ranks them backwards.
    for i in range(20):
        positive = i % 2 == 0
        bp = 0.8 + i / 200 if positive else 0.1 + i / 200
        lr = 0.2 if positive else 0.7
        observe_label(monitor, bp, lr, positive, NOW)
    parsed = samples(metrics)
    snap = snapshot(monitor)
    bp_auc = value(parsed, "greencredit_model_auc", tenant="lender-a", model="bp", role="champion")
    lr_auc = value(
        parsed, "greencredit_model_auc", tenant="lender-a", model="lr", role="challenger"
    )
    assert bp_auc == snap["bp_auc"] and bp_auc > 0.99
    assert lr_auc == snap["lr_auc"] and lr_auc < 0.01
    assert value(parsed, "greencredit_model_labels_in_window", tenant="lender-a") == 20


def test_each_app_owns_its_registry():
    first, second = EngineMetrics(), EngineMetrics()
    first.emitted([decision("lender-a", "APPROVE")], NOW)
    assert (
        value(samples(first), "greencredit_decisions_total", tenant="lender-a", outcome="APPROVE")
        == 1
    )
    assert (
        value(samples(second), "greencredit_decisions_total", tenant="lender-a", outcome="APPROVE")
        is None
    )
    global_text = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "greencredit_" not in global_text


def test_tenant_label_values_are_capped():
    metrics = EngineMetrics()
    tenants = [f"lender-{i}" for i in range(MAX_TENANT_LABELS + 5)]
    metrics.emitted([decision(t, "APPROVE") for t in tenants], NOW)
    parsed = samples(metrics)
    labelled = {
        dict(labels)["tenant"] for name, labels in parsed if name == "greencredit_decisions_total"
    }
    assert len(labelled) == MAX_TENANT_LABELS + 1
    assert value(parsed, "greencredit_decisions_total", tenant=OTHER_TENANT, outcome="APPROVE") == 5
