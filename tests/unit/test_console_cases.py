"""Cases from events (masked), typologies and feedback labels; the store is in PostgreSQL
(tests/integration/test_console_store.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greencredit.agents.feedback import POSITIVE_LABELS
from greencredit.console.cases import (
    CaseLabel,
    InvalidLabel,
    analyst_id_checked,
    case_from_alert,
    case_from_review,
    feedback_event_id,
    feedback_label,
    feedback_record,
)
from greencredit.console.typology import OTHER, TYPOLOGIES, typologies
from greencredit.streams.codec import AvroCodec
from tests.factories import example, native

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def alert(n: int, minutes: int = 0, **changes) -> dict:
    event = example("fraud_alert")
    event.update(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"alert-{n}")),
        alert_id=f"alert-{n}",
        source_event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"txn-{n}")),
        occurred_at=(T0 + timedelta(minutes=minutes)).isoformat(),
    )
    event.update(changes)
    return native("greencredit.v1.FraudAlert", event)


def review(n: int, minutes: int = 0, **changes) -> dict:
    event = example("decision")
    event.update(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"review-{n}")),
        application_id=f"app-{n:05d}",
        application_event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"application-{n}")),
        decision="REVIEW",
        occurred_at=(T0 + timedelta(minutes=minutes)).isoformat(),
    )
    event.update(changes)
    return native("greencredit.v1.ApplicationDecision", event)


def label(name: str = "FRAUD", analyst: str = "analyst-1") -> CaseLabel:
    return CaseLabel(name, analyst, T0, str(uuid.uuid4()))


# -- cases from events ------------------------------------------------------------------


def test_an_alert_becomes_a_case_keyed_by_its_alert_id():
    case = case_from_alert(alert(1, reasons=[{"code": "CARD_VELOCITY", "contribution": 0.4}]))
    assert case.case_id == "alert-1"
    assert case.kind == "alert" and case.severity == "HIGH" and case.status == "open"
    assert case.subject_type == "TRANSACTION"
    assert case.typologies == ("CARD_VELOCITY",)


@pytest.mark.parametrize(
    ("source", "subject"),
    [
        ("TRANSACTION", "TRANSACTION"),
        ("GREEN_PURPOSE", "TRANSACTION"),
        ("APPLICATION", "APPLICATION"),
        ("FACE", "APPLICATION"),
        ("DEVICE_SIGNAL", "DEVICE_SIGNAL"),
        ("OTHER", None),
    ],
)
def test_the_labelled_subject_follows_the_alert_source(source, subject):
    assert case_from_alert(alert(1, source=source)).subject_type == subject


def test_a_review_becomes_a_case_on_its_application():
    event = review(7)
    case = case_from_review(event)
    assert case.case_id == "review-app-00007"
    assert case.severity == "REVIEW" and case.subject_type == "APPLICATION"
    assert case.subject_event_id == event["application_event_id"]
    assert case.record["record_hash"] == event["record_hash"]  # the decision record is kept


def test_raw_pii_that_slipped_upstream_is_masked_in_the_case():
    raw_card, raw_phone, raw_id = "6222021234567890123", "13912345678", "110105199003071234"
    event = alert(
        1,
        card_masked=raw_card,
        customer_id=f"cust {raw_phone}",
        blacklist_entry_id=f"entry of {raw_id}",
        reasons=[{"code": f"NOTE_{raw_phone}", "contribution": 0.1}],
    )
    case = case_from_alert(event)
    shown = repr(case)
    for raw in (raw_card, raw_phone, raw_id):
        assert raw not in shown
    assert case.record["card_masked"] == "622202*********0123"
    assert case.event_id == event["event_id"]  # ids are not touched


# -- typologies ----------------------------------------------------------------------------


def test_rule_codes_all_count_in_priority_order():
    reasons = [
        ("ONLINE_LR", 0.01),
        ("DEVICE_FARM", 0.0),
        ("SIM_SWAP_LARGE_AMOUNT", 0.9),
        ("FACE_NO_FACE", 0.0),
    ]
    assert typologies(reasons) == (
        "ACCOUNT_TAKEOVER",
        "DEVICE_FARM",
        "FACE_VERIFICATION",
        "MODEL_RISK",
    )


def test_only_the_largest_scored_contribution_counts():
    reasons = [("CARD_VELOCITY", 0.05), ("AMOUNT_ANOMALY", 0.3), ("ONLINE_LR", 0.01)]
    assert typologies(reasons) == ("CARD_ANOMALY",)
    assert typologies([("BP_DEFAULT_RISK", 0.2), ("VELOCITY_RISK", 0.25)]) == (
        "APPLICATION_VELOCITY",
    )


def test_not_provided_and_unknown_codes_give_other():
    assert typologies([("FACE_RISK_NOT_PROVIDED", 0.0), ("SOMETHING_NEW", 0.4)]) == (OTHER,)
    assert typologies([]) == (OTHER,)
    assert typologies([("CARD_VELOCITY", 0.0)]) == (OTHER,)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "DEVICE_FARM",
                    "EMULATOR",
                    "CARD_VELOCITY",
                    "DIVERSION_ALERT",
                    "X",
                    "BP_DEFAULT_RISK",
                ]
            ),
            st.floats(0, 1),
        )
    )
)
def test_typologies_are_known_names_without_repeats(reasons):
    found = typologies(reasons)
    assert found and len(set(found)) == len(found)
    assert set(found) <= set(TYPOLOGIES)


# -- feedback ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "fraud", "legitimate"),
    [
        (lambda: case_from_alert(alert(1)), "FRAUD", "NOT_FRAUD"),
        (lambda: case_from_alert(alert(1, source="FACE")), "DEFAULTED", "REPAID"),
        (lambda: case_from_review(review(1)), "DEFAULTED", "REPAID"),
        (lambda: case_from_alert(alert(1, source="DEVICE_SIGNAL")), "FRAUD", "NOT_FRAUD"),
    ],
)
def test_labels_are_the_ones_the_engine_learns_from(make, fraud, legitimate):
    case = make()
    assert feedback_label(case, "fraud") == fraud
    assert feedback_label(case, "legitimate") == legitimate
    # agents/feedback.py learns "bad" from exactly these labels.
    assert fraud in POSITIVE_LABELS and legitimate not in POSITIVE_LABELS


def test_feedback_event_is_valid_and_its_id_is_per_case_and_label():
    case = case_from_review(review(4))
    record = feedback_record(case, "fraud", "analyst-017", T0)
    AvroCodec().encode("greencredit.analyst-feedback", record)  # raises if invalid
    assert record["subject_event_id"] == case.subject_event_id
    assert record["case_id"] == "review-app-00004" and record["label"] == "DEFAULTED"
    again = feedback_record(case, "fraud", "analyst-018", T0 + timedelta(seconds=1))
    assert again["event_id"] == record["event_id"] == feedback_event_id(case.case_id, "DEFAULTED")
    other = feedback_record(case, "legitimate", "analyst-017", T0)
    assert other["event_id"] != record["event_id"]
    other_case = feedback_record(case_from_review(review(5)), "fraud", "analyst-017", T0)
    assert other_case["event_id"] != record["event_id"]


def test_bad_label_requests_are_refused_with_a_reason():
    case = case_from_alert(alert(1))
    with pytest.raises(InvalidLabel, match="verdict"):
        feedback_label(case, "maybe")
    with pytest.raises(InvalidLabel, match="OTHER"):
        feedback_label(case_from_alert(alert(2, source="OTHER")), "fraud")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        None,
        17,
        "Zhang Wei",
        "13912345678",
        "zhang.wei@example.com",
        "a" * 65,
        "<b>x</b>",
    ],
)
def test_analyst_ids_must_be_staff_ids(raw):
    with pytest.raises(InvalidLabel):
        analyst_id_checked(raw)


def test_a_staff_id_is_accepted_trimmed():
    assert analyst_id_checked("  analyst-017 ") == "analyst-017"
