"""Simulated analysts label from the ground truth, once per case, and only ripe outcomes."""

from __future__ import annotations

from datetime import timedelta

from greencredit.demo.analysts import Analysts
from greencredit.demo.live import LiveView
from greencredit.streams.codec import AvroCodec
from greencredit.streams.simulation.population import RepaymentHabit
from greencredit.streams.simulation.scenario import GRACE_DAYS, Scenario

CODEC = AvroCodec()


def _decision(app_id: str, customer: str, decision: str = "REVIEW") -> dict:
    return {
        "application_event_id": f"evt-{app_id}",
        "application_id": app_id,
        "customer_id": customer,
        "tenant_id": "lender-green-bank",
        "decision": decision,
    }


def test_reviews_are_labelled_from_the_truth_once() -> None:
    s = Scenario(customers=40, days=45, seed=2)
    fraud_app = sorted(s.truth.subjects("device_farm"))[0]
    analysts = Analysts(s, share=1.0)
    decisions = [
        _decision(fraud_app, "cust-f1"),
        _decision("app-000001", "cust-000001"),
        _decision("app-000002", "cust-000002", "APPROVE"),  # approvals are not cases
    ]
    labels = analysts.review(3, decisions, [])
    by_subject = {e["subject_event_id"]: e["label"] for _, e in labels}
    assert by_subject == {f"evt-{fraud_app}": "FRAUD", "evt-app-000001": "NOT_FRAUD"}
    for topic, event in labels:
        CODEC.encode(topic, event)
    assert analysts.review(4, decisions, []) == []  # already labelled


def test_outcomes_wait_for_the_grace_period_to_end() -> None:
    s = Scenario(customers=40, days=60, seed=2)
    defaulter = next(c for c in s.customers if c.habit == RepaymentHabit.FIRST_PAYMENT_DEFAULT)
    due = s.date_of(10)
    loan = {
        "loan_id": "loan-x",
        "application_id": "app-x",
        "customer_id": defaulter.customer_id,
        "tenant_id": defaulter.tenant,
        "schedule": [{"number": 1, "due_date": due, "amount_due_minor": 100}],
    }
    decisions = {"evt-app-x": _decision("app-x", defaulter.customer_id, "APPROVE")}
    analysts = Analysts(s)
    ripe = (due - s.start).days + GRACE_DAYS + 1
    assert analysts.outcomes(ripe - 1, decisions, {"loan-x": loan}) == []
    [(_, label)] = analysts.outcomes(ripe, decisions, {"loan-x": loan})
    assert label["label"] == "DEFAULTED"
    assert analysts.outcomes(ripe + 1, decisions, {"loan-x": loan}) == []
    assert s.date_of(ripe) - due == timedelta(days=GRACE_DAYS + 1)


def test_the_live_view_renders_before_anything_arrived() -> None:
    from rich.console import Console

    from greencredit.demo.observer import Observer

    view = LiveView(days=10)
    view.learning = {"lender-a": {"labels": 3, "online_lr_auc": 0.7, "bp_auc": None}}
    console = Console(record=True, width=120)
    console.print(view.render(Observer({}, CODEC, None)))
    text = console.export_text()
    assert "decision approve" in text
    assert "rolling AUC LR / BP (lender-a, 3 labels)" in text
