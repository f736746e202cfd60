"""Prometheus metrics of one worker, served at GET /metrics on the Faust web server.

Each app builds its own :class:`EngineMetrics` with a private ``CollectorRegistry``, so
tests and several apps in one process never share counters. The runtime feeds it what a
batch consumed and, once the broker acknowledged them, what the batch emitted. Model AUC
is read from the monitors at scrape time rather than copied into gauges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from greencredit.streams import topics

from .messages import Incoming, Outgoing

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "EngineMetrics"]

# The classic text format (what generate_latest writes), understood by every Prometheus.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# 5 ms .. 5 s: the latency target (p99 35 ms) and today's measured tail (~0.8 s) both resolve.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
# Tenants come from upstream events: cap the label values a misbehaving producer can create.
MAX_TENANT_LABELS = 200
OTHER_TENANT = "_other"

DECISIONS = topics.DECISIONS.name
FRAUD_ALERTS = topics.FRAUD_ALERTS.name
DISBURSEMENTS = topics.DISBURSEMENTS.name
ESCALATIONS = topics.DELINQUENCY_ESCALATIONS.name
DEAD_LETTER = topics.DEAD_LETTER.name
# The champion (BP network) and the challenger (online LR) of models/monitoring.py.
MODEL_ROLES = {"bp": "champion", "lr": "challenger"}

MonitoringSource = Callable[[], Mapping[str, Mapping[str, Any]]]


class EngineMetrics:
    """The worker's counters and histograms, and how to render them."""

    def __init__(self, monitoring: MonitoringSource | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter(
            "greencredit_events_consumed", "Messages consumed, by topic", ["topic"], registry=r
        )
        self.events_emitted = Counter(
            "greencredit_events_emitted", "Records emitted (acked), by topic", ["topic"], registry=r
        )
        self.decisions = Counter(
            "greencredit_decisions",
            "Application decisions emitted, by tenant and outcome",
            ["tenant", "outcome"],
            registry=r,
        )
        self.fraud_alerts = Counter(
            "greencredit_fraud_alerts",
            "Fraud alerts emitted, by source and severity",
            ["source", "severity"],
            registry=r,
        )
        self.disbursements = Counter(
            "greencredit_disbursements", "Disbursements emitted, by tenant", ["tenant"], registry=r
        )
        self.escalations = Counter(
            "greencredit_escalations",
            "Delinquency escalations emitted, by collection mode",
            ["mode"],
            registry=r,
        )
        self.dead_letters = Counter(
            "greencredit_dead_letters",
            "Inputs sent to the dead-letter topic, by source topic and error type",
            ["source_topic", "error_type"],
            registry=r,
        )
        self.decision_latency = Histogram(
            "greencredit_decision_latency_seconds",
            "From an application's occurred_at to its decision being acknowledged by the broker",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "greencredit_batch_size",
            "Messages per processed batch, by topic",
            ["topic"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self._tenants: set[str] = set()
        if monitoring is not None:
            r.register(_ModelCollector(monitoring))

    def consumed(self, messages: Sequence[Incoming]) -> None:
        """A batch arrived (counted whatever then happens to it)."""
        per_topic: dict[str, int] = {}
        for message in messages:
            per_topic[message.topic] = per_topic.get(message.topic, 0) + 1
        for topic, count in per_topic.items():
            self.events_consumed.labels(topic).inc(count)
            self.batch_size.labels(topic).observe(count)

    def emitted(
        self,
        outputs: Iterable[Outgoing],
        acked_at: datetime | None = None,
        occurred: Mapping[str, datetime] | None = None,
    ) -> None:
        """Outputs the broker acknowledged; `occurred` maps input event ids to occurred_at."""
        acked_at = acked_at or datetime.now(UTC)
        occurred = occurred or {}
        for output in outputs:
            record = output.record
            self.events_emitted.labels(output.topic).inc()
            if output.topic == DECISIONS:
                self.decisions.labels(self._tenant(record), str(record["decision"])).inc()
                started = occurred.get(str(record.get("application_event_id")))
                if started is not None:
                    # Clock skew between producer and worker can make this negative: count 0.
                    lag = (acked_at - started).total_seconds()
                    self.decision_latency.observe(max(lag, 0.0))
            elif output.topic == FRAUD_ALERTS:
                self.fraud_alerts.labels(str(record["source"]), str(record["severity"])).inc()
            elif output.topic == DISBURSEMENTS:
                self.disbursements.labels(self._tenant(record)).inc()
            elif output.topic == ESCALATIONS:
                self.escalations.labels(str(record["collection_mode"])).inc()
            elif output.topic == DEAD_LETTER:
                self.dead_letters.labels(
                    str(record["source_topic"]), str(record["error_type"])
                ).inc()

    def _tenant(self, record: Mapping[str, Any]) -> str:
        tenant = str(record.get("tenant_id", ""))
        if tenant in self._tenants:
            return tenant
        if len(self._tenants) >= MAX_TENANT_LABELS:
            return OTHER_TENANT
        self._tenants.add(tenant)
        return tenant

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class _ModelCollector(Collector):
    """Rolling AUC of champion and challenger per tenant, read from the monitors."""

    def __init__(self, source: MonitoringSource) -> None:
        self._source = source

    def describe(self) -> list[Metric]:
        # Registering must not call the source: the engine may not exist yet.
        return [_auc_family(), _labels_family()]

    def collect(self) -> Iterable[Metric]:
        auc, labels = _auc_family(), _labels_family()
        for tenant, snap in sorted(self._source().items()):
            labels.add_metric([tenant], float(snap.get("labels_in_window") or 0))
            for model, role in MODEL_ROLES.items():
                value = snap.get(f"{model}_auc")
                if value is not None:  # too few labels, or one class only: no AUC yet
                    auc.add_metric([tenant, model, role], float(value))
        return [auc, labels]


def _auc_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "greencredit_model_auc",
        "Rolling ROC AUC on labelled outcomes (bp: champion, lr: challenger)",
        labels=["tenant", "model", "role"],
    )


def _labels_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "greencredit_model_labels_in_window",
        "Labels in the monitor's rolling window (the AUC's support)",
        labels=["tenant"],
    )
