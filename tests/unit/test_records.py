"""Output records: deterministic ids, no PII, and they satisfy their schemas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from greencredit.models.monitoring import ModelMonitor, MonitorConfig, observe_scores
from greencredit.streams.codec import AvroCodec
from greencredit.streams.records import model_health_record, output_event_id, uuid5_text


def test_output_ids_are_deterministic_per_kind():
    assert output_event_id("decision", "e1") == output_event_id("decision", "e1")
    assert output_event_id("decision", "e1") != output_event_id("disbursement", "e1")


def test_a_real_drift_event_encodes_as_model_health():
    rng = np.random.default_rng(1)
    monitor = ModelMonitor(MonitorConfig())
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = []
    for i in range(3000):
        shift = 0.35 if i >= 1500 else 0.0
        bp = float(np.clip(rng.normal(0.3 + shift, 0.05), 0, 1))
        lr = float(np.clip(rng.normal(0.3, 0.05), 0, 1))
        events += observe_scores(monitor, bp, lr, start + timedelta(seconds=i))
    assert events, "the injected shift must be detected"
    record = model_health_record(events[0], "lender-1", "worker-a")
    codec = AvroCodec()
    decoded = codec.decode(codec.encode("greencredit.model-health", record)).value
    assert decoded["model"] == "bp"
    assert decoded["recommendation"] == "REPLACE_NEURAL_BASE_MODEL"
    assert decoded["event_id"] == model_health_record(events[0], "lender-1", "worker-a")["event_id"]


def test_the_agents_build_records_with_streams_records_only():
    """No agent or model keeps its own copy of an output builder."""
    from greencredit.agents import devices, loans, transactions
    from greencredit.models import delinquency
    from greencredit.streams import deadletter, records

    assert deadletter.dead_letter_record is records.dead_letter_record
    assert not hasattr(delinquency, "escalation_record")
    assert loans.escalation_record is records.escalation_record
    assert transactions.fraud_alert_record is records.fraud_alert_record
    assert transactions.behaviour_record is records.behaviour_record
    assert devices.fraud_alert_record is records.fraud_alert_record


def test_the_face_alert_encodes():
    from greencredit.streams.records import fraud_alert_record

    now = datetime(2026, 1, 1, tzinfo=UTC)
    txn = {"event_id": "t1", "tenant_id": "lender", "loan_id": "L1"}
    codec = AvroCodec()
    alert = fraud_alert_record("FACE", txn, 0.99, [("FACE_BLACKLIST_HIT", 0.99)], now)
    assert codec.decode(codec.encode("greencredit.fraud-alerts", alert)).value["source"] == "FACE"


@given(st.uuids(), st.text(max_size=60))
def test_uuid5_text_is_uuid5(namespace: uuid.UUID, name: str) -> None:
    assert uuid5_text(namespace.bytes, name) == str(uuid.uuid5(namespace, name))
