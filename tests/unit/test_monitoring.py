"""Model monitoring: prequential metrics, drift alarms and the product's recommendation rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest

from greencredit.models.monitoring import (
    GapProfile,
    ModelHealthEvent,
    ModelMonitor,
    MonitorConfig,
    Recommendation,
    from_state,
    gap_profile,
    observe_label,
    observe_scores,
    recommend,
    snapshot,
    to_state,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
N = 3000
SHIFT_AT = 1500


def at(i: int) -> datetime:
    return T0 + timedelta(seconds=i)


def score_streams(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stationary BP probabilities around 0.3 and an LR that tracks them with noise."""
    rng = np.random.default_rng(seed)
    bp = np.clip(rng.normal(0.3, 0.08, N), 0.0, 1.0)
    lr = np.clip(bp + rng.normal(0.0, 0.05, N), 0.0, 1.0)
    return bp, lr


def feed_scores(state: ModelMonitor, bp: np.ndarray, lr: np.ndarray) -> list[ModelHealthEvent]:
    events: list[ModelHealthEvent] = []
    for i, (b, r) in enumerate(zip(bp, lr, strict=True)):
        events += observe_scores(state, float(b), float(r), at(i))
    return events


# --- drift detection ------------------------------------------------------------------------


def test_stationary_scores_raise_no_alarm() -> None:
    bp, lr = score_streams(seed=11)
    state = ModelMonitor()
    assert feed_scores(state, bp, lr) == []
    assert state.n_scored == N and state.n_health_events == 0


def test_a_shift_in_bp_scores_is_detected_and_flags_bp_for_replacement() -> None:
    bp, lr = score_streams(seed=11)  # the same stream as the stationary test, then shifted
    bp[SHIFT_AT:] = np.clip(bp[SHIFT_AT:] + 0.45, 0.0, 1.0)
    state = ModelMonitor()
    events = feed_scores(state, bp, lr)
    assert [(e.detection.model, e.detection.signal) for e in events] == [("bp", "score")]
    event = events[0]
    assert SHIFT_AT < (event.detection.detected_at - T0).total_seconds() < SHIFT_AT + 400
    assert event.detection.mean_before == pytest.approx(0.3, abs=0.03)
    assert event.detection.mean_after is not None and event.detection.mean_after > 0.35
    assert event.gap.mean_abs > 0.25
    assert event.recommendation is Recommendation.REPLACE_NEURAL_BASE_MODEL
    assert event.lr_weight_adjustment == event.previous_lr_weight_adjustment == 0.0
    assert state.bp_flagged_for_replacement
    assert snapshot(state)["bp_flagged_for_replacement"] is True


def test_the_gap_is_judged_on_the_events_after_the_detection() -> None:
    bp, lr = score_streams(seed=11)
    bp[SHIFT_AT:] = np.clip(bp[SHIFT_AT:] + 0.32, 0.0, 1.0)
    state = ModelMonitor()
    events = feed_scores(state, bp, lr)
    assert len(events) == 1
    event = events[0]
    n = state.config.assessment_events
    assert event.at - event.detection.detected_at == timedelta(seconds=n)
    # The n events up to the detection still straddle the change and understate the gap.
    detected = int((event.detection.detected_at - T0).total_seconds())
    straddling = np.abs(lr - bp)[detected - n + 1 : detected + 1].mean()
    assert straddling < 0.25 < event.gap.mean_abs
    assert event.recommendation is Recommendation.REPLACE_NEURAL_BASE_MODEL


