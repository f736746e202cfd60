"""The console's case store: masking, de-duplication, order, bound, labels, typologies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greencredit.agents.feedback import POSITIVE_LABELS
from greencredit.console.cases import (
    CaseLabel,
    CaseStore,
    InvalidLabel,
    analyst_id_checked,
    case_from_alert,
    case_from_review,
    feedback_event_id,
    feedback_label,
    feedback_record,
    labels_of,
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


# -- store ----------------------------------------------------------------------------


def test_a_redelivered_event_is_one_case():
    store = CaseStore(10)
    assert store.add(case_from_alert(alert(1)))
    assert not store.add(case_from_alert(alert(1)))
    assert len(store) == 1


@given(st.permutations(range(8)))
def test_cases_come_newest_first_whatever_the_arrival_order(order):
    store = CaseStore(100)
    for n in order:
        store.add(case_from_alert(alert(n, minutes=n)))
    assert [c.case_id for c in store.query()] == [f"alert-{n}" for n in range(7, -1, -1)]


@given(st.permutations(range(10)))
def test_the_store_keeps_the_newest_cases_within_its_bound(order):
    store = CaseStore(4)
    for n in order:
        store.add(case_from_alert(alert(n, minutes=n)))
    assert len(store) == 4
    assert [c.case_id for c in store.query()] == ["alert-9", "alert-8", "alert-7", "alert-6"]


def test_an_evicted_case_redelivered_does_not_come_back():
    store = CaseStore(2)
    for n in range(3):
        store.add(case_from_alert(alert(n, minutes=n)))
    assert store.get("alert-0") is None
    assert not store.add(case_from_alert(alert(0, minutes=0)))
    assert store.get("alert-0") is None


def test_a_label_closes_the_case_and_the_first_label_wins():
    store = CaseStore(10)
    store.add(case_from_alert(alert(1)))
    closed = store.record_label("alert-1", label("FRAUD", "a-1"))
    assert closed is not None and closed.status == "closed"
    store.record_label("alert-1", label("NOT_FRAUD", "a-2"))
    case = store.get("alert-1")
    assert case is not None and case.label is not None
    assert (case.label.label, case.label.analyst_id) == ("FRAUD", "a-1")
    assert store.counts() == {"open": 0, "closed": 1}


def test_a_label_read_before_its_case_closes_the_case_on_arrival():
    store = CaseStore(10)
    assert store.record_label("alert-1", label()) is None
    store.add(case_from_alert(alert(1)))
    case = store.get("alert-1")
    assert case is not None and case.status == "closed"


def test_a_label_without_case_id_closes_the_case_of_its_subject_event():
    store = CaseStore(10)
    event = review(3)
    store.add(case_from_review(event))
    feedback = {
        "event_id": str(uuid.uuid4()),
        "subject_event_id": event["application_event_id"],
        "label": "REPAID",
        "analyst_id": "a-9",
        "case_id": None,
        "occurred_at": T0,
    }
    [(key, parsed)] = labels_of([feedback])
    assert store.record_label(key, parsed) is not None
    assert store.get("review-app-00003").status == "closed"


def test_filters_combine():
    store = CaseStore(100)
    store.add(case_from_alert(alert(1, tenant_id="bank-a", severity="CRITICAL")))
    store.add(
        case_from_alert(
            alert(
                2,
                tenant_id="bank-b",
                severity="LOW",
                reasons=[{"code": "DEVICE_FARM", "contribution": 0.5}],
            )
        )
    )
    store.add(case_from_review(review(3, tenant_id="bank-a")))
    store.record_label("alert-1", label())

    def ids(**filters):
        return sorted(c.case_id for c in store.query(**filters))

    assert ids(lender="bank-a") == ["alert-1", "review-app-00003"]
    assert ids(severity="REVIEW") == ["review-app-00003"]
    assert ids(typology="DEVICE_FARM") == ["alert-2"]
    assert ids(status="open") == ["alert-2", "review-app-00003"]
    assert ids(lender="bank-a", status="closed") == ["alert-1"]
    assert ids(lender="nobody") == []
    assert len(store.query(limit=2)) == 2
    facets = store.facets()
    assert facets["lenders"] == ["bank-a", "bank-b"]
    assert "DEVICE_FARM" in facets["typologies"]


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
