"""Online LR: learns, scores in batch as one by one, and survives a JSON round trip exactly."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greencredit.models.online_lr import (
    FORMAT_VERSION,
    OnlineLRConfig,
    OnlineRiskModel,
    UnsupportedStateFormat,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

# Raw features on very different scales, as the engine sees them (the scaler must cope).
MEANS = np.array([0.0, 120.0, 5.0, 2.0])
SCALES = np.array([1.0, 40.0, 3.0, 0.1])
TRUE_WEIGHTS = np.array([2.0, -1.5, 0.0, 1.0])


def ticking_clock() -> Iterator[datetime]:
    return (T0 + timedelta(seconds=i) for i in itertools.count())


def make_model(config: OnlineLRConfig | None = None) -> OnlineRiskModel:
    ticks = ticking_clock()
    return OnlineRiskModel(config, clock=lambda: next(ticks))


def separable_stream(n: int, seed: int) -> list[tuple[dict[str, float], bool]]:
    """Default iff a fixed linear score of the standardised features is positive."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, len(MEANS)))
    raw = z * SCALES + MEANS
    labels = z @ TRUE_WEIGHTS > 0
    names = ("repayment_ratio", "monthly_income", "tenure_years", "carbon_score")
    return [
        ({k: float(v) for k, v in zip(names, row, strict=True)}, bool(y))
        for row, y in zip(raw, labels, strict=True)
    ]


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Exact AUC (Mann-Whitney), independent of river, ties counted half."""
    pos, neg = scores[labels], scores[~labels]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def json_round_trip(model: OnlineRiskModel) -> OnlineRiskModel:
    state = orjson.loads(orjson.dumps(model.to_state()))
    ticks = ticking_clock()
    return OnlineRiskModel.from_state(state, clock=lambda: next(ticks))


def test_untrained_model_predicts_the_prior() -> None:
    x = {"repayment_ratio": 3.0, "monthly_income": 10.0}
    assert make_model().predict_one(x) == 0.5
    assert make_model(OnlineLRConfig(prior_risk=0.04)).predict_one(x) == pytest.approx(0.04)
    assert make_model().version == f"online_lr@v{FORMAT_VERSION}-n0"


def test_learns_a_separable_stream_prequentially() -> None:
    model = make_model()
    scores, labels = [], []
    for x, y in separable_stream(800, seed=1):
        scores.append(model.predict_one(x))  # test first ...
        labels.append(y)
        model.learn_one(x, y)  # ... then train
    assert roc_auc(np.array(scores[200:]), np.array(labels[200:])) > 0.9
    assert model.n_learned == 800
    assert model.version.endswith("-n800")


def test_batch_scoring_equals_one_by_one() -> None:
    model = make_model()
    stream = separable_stream(300, seed=2)
    model.learn_many([x for x, _ in stream[:200]], [y for _, y in stream[:200]])
    rows = [x for x, _ in stream[200:]]
    batch = model.predict_many(rows)
    assert batch.dtype == np.float64 and batch.shape == (100,)
    assert batch.tolist() == [model.predict_one(x) for x in rows]
    assert model.predict_many([]).shape == (0,)


def test_learn_many_is_learn_one_in_order() -> None:
    stream = separable_stream(150, seed=3)
    one, many = make_model(), make_model()
    for x, y in stream:
        one.learn_one(x, y)
    many.learn_many([x for x, _ in stream], [y for _, y in stream])
    assert many.to_state() == one.to_state()
    with pytest.raises(ValueError, match="labels"):
        many.learn_many([stream[0][0]], [True, False])


def test_state_round_trip_predicts_identically() -> None:
    model = make_model(OnlineLRConfig(prior_risk=0.1, l2=1e-4))
    for x, y in separable_stream(400, seed=4):
        model.learn_one(x, y)
    restored = json_round_trip(model)
    probe = [x for x, _ in separable_stream(200, seed=5)]
    np.testing.assert_allclose(restored.predict_many(probe), model.predict_many(probe), atol=1e-12)
    assert restored.to_state() == model.to_state()
    assert restored.version == model.version
    assert restored.config == model.config


def test_learning_after_restore_equals_never_stopping() -> None:
    stream = separable_stream(600, seed=6)
    uninterrupted = make_model()
    for x, y in stream[:300]:
        uninterrupted.learn_one(x, y)
    resumed = json_round_trip(uninterrupted)
    for x, y in stream[300:]:
        uninterrupted.learn_one(x, y)
        resumed.learn_one(x, y)
    probe = [x for x, _ in separable_stream(200, seed=7)]
    np.testing.assert_allclose(
        resumed.predict_many(probe), uninterrupted.predict_many(probe), atol=1e-12
    )
    assert resumed.weights.keys() == uninterrupted.weights.keys()
    for name, w in uninterrupted.weights.items():
        assert resumed.weights[name] == pytest.approx(w, abs=1e-12)
    assert resumed.intercept == pytest.approx(uninterrupted.intercept, abs=1e-12)
    assert resumed.n_learned == uninterrupted.n_learned == 600


feature_rows = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
    min_size=1,
)


@settings(max_examples=40, deadline=None)
@given(
    history=st.lists(st.tuples(feature_rows, st.booleans()), max_size=30),
    probe=st.lists(feature_rows, min_size=1, max_size=5),
)
def test_round_trip_holds_for_any_history(
    history: list[tuple[dict[str, float], bool]], probe: list[dict[str, float]]
) -> None:
    model = make_model()
    for x, y in history:
        model.learn_one(x, y)
    restored = json_round_trip(model)
    np.testing.assert_allclose(restored.predict_many(probe), model.predict_many(probe), atol=1e-12)
    for x, y in history[:5]:
        model.learn_one(x, y)
        restored.learn_one(x, y)
    np.testing.assert_allclose(restored.predict_many(probe), model.predict_many(probe), atol=1e-12)


def test_state_is_json_with_utc_timestamps() -> None:
    model = make_model()
    model.learn_one({"a": 1.0}, True)
    state = orjson.loads(orjson.dumps(model.to_state()))
    assert state["created_at"] == "2025-03-01T09:00:00+00:00"
    assert state["updated_at"] == "2025-03-01T09:00:01+00:00"
    assert state["feature_names"] == ["a"]
    assert state["optimizer"] == {"name": "SGD", "n_iterations": 1}
    assert state["scaler"]["counts"] == {"a": 1}


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        ({"format_version": FORMAT_VERSION + 1}, "format version"),
        ({"format_version": None}, "format version"),
        ({"kind": "greencredit.bp"}, "not an online_lr state"),
    ],
)
def test_unknown_state_format_is_rejected(patch: dict[str, object], error: str) -> None:
    state = {**make_model().to_state(), **patch}
    with pytest.raises(UnsupportedStateFormat, match=error):
        OnlineRiskModel.from_state(state)


def test_state_with_unlisted_feature_is_rejected() -> None:
    model = make_model()
    model.learn_one({"a": 1.0}, True)
    state = model.to_state()
    state["weights"]["ghost"] = 1.0
    with pytest.raises(ValueError, match="ghost"):
        OnlineRiskModel.from_state(state)


def test_non_finite_features_and_naive_clock_are_rejected() -> None:
    model = make_model()
    with pytest.raises(ValueError, match="finite"):
        model.learn_one({"a": float("nan")}, True)
    with pytest.raises(ValueError, match="finite"):
        model.predict_one({"a": float("inf")})
    assert model.n_learned == 0
    with pytest.raises(ValueError, match="naive"):
        OnlineRiskModel(clock=lambda: datetime(2025, 1, 1))  # noqa: DTZ001


def test_linear_snapshot_scores_like_river_row_by_row():
    rng = np.random.default_rng(7)
    names = [f"f{i}" for i in range(6)] + ["never_seen"]
    model = OnlineRiskModel()
    for _ in range(400):
        x = {f"f{i}": float(rng.normal(i, 1 + i)) for i in range(6)}
        x["f5"] = 3.0  # constant feature: zero variance
        model.learn_one(x, bool(x["f0"] + 0.5 * x["f1"] > 1.5))
    rows = rng.normal(0, 3, size=(64, len(names)))
    rows[:, 5] = 3.0
    snapshot = model.snapshot(names)
    fast = snapshot.predict_matrix(rows)
    slow = [model.predict_one(dict(zip(names, row, strict=True))) for row in rows]
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    assert snapshot.version == model.version


def test_predict_matrix_follows_the_model_as_it_learns():
    """The cached snapshot is retaken after learning: never a stale score."""
    names = ["a", "b"]
    model = OnlineRiskModel(OnlineLRConfig(prior_risk=0.02))
    rows = np.array([[1.0, 0.0], [0.0, 5.0], [2.0, -1.0]])

    def one_by_one() -> list[float]:
        return [model.predict_one(dict(zip(names, row, strict=True))) for row in rows]

    np.testing.assert_allclose(model.predict_matrix(rows, names), one_by_one(), atol=1e-12)
    for i in range(30):
        model.learn_one({"a": float(i % 3), "b": float(i % 5)}, i % 3 == 0)
    learned = model.predict_matrix(rows, names)
    np.testing.assert_allclose(learned, one_by_one(), atol=1e-12)
    assert np.abs(learned - 0.02).max() > 0.01  # it did move
    with pytest.raises(ValueError, match="finite"):
        model.predict_matrix(np.array([[np.nan, 0.0]]), names)
