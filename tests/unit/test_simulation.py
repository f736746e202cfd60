"""The simulator: deterministic, schema-valid, with ground truth that the scoring counts right."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greencredit.demo.summary import percentile, rank_auc
from greencredit.streams.codec import AvroCodec
from greencredit.streams.simulation.faces import FacePerson, FacePool
from greencredit.streams.simulation.population import RepaymentHabit, instalment_paid_on
from greencredit.streams.simulation.scenario import GRACE_DAYS, Scenario
from greencredit.streams.simulation.truth import TYPOLOGIES, GroundTruth, detection_report

CODEC = AvroCodec()


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario(customers=60, days=60, seed=3)


def _all_events(s: Scenario) -> list[tuple[str, dict]]:
    return [item for day in sorted(s.plan) for item in s.plan[day]]


def test_the_same_seed_gives_the_same_traffic(scenario: Scenario) -> None:
    again = Scenario(customers=60, days=60, seed=3)
    first = [(t, e["event_id"], e["occurred_at"]) for t, e in _all_events(scenario)]
    assert first == [(t, e["event_id"], e["occurred_at"]) for t, e in _all_events(again)]
    other = Scenario(customers=60, days=60, seed=4)
    assert first != [(t, e["event_id"], e["occurred_at"]) for t, e in _all_events(other)]


def test_every_planned_event_is_valid_for_its_topic(scenario: Scenario) -> None:
    events = _all_events(scenario)
    for topic, event in events:
        CODEC.encode(topic, event)  # raises InvalidEvent naming the field
    assert len({e["event_id"] for _, e in events}) == len(events)


def test_every_fraud_typology_is_planted(scenario: Scenario) -> None:
    counts = scenario.truth.counts()
    for name in TYPOLOGIES[:5]:  # the ones planted up front; the rest follow disbursements
        assert counts[name]["cases"] >= 1, name
    apps = {e["application_id"] for t, e in _all_events(scenario) if t.endswith("applications")}
    for name in ("device_farm", "identity_theft", "velocity_burst", "synthetic_identity"):
        assert scenario.truth.subjects(name) <= apps


def test_events_stay_inside_the_simulated_days(scenario: Scenario) -> None:
    for day, items in scenario.plan.items():
        for _, event in items:
            assert event["occurred_at"].date() == scenario.date_of(day)


def _loan(s: Scenario, customer_id: str, purpose: str = "ELECTRIC_VEHICLE") -> dict:
    first = s.date_of(5) + timedelta(days=30)
    return {
        "loan_id": f"loan-{customer_id}",
        "application_id": f"app-{customer_id}",
        "customer_id": customer_id,
        "tenant_id": "lender-green-bank",
        "purpose": purpose,
        "amount_minor": 1_000_000,
        "currency": "CNY",
        "schedule": [
            {
                "number": n + 1,
                "due_date": first + timedelta(days=30 * n),
                "amount_due_minor": 90_000,
            }
            for n in range(12)
        ],
    }


def test_a_defaulting_borrower_never_repays_and_is_ground_truth() -> None:
    s = Scenario(customers=60, days=60, seed=5)
    c = next(c for c in s.customers if c.habit == RepaymentHabit.FIRST_PAYMENT_DEFAULT)
    s.on_disbursement(_loan(s, c.customer_id), day=5)
    s.on_disbursement(_loan(s, c.customer_id), day=6)  # redelivered: nothing more
    assert s.truth.cases["first_payment_default"] == {
        f"loan-{c.customer_id}": {f"loan-{c.customer_id}"}
    }
    repayments = [e for t, e in _all_events(s) if t.endswith("repayments")]
    assert not [r for r in repayments if r["loan_id"] == f"loan-{c.customer_id}"]


def test_a_diverted_green_loan_is_spent_where_it_does_not_fit() -> None:
    s = Scenario(customers=60, days=60, seed=5)
    diverter = next(c for c in s.customers if c.customer_id in s.diverters)
    honest = next(c for c in s.customers if c.customer_id not in s.diverters)
    for c in (diverter, honest):
        s.on_disbursement(_loan(s, c.customer_id), day=5)
    fitting = set(s.fitting_mccs["ELECTRIC_VEHICLE"])
    spent = {
        e["loan_id"]: e["mcc"]
        for t, e in _all_events(s)
        if t.endswith("transactions") and e["loan_id"]
    }
    assert spent[f"loan-{diverter.customer_id}"] not in fitting
    assert spent[f"loan-{honest.customer_id}"] in fitting
    assert set(s.truth.cases["green_fund_diversion"]) == {f"loan-{diverter.customer_id}"}


def test_repayment_habits() -> None:
    rng = random.Random(1)
    due = Scenario(customers=20, days=45, seed=1).date_of(40)
    for _ in range(50):
        assert instalment_paid_on(RepaymentHabit.ON_TIME, 1, due, rng) <= due
        late = instalment_paid_on(RepaymentHabit.LATE_IN_GRACE, 1, due, rng) - due
        assert timedelta(0) <= late < timedelta(days=GRACE_DAYS)
        assert instalment_paid_on(RepaymentHabit.FIRST_PAYMENT_DEFAULT, 1, due, rng) is None
        cured = instalment_paid_on(RepaymentHabit.GRADUAL_DELINQUENCY_CURE, 2, due, rng) - due
        assert cured > timedelta(days=GRACE_DAYS)


def test_detection_report_counts_cases_and_false_positives() -> None:
    truth = GroundTruth()
    truth.add("device_farm", "ring-0", "a1")
    truth.add("device_farm", "ring-0", "a2")
    truth.add("device_farm", "ring-1", "a3")
    report = detection_report(truth, {"device_farm": {"a1", "x9"}})
    farm = report["device_farm"]
    assert (farm["cases"], farm["cases_found"], farm["false_positives"]) == (2, 1, 1)
    assert (farm["precision"], farm["recall"]) == (0.5, 0.5)
    assert (farm["event_precision"], farm["event_recall"]) == (0.5, 0.333)
    # Nothing planted and nothing flagged: no number, rather than a flattering 1.0.
    assert report["identity_theft"]["precision"] is None
    assert report["identity_theft"]["recall"] is None
    with pytest.raises(ValueError, match="unknown typology"):
        truth.add("card_cloning", "c", "s")


@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=2, max_size=30))
def test_rank_auc_is_the_pairwise_win_rate(rows: list[tuple[int, bool]]) -> None:
    scores = [float(s) for s, _ in rows]
    labels = [b for _, b in rows]
    pos = [s for s, b in zip(scores, labels, strict=True) if b]
    neg = [s for s, b in zip(scores, labels, strict=True) if not b]
    auc = rank_auc(scores, labels)
    if not pos or not neg:
        assert auc is None
        return
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    assert auc == pytest.approx(wins / (len(pos) * len(neg)))


def test_percentile_is_a_value_that_was_observed() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 50) is None


def test_honest_faces_and_fraudster_faces_vary_per_upload(scenario: Scenario) -> None:
    rng = random.Random(2)
    thief = scenario.faces.fraudsters[0]
    photos = [scenario.faces.photo(thief, rng, enrolled=True) for _ in range(20)]
    assert len(set(photos)) == 20
    fraudsters = {p.name for p in scenario.faces.fraudsters}
    honest = {p.name for p in scenario.faces.honest}
    assert len(fraudsters | honest) == 10 and not fraudsters & honest
    assert all(len(p.photos) == 10 for p in scenario.faces.fraudsters)
    # A thief never re-uploads the photo that put them on the blacklist.
    dark, bright = np.zeros((112, 92, 3), np.uint8), np.full((112, 92, 3), 200, np.uint8)
    person = FacePerson("two photos", (dark, bright))
    uploads = [FacePool.photo(person, rng, enrolled=True) for _ in range(10)]
    assert min(cv2.imdecode(np.frombuffer(u, np.uint8), 0).mean() for u in uploads) > 100
    applications = [e for t, e in _all_events(scenario) if t.endswith("applications")]
    with_faces = Counter(bool(e["face_image"]) for e in applications)
    assert with_faces[True] >= 1 and with_faces[False] >= 1
