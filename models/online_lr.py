"""Online logistic regression: the challenger risk model that learns from every late label.

A river pipeline ``StandardScaler | LogisticRegression`` scores each application and learns
once its outcome is known. Its whole state is a JSON document (no pickle): the scaler's
running counts, means and variances, the weights, the intercept and the optimizer's step
count, so a restarted agent resumes exactly where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from river import compose, linear_model, optim, preprocessing, utils

from .label_buffer import require_utc

__all__ = [
    "FORMAT_VERSION",
    "LinearSnapshot",
    "OnlineLRConfig",
    "OnlineRiskModel",
    "UnsupportedStateFormat",
]

FORMAT_VERSION = 1
STATE_KIND = "greencredit.online_lr"

Clock = Callable[[], datetime]


class UnsupportedStateFormat(ValueError):
    """The state document was written by another format version (or is not an LR state)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class OnlineLRConfig:
    """Hyperparameters of the online LR; persisted with the state so a restore cannot drift.

    Plain SGD with a *constant* learning rate: credit behaviour drifts, and a decaying schedule
    (AdaGrad, inverse scaling) would freeze the model once it has seen enough labels, while a
    constant step keeps tracking the recent population. It also keeps the optimizer's state to
    a step count (Adam/AdaGrad would add per-feature moment tables to persist). 0.05 is safe on
    standardised features: one surprising label moves a logit by at most ~0.05 per unit feature.
    The small L2 keeps weights finite on a (quasi-)separable stream, so probabilities do not
    saturate at 0/1 and one surprising label cannot blow up the log loss; its decay horizon,
    1 / (learning_rate * l2) = 20 000 labels, is far longer than what the model needs to learn.
    """

    learning_rate: float = 0.05
    intercept_lr: float = 0.01  # river's default; the intercept tracks the base rate slowly
    l2: float = 1e-3
    # Risk predicted before any label: 0.5 says "no information". A lender may set its
    # portfolio default rate instead; it becomes the initial intercept, logit(prior_risk).
    prior_risk: float = 0.5

    def __post_init__(self) -> None:
        if not self.learning_rate > 0 or not self.intercept_lr >= 0 or not self.l2 >= 0:
            raise ValueError(f"learning rates must be positive and l2 non-negative: {self}")
        if not 0.0 < self.prior_risk < 1.0:
            raise ValueError(f"prior_risk must be in (0, 1), got {self.prior_risk}")


def _features(x: Mapping[str, float]) -> dict[str, float]:
    """Validated copy: a NaN would poison the scaler's running mean for good."""
    out: dict[str, float] = {}
    for name, value in x.items():
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"feature {name!r} is not a finite number: {value!r}")
        out[name] = number
    return out


def _logistic_regression(config: OnlineLRConfig) -> linear_model.LogisticRegression:
    prior = config.prior_risk
    return linear_model.LogisticRegression(
        optimizer=optim.SGD(config.learning_rate),
        l2=config.l2,
        intercept_init=math.log(prior / (1.0 - prior)),
        intercept_lr=config.intercept_lr,
    )


@dataclass(frozen=True)
class LinearSnapshot:
    """The model frozen into arrays over a fixed feature order, for vectorised batch scoring.

    Same arithmetic as river's ``StandardScaler | LogisticRegression`` (a feature with zero
    variance scales to 0; the logit is clamped to +-30 like river's sigmoid), so it agrees
    with :meth:`OnlineRiskModel.predict_one` up to float summation order (~1e-15).
    Take a new snapshot after learning.
    """

    feature_names: tuple[str, ...]
    means: np.ndarray
    inverse_std: np.ndarray  # 0 where the variance is 0
    weights: np.ndarray
    intercept: float
    version: str

    def predict_matrix(self, features: np.ndarray) -> np.ndarray:
        """Risk for each row of `features` (columns in `feature_names` order)."""
        # A row-wise sum, not a matrix product: BLAS blocks a product by the number of rows,
        # so a row's last bits would depend on its batch; a batch of N must score exactly
        # like N batches of one.
        contributions = (features - self.means) * self.inverse_std * self.weights
        logits = contributions.sum(axis=1) + self.intercept
        probabilities = 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
        probabilities[logits > 30.0] = 1.0
        probabilities[logits < -30.0] = 0.0
        return probabilities


