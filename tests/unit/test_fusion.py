"""Fusion of AHP weights and model outputs: invariants first, then hand-computed cases."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greencredit.models.fusion import (
    APPROVE,
    DECLINE,
    INDICATORS,
    NO_INDICATORS,
    REVIEW,
    FusionPolicy,
    FusionResult,
    HardFlag,
    fuse_batch,
    fuse_one,
    indicator_matrix,
)

SEVERITY = {APPROVE: 0, REVIEW: 1, DECLINE: 2}
FLAG_FLOOR = {
    HardFlag.FACE_BLACKLIST_HIT: DECLINE,
    HardFlag.LIVENESS_FAILED: REVIEW,
    HardFlag.FEATURES_UNAVAILABLE: REVIEW,
    HardFlag.DEVICE_FARM: REVIEW,
    HardFlag.FUNDING_UNAVAILABLE: REVIEW,
    HardFlag.IDENTITY_INVALID: REVIEW,
    HardFlag.RISKY_DEVICE: REVIEW,
    HardFlag.FACE_UNVERIFIED: REVIEW,
    HardFlag.VELOCITY_BURST: REVIEW,
    HardFlag.FACE_BLACKLIST_NEAR_MISS: REVIEW,
}
K = len(INDICATORS)


def policy_for(weights: dict[str, float], approve_below=0.3, decline_at_or_above=0.7, **kw):
    return FusionPolicy(weights, approve_below, decline_at_or_above, config_version=1, **kw)


def same_score(a: float, b: float) -> bool:
    """Exact equality, with NaN scores (no indicator) equal to each other."""
    return a == b or (math.isnan(a) and math.isnan(b))


def same_result(a: FusionResult, b: FusionResult) -> bool:
    return same_score(a.score, b.score) and a[1:] == b[1:]


def row_mapping(row: np.ndarray) -> dict[str, float | None]:
    return {
        name: (None if math.isnan(v) else v)
        for name, v in zip(INDICATORS, row.tolist(), strict=True)
    }


indicator_value = st.one_of(st.floats(0.0, 1.0), st.just(math.nan))
rows = st.lists(st.lists(indicator_value, min_size=K, max_size=K), min_size=1, max_size=40)
flag_sets = st.frozensets(st.sampled_from(list(HardFlag)))


@st.composite
def policies(draw: st.DrawFn) -> FusionPolicy:
    raw = draw(st.lists(st.floats(0.0, 1.0), min_size=K, max_size=K).filter(lambda w: sum(w) > 0))
    weights = {
        name: w / sum(raw)
        for name, w in zip(INDICATORS, raw, strict=True)
        if w > 0 or draw(st.booleans())
    }
    low = draw(st.floats(0.0, 1.0))
    high = draw(st.floats(low, 1.0))
    adjustment = draw(st.floats(-1.0, 1.0))
    return policy_for(weights, low, high, lr_weight_adjustment=adjustment)


# --- invariants -----------------------------------------------------------------------------


@given(rows, policies(), st.data())
def test_batch_equals_one_by_one(data_rows, policy, data):
    matrix = np.array(data_rows, dtype=np.float64)
    flags = [data.draw(flag_sets) for _ in data_rows]
    batch = fuse_batch(matrix, policy, flags)
    assert len(batch) == len(data_rows)
    for row, row_flags, result in zip(matrix, flags, batch, strict=True):
        assert same_result(fuse_one(row_mapping(row), policy, row_flags), result)
        assert same_result(fuse_batch(row[None, :], policy, [row_flags])[0], result)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_large_batch_in_any_memory_layout_equals_one_by_one(layout):
    """A row's score must not depend on its batch size or the caller's array layout."""
    rng = np.random.default_rng(7)
    raw = rng.random(K) ** 3
    policy = policy_for(dict(zip(INDICATORS, (raw / raw.sum()).tolist(), strict=True)), 0.3, 0.7)
    matrix = rng.random((256, K))
    matrix[rng.random(matrix.shape) < 0.2] = np.nan
    batch = fuse_batch(np.asarray(matrix, order=layout), policy)
    for row, result in zip(matrix, batch, strict=True):
        assert same_result(fuse_one(row_mapping(row), policy), result)


@given(rows, policies())
def test_reasons_sorted_and_contributions_sum_to_score(data_rows, policy):
    for result in fuse_batch(np.array(data_rows), policy):
        scored = [r for r in result.reasons if r.code in {n.upper() for n in INDICATORS}]
        contributions = [r.contribution for r in scored]
        assert contributions == sorted(contributions, reverse=True)
        if math.isnan(result.score):
            assert result.reasons[0].code == NO_INDICATORS
            assert result.decision == REVIEW
        else:
            assert 0.0 <= result.score <= 1.0 + 1e-12
            assert math.fsum(r.contribution for r in result.reasons) == pytest.approx(
                result.score, abs=1e-9
            )


@given(rows, policies())
def test_every_indicator_is_explained_once_without_pii(data_rows, policy):
    matrix = np.array(data_rows)
    for row, result in zip(matrix, fuse_batch(matrix, policy), strict=True):
        by_indicator = [r for r in result.reasons if r.indicator]
        assert sorted(r.indicator for r in by_indicator) == sorted(INDICATORS)
        for reason in by_indicator:
            missing = math.isnan(row[INDICATORS.index(reason.indicator)])
            suffix = "_NOT_PROVIDED" if missing else ""
            assert reason.code == reason.indicator.upper() + suffix
        assert all(re.fullmatch(r"[A-Z_]+", r.code) for r in result.reasons)


@given(rows, policies(), st.data())
def test_hard_flags_set_a_floor_and_never_relax(data_rows, policy, data):
    matrix = np.array(data_rows)
    flags = [data.draw(flag_sets) for _ in data_rows]
    unflagged = fuse_batch(matrix, policy)
    flagged = fuse_batch(matrix, policy, flags)
    for before, after, row_flags in zip(unflagged, flagged, flags, strict=True):
        floor = max((SEVERITY[FLAG_FLOOR[f]] for f in row_flags), default=0)
        assert SEVERITY[after.decision] == max(SEVERITY[before.decision], floor)
        expected = tuple(f.value for f in HardFlag if f in row_flags)
        assert after.forced_by == expected
        assert tuple(r.code for r in after.reasons[: len(expected)]) == expected
        assert after.reasons[len(expected) :] == before.reasons
        assert same_score(after.score, before.score)


@given(st.floats(0.0, 1.0), st.lists(st.booleans(), min_size=K, max_size=K), policies())
def test_skipped_check_does_not_bias_the_score(value, present, policy):
    """With every provided indicator at the same risk, the score is that risk."""
    row = np.where(present, value, np.nan)
    (result,) = fuse_batch(row[None, :], policy)
    if not math.isnan(result.score):
        assert result.score == pytest.approx(value, abs=1e-12)


# --- thresholds -----------------------------------------------------------------------------

DEVICE_ONLY = {"device_risk": 1.0}


@pytest.mark.parametrize(
    ("value", "decision"),
    [
        (0.0, APPROVE),
        (np.nextafter(0.3, 0.0), APPROVE),
        (0.3, REVIEW),
        (np.nextafter(0.7, 0.0), REVIEW),
        (0.7, DECLINE),
        (1.0, DECLINE),
    ],
)
def test_threshold_boundaries(value, decision):
    result = fuse_one({"device_risk": float(value)}, policy_for(DEVICE_ONLY))
    assert result.score == value
    assert result.decision == decision


def test_equal_thresholds_leave_no_review_band():
    policy = policy_for(DEVICE_ONLY, 0.5, 0.5)
    assert fuse_one({"device_risk": np.nextafter(0.5, 0.0)}, policy).decision == APPROVE
    assert fuse_one({"device_risk": 0.5}, policy).decision == DECLINE


def test_extreme_thresholds():
    never_approve = policy_for(DEVICE_ONLY, 0.0, 1.0)
    assert fuse_one({"device_risk": 0.0}, never_approve).decision == REVIEW
    assert fuse_one({"device_risk": 1.0}, never_approve).decision == DECLINE


# --- missing indicators ---------------------------------------------------------------------


def test_missing_indicator_weight_is_redistributed_proportionally():
    policy = policy_for({"device_risk": 0.2, "face_risk": 0.3, "bp_default_risk": 0.5})
    result = fuse_one({"device_risk": 0.5, "face_risk": None, "bp_default_risk": 0.8}, policy)
    # Without face: device 0.2/0.7, bp 0.5/0.7 -> (0.1 + 0.4) / 0.7.
    assert result.score == pytest.approx(0.5 / 0.7, abs=1e-15)
    assert result.decision == DECLINE
    assert [(r.code, r.indicator) for r in result.reasons[:2]] == [
        ("BP_DEFAULT_RISK", "bp_default_risk"),
        ("DEVICE_RISK", "device_risk"),
    ]
    assert result.reasons[0].contribution == pytest.approx(0.4 / 0.7, abs=1e-15)
    assert result.reasons[1].contribution == pytest.approx(0.1 / 0.7, abs=1e-15)
    not_provided = [r for r in result.reasons if r.code.endswith("_NOT_PROVIDED")]
    assert "FACE_RISK_NOT_PROVIDED" in [r.code for r in not_provided]
    assert all(r.contribution == 0.0 for r in not_provided)
    # Provided zero-weight indicators do not exist here; all other seven are "not provided".
    assert len(not_provided) == K - 2
    assert result.forced_by == ()


def test_nan_and_none_both_mean_not_provided():
    policy = policy_for({"device_risk": 0.5, "face_risk": 0.5})
    as_none = fuse_one({"device_risk": 0.4, "face_risk": None}, policy)
    as_nan = fuse_one({"device_risk": 0.4, "face_risk": math.nan}, policy)
    absent = fuse_one({"device_risk": 0.4}, policy)
    assert as_none == as_nan == absent
    assert as_none.score == 0.4


def test_all_missing_is_review_with_no_indicators():
    policy = policy_for(DEVICE_ONLY, 0.9, 0.95)
    result = fuse_one({}, policy)
    assert math.isnan(result.score)
    assert result.decision == REVIEW
    assert result.reasons[0].code == NO_INDICATORS
    assert len(result.reasons) == 1 + K


def test_only_weightless_indicators_provided_is_no_indicators():
    result = fuse_one({"esg_risk": 0.1}, policy_for(DEVICE_ONLY))
    assert math.isnan(result.score)
    assert result.decision == REVIEW
    assert result.reasons[0].code == NO_INDICATORS


def test_no_indicators_still_honours_a_decline_flag():
    result = fuse_one({}, policy_for(DEVICE_ONLY), frozenset({HardFlag.FACE_BLACKLIST_HIT}))
    assert result.decision == DECLINE
    assert [r.code for r in result.reasons[:2]] == ["FACE_BLACKLIST_HIT", NO_INDICATORS]


# --- hard flags -----------------------------------------------------------------------------


@pytest.mark.parametrize("flag", list(HardFlag))
@pytest.mark.parametrize(("value", "decision"), [(0.1, APPROVE), (0.5, REVIEW), (0.9, DECLINE)])
def test_each_flag_forces_its_floor(flag, value, decision):
    policy = policy_for(DEVICE_ONLY)
    assert fuse_one({"device_risk": value}, policy).decision == decision
    result = fuse_one({"device_risk": value}, policy, frozenset({flag}))
    expected = (
        DECLINE
        if flag is HardFlag.FACE_BLACKLIST_HIT
        else max(decision, REVIEW, key=SEVERITY.__getitem__)
    )
    assert result.decision == expected
    assert result.forced_by == (flag.value,)
    assert result.reasons[0] == (flag.value, "", 0.0)
    assert result.score == value


def test_flags_given_as_plain_strings_are_accepted():
    result = fuse_one({"device_risk": 0.1}, policy_for(DEVICE_ONLY), frozenset({"DEVICE_FARM"}))
    assert result.decision == REVIEW
    assert result.forced_by == ("DEVICE_FARM",)


def test_unknown_flag_is_rejected_by_name():
    with pytest.raises(ValueError, match="NOT_A_FLAG"):
        fuse_one({"device_risk": 0.1}, policy_for(DEVICE_ONLY), frozenset({"NOT_A_FLAG"}))


def test_flags_length_must_match_rows():
    with pytest.raises(ValueError, match="flags"):
        fuse_batch(np.zeros((2, K)), policy_for(DEVICE_ONLY), [frozenset()])


# --- lr weight adjustment -------------------------------------------------------------------

LR, BP = INDICATORS.index("online_lr_risk"), INDICATORS.index("bp_default_risk")
EVEN = {name: 1.0 / K for name in INDICATORS}


def test_positive_adjustment_moves_weight_from_bp_to_lr():
    weights = policy_for(EVEN, lr_weight_adjustment=0.05).indicator_weights
    assert weights["online_lr_risk"] == pytest.approx(0.15)
    assert weights["bp_default_risk"] == pytest.approx(0.05)
    assert weights["device_risk"] == pytest.approx(0.1)


def test_negative_adjustment_moves_weight_from_lr_to_bp():
    weights = policy_for(EVEN, lr_weight_adjustment=-0.04).indicator_weights
    assert weights["online_lr_risk"] == pytest.approx(0.06)
    assert weights["bp_default_risk"] == pytest.approx(0.14)


@pytest.mark.parametrize(("adjustment", "lr", "bp"), [(0.5, 0.2, 0.0), (-0.5, 0.0, 0.2)])
def test_adjustment_is_clipped_at_the_giving_side(adjustment, lr, bp):
    weights = policy_for(EVEN, lr_weight_adjustment=adjustment).weights
    assert weights[LR] == pytest.approx(lr)
    assert weights[BP] == pytest.approx(bp)


@given(policies())
def test_adjusted_weights_stay_non_negative_and_sum_to_one(policy):
    assert (policy.weights >= 0.0).all()
    assert policy.weights.sum() == pytest.approx(1.0, abs=1e-12)
    unadjusted = policy_for(
        dict(policy.leaf_weights), policy.approve_below, policy.decline_at_or_above
    ).weights
    others = [i for i in range(K) if i not in (LR, BP)]
    np.testing.assert_array_equal(policy.weights[others], unadjusted[others])
    moved = policy.weights[LR] - unadjusted[LR]
    assert moved == pytest.approx(unadjusted[BP] - policy.weights[BP], abs=1e-15)
    assert abs(moved) <= abs(policy.lr_weight_adjustment) + 1e-15
    assert moved * policy.lr_weight_adjustment >= 0.0


# --- policy validation ----------------------------------------------------------------------


def test_unknown_leaf_names_are_named():
    with pytest.raises(ValueError, match="face_rsk, zzz_risk"):
        policy_for({"device_risk": 1.0, "zzz_risk": 0.0, "face_rsk": 0.0})


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_invalid_weight_is_named(bad):
    with pytest.raises(ValueError, match="esg_risk"):
        policy_for({"device_risk": 1.0, "esg_risk": bad})


@pytest.mark.parametrize("total", [0.9, 1.00001, 0.0])
def test_weights_must_sum_to_one(total):
    with pytest.raises(ValueError, match="sum to 1"):
        policy_for({"device_risk": total})


def test_weights_within_tolerance_are_renormalised():
    policy = policy_for({"device_risk": 0.5, "face_risk": 0.5000005})
    assert policy.weights.sum() == pytest.approx(1.0, abs=1e-15)
    assert policy.indicator_weights["esg_risk"] == 0.0


@pytest.mark.parametrize(
    ("low", "high"), [(0.7, 0.3), (-0.1, 0.5), (0.2, 1.1), (math.nan, 0.5), (0.2, math.nan)]
)
def test_thresholds_must_be_ordered_in_unit_interval(low, high):
    with pytest.raises(ValueError, match="approve_below"):
        policy_for(DEVICE_ONLY, low, high)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_adjustment_must_be_finite(bad):
    with pytest.raises(ValueError, match="lr_weight_adjustment"):
        policy_for(DEVICE_ONLY, lr_weight_adjustment=bad)


@pytest.mark.parametrize("bad", [1.5, True, "3"])
def test_config_version_must_be_int(bad):
    with pytest.raises(ValueError, match="config_version"):
        FusionPolicy(DEVICE_ONLY, 0.3, 0.7, config_version=bad)


def test_policy_is_immutable_and_detached_from_caller_dict():
    weights = {"device_risk": 1.0}
    policy = policy_for(weights)
    weights["device_risk"] = 0.0
    assert policy.leaf_weights["device_risk"] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        policy.weights[0] = 0.5
    assert policy == policy_for({"device_risk": 1.0})
    assert hash(policy) == hash(policy_for({"device_risk": 1.0}))


# --- input matrix ---------------------------------------------------------------------------


def test_indicator_matrix_maps_none_missing_and_nan_to_nan():
    matrix = indicator_matrix([{"device_risk": 0.2, "face_risk": None, "esg_risk": math.nan}, {}])
    assert matrix.shape == (2, K)
    assert matrix[0, 0] == 0.2
    assert np.isnan(matrix[0, 1:]).all()
    assert np.isnan(matrix[1]).all()


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.inf])
def test_indicator_matrix_rejects_out_of_range_by_name(bad):
    with pytest.raises(ValueError, match="velocity_risk"):
        indicator_matrix([{"device_risk": 0.5}, {"velocity_risk": bad}])


def test_indicator_matrix_rejects_unknown_names():
    with pytest.raises(ValueError, match="face_rsk"):
        indicator_matrix([{"face_rsk": 0.5}])


def test_fuse_batch_rejects_bad_shape_and_out_of_range_by_name():
    policy = policy_for(DEVICE_ONLY)
    with pytest.raises(ValueError, match="shape"):
        fuse_batch(np.zeros((3, K - 1)), policy)
    with pytest.raises(ValueError, match="shape"):
        fuse_batch(np.zeros(K), policy)
    bad = np.zeros((2, K))
    bad[1, INDICATORS.index("esg_risk")] = 1.5
    with pytest.raises(ValueError, match="esg_risk"):
        fuse_batch(bad, policy)


def test_empty_batch():
    assert fuse_batch(np.empty((0, K)), policy_for(DEVICE_ONLY)) == []