def lr_biased_upwards(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """From SHIFT_AT the LR reads consistently ~0.1 above the BP model (a small, one-way gap)."""
    bp, lr = score_streams(seed)
    rng = np.random.default_rng(seed + 1)
    lr[SHIFT_AT:] = np.clip(bp[SHIFT_AT:] + 0.1 + rng.normal(0.0, 0.01, N - SHIFT_AT), 0.0, 1.0)
    return bp, lr


def test_small_one_directional_gap_adjusts_the_lr_weight() -> None:
    bp, lr = lr_biased_upwards(seed=12)
    state = ModelMonitor()
    events = feed_scores(state, bp, lr)
    assert [(e.detection.model, e.detection.signal) for e in events] == [("lr", "score")]
    event = events[0]
    assert event.gap.one_directional and event.gap.mean_abs < 0.25
    assert event.gap.mean_signed > 0
    assert event.recommendation is Recommendation.ADJUST_LR_WEIGHT
    # No labels yet: the model whose scores moved is the suspect, so it is trusted less.
    assert event.lr_weight_adjustment == pytest.approx(-0.02)
    assert state.lr_weight_adjustment == event.lr_weight_adjustment
    assert not state.bp_flagged_for_replacement


def test_the_adjustment_is_clamped_to_the_lender_limit() -> None:
    bp, lr = lr_biased_upwards(seed=12)
    state = ModelMonitor(MonitorConfig(lr_weight_limit=0.10, lr_weight_step=0.5))
    events = feed_scores(state, bp, lr)
    assert events[0].recommendation is Recommendation.ADJUST_LR_WEIGHT
    assert events[0].lr_weight_adjustment == pytest.approx(-0.10)

    near_limit = ModelMonitor(lr_weight_adjustment=-0.09)
    events = feed_scores(near_limit, bp, lr)
    assert events[0].previous_lr_weight_adjustment == -0.09
    assert events[0].lr_weight_adjustment == pytest.approx(-0.10)  # not -0.11


def test_labels_decide_the_direction_once_there_are_enough() -> None:
    bp, lr = lr_biased_upwards(seed=12)
    state = ModelMonitor()
    events: list[ModelHealthEvent] = []
    for i in range(N):
        if i < 200:
            # The LR ranks these outcomes perfectly, the BP model only through its noise.
            events += observe_label(state, float(bp[i]), float(lr[i]), bool(lr[i] > 0.3), at(i))
        events += observe_scores(state, float(bp[i]), float(lr[i]), at(i))
    snap = snapshot(state)
    assert snap["lr_log_loss"] < snap["bp_log_loss"]
    assert [e.recommendation for e in events] == [Recommendation.ADJUST_LR_WEIGHT]
    assert events[0].lr_weight_adjustment == pytest.approx(+0.02)


def test_a_rise_in_lr_errors_is_detected_on_the_label_stream() -> None:
    rng = np.random.default_rng(13)
    confident_no, confident_yes = rng.uniform(0.05, 0.3, 2000), rng.uniform(0.7, 0.95, 2000)
    lr = np.where(rng.random(2000) < 0.5, confident_no, confident_yes)
    labels = lr > 0.5
    labels[1000:] = ~labels[1000:]  # the LR's world turns upside down
    state = ModelMonitor()
    events: list[ModelHealthEvent] = []
    for i in range(2000):
        events += observe_label(state, 0.5, float(lr[i]), bool(labels[i]), at(i))
    assert [(e.detection.model, e.detection.signal) for e in events] == [("lr", "error")]
    d = events[0].detection
    assert d.mean_before is not None and d.mean_after is not None
    assert d.mean_after > d.mean_before


# --- the rule itself ------------------------------------------------------------------------


def test_gap_profile() -> None:
    steady = gap_profile([0.1, 0.2, 0.3], 1.0)
    assert steady.n == 3 and steady.one_directional
    assert steady.mean_abs == steady.mean_signed == pytest.approx(0.2)
    mixed = gap_profile([0.1, -0.1, 0.1, 0.1], 0.95)
    assert not mixed.one_directional and mixed.mean_signed == pytest.approx(0.05)
    assert gap_profile([0.1] * 19 + [-0.1], 0.95).one_directional
    assert not gap_profile([0.1] * 19 + [0.0], 1.0).one_directional
    assert not gap_profile([], 0.95).one_directional


REPLACE = Recommendation.REPLACE_NEURAL_BASE_MODEL
ADJUST = Recommendation.ADJUST_LR_WEIGHT
OBSERVE = Recommendation.OBSERVE


@pytest.mark.parametrize(
    ("profile", "direction", "current", "expected"),
    [
        (GapProfile(50, 0.30, 0.30, True), +1, 0.0, (REPLACE, 0.0)),
        (GapProfile(50, 0.30, 0.01, False), 0, 0.04, (REPLACE, 0.04)),
        (GapProfile(50, 0.10, 0.10, True), +1, 0.0, (ADJUST, 0.02)),
        (GapProfile(50, 0.10, -0.10, True), -1, 0.0, (ADJUST, -0.02)),
        (GapProfile(50, 0.10, 0.10, True), +1, 0.09, (ADJUST, 0.10)),  # clamped, not 0.11
        (GapProfile(50, 0.10, 0.10, True), -1, -0.10, (ADJUST, -0.10)),
        (GapProfile(50, 0.10, 0.00, False), +1, 0.0, (OBSERVE, 0.0)),
        (GapProfile(50, 0.10, 0.10, True), 0, 0.05, (OBSERVE, 0.05)),
        (GapProfile(50, 0.25, 0.25, True), +1, 0.0, (ADJUST, 0.02)),  # "above" is strict
    ],
)
def test_recommendation_rule(
    profile: GapProfile, direction: int, current: float, expected: tuple[Recommendation, float]
) -> None:
    rec, value = recommend(profile, direction, current, MonitorConfig())
    assert rec is expected[0]
    assert value == pytest.approx(expected[1])


# --- prequential metrics and the console ----------------------------------------------------


def test_prequential_metrics_score_the_stored_predictions() -> None:
    rng = np.random.default_rng(14)
    state = ModelMonitor(MonitorConfig(window=400))
    snap = snapshot(state)
    assert snap["lr_auc"] is None and snap["lr_log_loss"] is None and snap["agreement_rate"] is None
    observe_label(state, 0.2, 0.2, False, at(0))
    assert snapshot(state)["lr_auc"] is None  # one class only: AUC undefined
    for i in range(1, 500):
        y = bool(rng.random() < 0.3)
        lr = float(np.clip((0.75 if y else 0.2) + rng.normal(0, 0.1), 0.0, 1.0))
        bp = float(rng.uniform(0.0, 1.0))  # uninformative
        observe_label(state, bp, lr, y, at(i))
    snap = snapshot(state)
    assert snap["n_labelled"] == 500 and snap["labels_in_window"] == 400
    assert snap["lr_auc"] > 0.9
    assert 0.35 < snap["bp_auc"] < 0.65
    assert snap["lr_log_loss"] < snap["bp_log_loss"]
    assert snap["positive_rate_in_window"] == pytest.approx(0.3, abs=0.08)


def test_agreement_counts_the_same_side_of_the_threshold() -> None:
    state = ModelMonitor()
    for i, (bp, lr) in enumerate([(0.2, 0.4), (0.6, 0.7), (0.4, 0.6), (0.9, 0.1)]):
        observe_scores(state, bp, lr, at(i))
    snap = snapshot(state)
    assert snap["agreement_rate"] == 0.5
    assert snap["mean_abs_gap"] == pytest.approx((0.2 + 0.1 + 0.2 + 0.8) / 4)
    assert snap["mean_signed_gap"] == pytest.approx((0.2 + 0.1 + 0.2 - 0.8) / 4)
    assert snap["n_scored"] == 4 and snap["last_seen_at"] == "2025-03-01T09:00:03+00:00"


def test_inputs_are_validated() -> None:
    state = ModelMonitor()
    with pytest.raises(ValueError, match="naive"):
        observe_scores(state, 0.1, 0.2, datetime(2025, 3, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        observe_label(state, 0.1, 0.2, True, datetime(2025, 3, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="probability"):
        observe_scores(state, 1.2, 0.2, T0)
    with pytest.raises(ValueError, match="probability"):
        observe_label(state, 0.1, float("nan"), True, T0)
    assert state.n_scored == state.n_labelled == 0
    with pytest.raises(ValueError, match="outside"):
        ModelMonitor(lr_weight_adjustment=0.2)
    with pytest.raises(ValueError, match="assessment_events"):
        MonitorConfig(window=10, assessment_events=50)


# --- persistence ----------------------------------------------------------------------------


def assert_same_snapshot(a: dict[str, object], b: dict[str, object]) -> None:
    """Equal, floats to 1e-12: rolling means carry revert round-off the rebuild does not."""
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, float):
            assert b[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        else:
            assert b[key] == value, key


def test_state_round_trip_keeps_adjustment_metrics_and_windows() -> None:
    bp, lr = lr_biased_upwards(seed=12)
    state = ModelMonitor(MonitorConfig(window=500))
    rng = np.random.default_rng(15)
    for i in range(N):
        observe_scores(state, float(bp[i]), float(lr[i]), at(i))
        if i % 5 == 0:
            observe_label(state, float(bp[i]), float(lr[i]), bool(rng.random() < lr[i]), at(i))
    assert state.lr_weight_adjustment != 0.0
    restored = from_state(orjson.loads(orjson.dumps(to_state(state))))
    assert_same_snapshot(snapshot(restored), snapshot(state))
    assert restored.lr_weight_adjustment == state.lr_weight_adjustment
    assert to_state(restored) == to_state(state)
    for i in range(100):  # and the rolling metrics continue alike
        for s in (state, restored):
            observe_label(s, float(bp[i]), float(lr[i]), i % 3 == 0, at(N + i))
    assert_same_snapshot(snapshot(restored), snapshot(state))


def test_unknown_monitor_state_version_is_rejected() -> None:
    state = {**to_state(ModelMonitor()), "format_version": 2}
    with pytest.raises(ValueError, match="format version 2"):
        from_state(state)


def test_health_events_and_snapshots_are_json() -> None:
    bp, lr = score_streams(seed=11)
    bp[SHIFT_AT:] = np.clip(bp[SHIFT_AT:] + 0.45, 0.0, 1.0)
    state = ModelMonitor()
    events = feed_scores(state, bp, lr)
    payload = orjson.loads(orjson.dumps(events[0].to_dict()))
    assert payload["recommendation"] == "REPLACE_NEURAL_BASE_MODEL"
    assert payload["model"] == "bp" and payload["detector"] == "ADWIN"
    assert payload["at"].endswith("+00:00") and payload["detected_at"] <= payload["at"]
    assert orjson.loads(orjson.dumps(snapshot(state)))["n_health_events"] == 1