class OnlineRiskModel:
    """Risk probability from a feature dict, learning one late label at a time."""

    def __init__(self, config: OnlineLRConfig | None = None, *, clock: Clock = _utc_now) -> None:
        """Untrained model: predicts ``config.prior_risk`` until the first label."""
        self.config = config or OnlineLRConfig()
        self._clock = clock
        self._scaler = preprocessing.StandardScaler()
        self._lr = _logistic_regression(self.config)
        self._pipeline = compose.Pipeline(self._scaler, self._lr)
        self.n_learned = 0
        self.created_at = self.updated_at = require_utc(clock(), "clock()")
        # predict_matrix's snapshot and what it was taken at: (feature names, n_learned).
        self._snapshot: tuple[tuple[tuple[str, ...], int], LinearSnapshot] | None = None

    # --- scoring and learning ---------------------------------------------------------

    def predict_one(self, x: Mapping[str, float]) -> float:
        """Probability that this applicant defaults (the positive class)."""
        return float(self._pipeline.predict_proba_one(_features(x))[True])

    def predict_many(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """Risk of each row, equal to ``predict_one`` row by row.

        river's ``*_many`` methods need a dataframe library (pandas, polars, ...) through
        narwhals; the engine ships none, and scoring is per event anyway, so this loops.
        """
        return np.fromiter((self.predict_one(x) for x in rows), dtype=np.float64, count=len(rows))

    def predict_matrix(self, features: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
        """Risk of each row of ``features`` (columns in ``feature_names`` order).

        Equal to ``predict_one`` on each row up to float summation order (~1e-15), through a
        :class:`LinearSnapshot` that is reused until the model learns (every learning step
        goes through ``learn_one``, which moves ``n_learned``).
        """
        taken_at = (tuple(feature_names), self.n_learned)
        if self._snapshot is None or self._snapshot[0] != taken_at:
            self._snapshot = (taken_at, self.snapshot(taken_at[0]))
        if not np.isfinite(features).all():
            raise ValueError("features must be finite numbers")
        return self._snapshot[1].predict_matrix(features)

    def learn_one(self, x: Mapping[str, float], y: bool) -> None:
        """Learn from one labelled application (``y`` True = defaulted)."""
        self._pipeline.learn_one(_features(x), bool(y))
        self.n_learned += 1
        self.updated_at = require_utc(self._clock(), "clock()")

    def learn_many(self, rows: Sequence[Mapping[str, float]], labels: Sequence[bool]) -> None:
        """Learn the rows in order: exactly ``learn_one`` on each, not a mini-batch step."""
        if len(rows) != len(labels):
            raise ValueError(f"{len(rows)} rows but {len(labels)} labels")
        for x, y in zip(rows, labels, strict=True):
            self.learn_one(x, y)

    def snapshot(self, feature_names: Sequence[str]) -> LinearSnapshot:
        """Freeze the current state for :meth:`LinearSnapshot.predict_matrix`."""
        means = np.array([float(self._scaler.means.get(n, 0.0)) for n in feature_names])
        variances = np.array([float(self._scaler.vars.get(n, 0.0)) for n in feature_names])
        with np.errstate(divide="ignore"):
            inverse_std = np.where(variances > 0, 1.0 / np.sqrt(variances), 0.0)
        lr_weights = self._lr.weights
        weights = np.array([float(lr_weights.get(n, 0.0)) for n in feature_names])
        return LinearSnapshot(
            tuple(feature_names),
            means,
            inverse_std,
            weights,
            float(self._lr.intercept),
            self.version,
        )

    # --- introspection ------------------------------------------------------------------

    @property
    def version(self) -> str:
        """Identifies the model state that produced a score, e.g. ``online_lr@v1-n1234``."""
        return f"online_lr@v{FORMAT_VERSION}-n{self.n_learned}"

    @property
    def feature_names(self) -> list[str]:
        """Features seen in training, in order of first appearance."""
        return list(self._scaler.counts)

    @property
    def weights(self) -> dict[str, float]:
        """Current weights on the standardised features (a copy)."""
        return {str(k): float(v) for k, v in self._lr.weights.items()}

    @property
    def intercept(self) -> float:
        """Current intercept (logit of the risk of an average applicant)."""
        return float(self._lr.intercept)

    # --- persistence --------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-safe state; :meth:`from_state` rebuilds a model that predicts and learns alike.

        Mappings keep the model's own key order: float sums are order-sensitive, and keeping
        it makes a restored model bit-for-bit equal rather than merely close.
        """
        scaler = self._scaler
        names = self.feature_names
        return {
            "kind": STATE_KIND,
            "format_version": FORMAT_VERSION,
            "config": asdict(self.config),
            "feature_names": names,
            "weights": self.weights,
            "intercept": self.intercept,
            "scaler": {
                "counts": {k: int(scaler.counts[k]) for k in names},
                "means": {k: float(scaler.means[k]) for k in names},
                "variances": {k: float(scaler.vars[k]) for k in names},
            },
            "optimizer": {"name": "SGD", "n_iterations": int(self._lr.optimizer.n_iterations)},
            "n_learned": self.n_learned,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], *, clock: Clock = _utc_now) -> OnlineRiskModel:
        """Rebuild a model from :meth:`to_state`; other kinds or format versions are rejected."""
        _check_format(state)
        names = [str(n) for n in state["feature_names"]]
        scaler_state = state["scaler"]
        weights = {str(k): float(v) for k, v in state["weights"].items()}
        unknown = (set(weights) | set(scaler_state["counts"])) - set(names)
        if unknown:
            raise ValueError(f"online_lr state has features outside feature_names: {unknown}")
        if state["optimizer"].get("name") != "SGD":
            raise ValueError(f"online_lr state optimizer {state['optimizer'].get('name')!r}")

        model = cls(OnlineLRConfig(**state["config"]), clock=clock)
        scaler = model._scaler
        for name in names:
            scaler.counts[name] = int(scaler_state["counts"][name])
            scaler.means[name] = float(scaler_state["means"][name])
            scaler.vars[name] = float(scaler_state["variances"][name])
        lr = model._lr
        lr.intercept = float(state["intercept"])
        # river exposes weights read-only; `_weights` is the GLM's own store (river ~=0.26.1 is
        # pinned, and the round-trip tests fail if this attribute ever changes meaning).
        lr._weights = utils.VectorDict(weights)
        lr.optimizer.n_iterations = int(state["optimizer"]["n_iterations"])
        model.n_learned = int(state["n_learned"])
        model.created_at = require_utc(datetime.fromisoformat(state["created_at"]), "created_at")
        model.updated_at = require_utc(datetime.fromisoformat(state["updated_at"]), "updated_at")
        return model


def _check_format(state: Mapping[str, Any]) -> None:
    if state.get("kind") != STATE_KIND:
        raise UnsupportedStateFormat(f"not an online_lr state (kind={state.get('kind')!r})")
    version = state.get("format_version")
    if version != FORMAT_VERSION:
        raise UnsupportedStateFormat(
            f"online_lr state format version {version!r} is not supported; "
            f"this build reads version {FORMAT_VERSION}"
        )
