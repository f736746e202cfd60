"""Prequential monitoring of the BP champion and the online-LR challenger, with drift alarms.

Every scored event feeds :func:`observe_scores` (both models' probabilities); every late
label feeds :func:`observe_label` with the probabilities *stored at scoring time*, before the
LR learns from it (test-then-train). The monitor keeps rolling AUC / log loss per model,
rolling agreement between them, and ADWIN detectors on each model's scores and per-label
errors. A detection opens an assessment of the next ``assessment_events`` events of the same
stream (scores or labels); its gap profile then decides the product's recommendation:

* mean |LR - BP| above ``replace_gap``          -> REPLACE_NEURAL_BASE_MODEL (flag the BP model);
* small gap keeping one sign over the window     -> ADJUST_LR_WEIGHT by ``lr_weight_step``,
  clamped to ``±lr_weight_limit``; the new value is returned for the caller to apply;
* otherwise                                      -> OBSERVE.

Assessing *after* the detection, rather than at it, is deliberate: ADWIN flags a change
35-300 events after it happens and its post-change window still mixes in the old regime, so
a gap measured at detection time would mostly describe the past.

Why ADWIN rather than Page-Hinkley: it detects shifts in both directions with one detector,
needs no per-signal magnitude threshold (scores and errors live on different scales), bounds
false alarms by ``delta``, and reports the means before and after the cut. Errors are fed as
``|label - p|``, which is bounded in [0, 1] like ADWIN's guarantee assumes (log loss is not).

Persistence: :func:`to_state` keeps the configuration, the LR weight adjustment, the
replacement flag, counts and the rolling windows (metrics are rebuilt from them). River's
drift detectors and any open assessment are not persisted: after a restart they re-learn the
current regime, so a change that straddles the restart may go unreported.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from river import drift, metrics, utils

from .label_buffer import require_probability, require_utc

__all__ = [
    "DriftDetection",
    "GapProfile",
    "ModelHealthEvent",
    "ModelMonitor",
    "MonitorConfig",
    "Recommendation",
    "clamp_lr_weight",
    "from_state",
    "gap_profile",
    "observe_label",
    "observe_scores",
    "recommend",
    "snapshot",
    "to_state",
]

STATE_FORMAT_VERSION = 1

ModelName = Literal["bp", "lr"]
Signal = Literal["score", "error"]
MODELS: tuple[ModelName, ...] = ("bp", "lr")


class Recommendation(StrEnum):
    """What the monitor advises after a drift, per the product's rule."""

    REPLACE_NEURAL_BASE_MODEL = "REPLACE_NEURAL_BASE_MODEL"
    ADJUST_LR_WEIGHT = "ADJUST_LR_WEIGHT"
    OBSERVE = "OBSERVE"


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Monitoring tunables; each default's trade-off is noted beside it."""

    window: int = 1000  # rolling metrics: larger is steadier, smaller reacts faster
    agreement_threshold: float = 0.5  # the two models "agree" if on the same side of it
    replace_gap: float = 0.25  # mean |LR - BP| above this flags the BP model for replacement
    lr_weight_limit: float = 0.10  # lender's bound on the LR weight adjustment (±)
    # Weight units, not probability units, hence a step rather than a multiple of the gap.
    lr_weight_step: float = 0.02
    # Share of the assessed gaps that must share a sign to call the gap one-directional;
    # 1.0 is the literal rule, but then one tied or noisy event would veto the adjustment.
    sign_consistency: float = 0.95
    assessment_events: int = 50  # post-detection events whose gap decides the recommendation
    min_labels_for_direction: int = 50  # labels in window before log loss picks the direction
    adwin_delta: float = 0.002  # false-alarm bound per detector; river's default
    # river's ROCAUC is a threshold approximation; its default 10 thresholds is far too coarse
    # for default rates that sit below 0.2. 101 costs ~100 counter updates per label.
    auc_thresholds: int = 101

    def __post_init__(self) -> None:
        if self.window < 1 or not 1 <= self.assessment_events <= self.window:
            raise ValueError("need window >= 1 and 1 <= assessment_events <= window")
        if not 0.0 < self.agreement_threshold < 1.0 or not 0.0 < self.replace_gap <= 1.0:
            raise ValueError("agreement_threshold must be in (0, 1), replace_gap in (0, 1]")
        if self.lr_weight_limit < 0 or self.lr_weight_step < 0:
            raise ValueError("lr_weight_limit and lr_weight_step must be non-negative")
        if not 0.5 < self.sign_consistency <= 1.0:
            raise ValueError("sign_consistency must be in (0.5, 1]")
        if self.auc_thresholds < 2 or not 0.0 < self.adwin_delta < 1.0:
            raise ValueError("auc_thresholds must be >= 2 and adwin_delta in (0, 1)")


# --- the recommendation rule (pure) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class GapProfile:
    """How far apart the two models are over a run of events (gap = LR - BP)."""

    n: int
    mean_abs: float
    mean_signed: float
    one_directional: bool


def gap_profile(gaps: Sequence[float], sign_consistency: float) -> GapProfile:
    """Summarise signed gaps; one-directional if enough of them share a (non-zero) sign."""
    n = len(gaps)
    if n == 0:
        return GapProfile(0, 0.0, 0.0, one_directional=False)
    positive = sum(1 for g in gaps if g > 0)
    negative = sum(1 for g in gaps if g < 0)
    return GapProfile(
        n=n,
        mean_abs=math.fsum(abs(g) for g in gaps) / n,
        mean_signed=math.fsum(gaps) / n,
        one_directional=max(positive, negative) >= sign_consistency * n,
    )


def clamp_lr_weight(value: float, limit: float) -> float:
    """An LR weight adjustment held within ``±limit`` (the lender's lr_weight_adjust_limit)."""
    return min(limit, max(-limit, float(value)))


def recommend(
    profile: GapProfile, direction: int, current_adjustment: float, config: MonitorConfig
) -> tuple[Recommendation, float]:
    """Apply the product's rule; return the recommendation and the new LR weight adjustment.

    ``direction`` is +1 to trust the LR more, -1 to trust it less, 0 when the evidence does
    not say which model is right (then there is nothing to adjust).
    """
    if profile.mean_abs > config.replace_gap:
        return Recommendation.REPLACE_NEURAL_BASE_MODEL, current_adjustment
    if profile.one_directional and direction != 0:
        limit = config.lr_weight_limit
        proposed = current_adjustment + math.copysign(config.lr_weight_step, direction)
        return Recommendation.ADJUST_LR_WEIGHT, clamp_lr_weight(proposed, limit)
    return Recommendation.OBSERVE, current_adjustment


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DriftDetection:
    """One detector firing: which model's which signal moved, and its means around the cut."""

    model: ModelName
    signal: Signal
    detector: str
    detected_at: datetime
    mean_before: float | None
    mean_after: float | None


@dataclass(frozen=True, slots=True)
class ModelHealthEvent:
    """A drift, assessed: what moved, how far apart the models are, and what to do."""

    at: datetime
    detection: DriftDetection
    gap: GapProfile
    recommendation: Recommendation
    previous_lr_weight_adjustment: float
    lr_weight_adjustment: float  # the value the fusion should now apply to the LR weight

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the health topic and the console."""
        d = self.detection
        return {
            "at": self.at.isoformat(),
            "detected_at": d.detected_at.isoformat(),
            "model": d.model,
            "signal": d.signal,
            "detector": d.detector,
            "mean_before": d.mean_before,
            "mean_after": d.mean_after,
            "mean_abs_gap": self.gap.mean_abs,
            "mean_signed_gap": self.gap.mean_signed,
            "gap_one_directional": self.gap.one_directional,
            "gap_events": self.gap.n,
            "recommendation": self.recommendation.value,
            "previous_lr_weight_adjustment": self.previous_lr_weight_adjustment,
            "lr_weight_adjustment": self.lr_weight_adjustment,
        }


# --- state ----------------------------------------------------------------------------------


class _ModelTrack:
    """River objects for one model; rebuilt, not persisted (see the module docstring)."""

    def __init__(self, config: MonitorConfig) -> None:
        self.auc = utils.Rolling(
            metrics.ROCAUC, window_size=config.window, n_thresholds=config.auc_thresholds
        )
        self.log_loss = utils.Rolling(metrics.LogLoss, window_size=config.window)
        self.score_drift = drift.ADWIN(delta=config.adwin_delta)
        self.error_drift = drift.ADWIN(delta=config.adwin_delta)


@dataclass
class _Assessment:
    detections: list[DriftDetection] = field(default_factory=list)
    events_since: int = 0


@dataclass(eq=False)  # holds river objects, which have no meaningful equality
class ModelMonitor:
    """Explicit monitoring state; the ``observe_*`` functions update it in place."""

    config: MonitorConfig = field(default_factory=MonitorConfig)
    lr_weight_adjustment: float = 0.0
    bp_flagged_for_replacement: bool = False
    n_scored: int = 0
    n_labelled: int = 0
    n_health_events: int = 0
    last_seen_at: datetime | None = None
    recent_scores: deque[tuple[float, float]] = field(init=False, repr=False)
    recent_labels: deque[tuple[float, float, bool]] = field(init=False, repr=False)
    tracks: dict[ModelName, _ModelTrack] = field(init=False, repr=False)
    assessments: dict[Signal, _Assessment] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        limit = self.config.lr_weight_limit
        if not -limit <= self.lr_weight_adjustment <= limit:
            raise ValueError(f"lr_weight_adjustment {self.lr_weight_adjustment} outside ±{limit}")
        self.recent_scores = deque(maxlen=self.config.window)
        self.recent_labels = deque(maxlen=self.config.window)
        self.tracks = {m: _ModelTrack(self.config) for m in MODELS}
        self.assessments = {"score": _Assessment(), "error": _Assessment()}


def _feed(detector: drift.ADWIN, value: float) -> tuple[float | None, float | None] | None:
    """Update ``detector``; on a drift return the means of the dropped and the kept window."""
    width, total = detector.width, detector.total
    detector.update(value)
    if not detector.drift_detected:
        return None
    kept, kept_total = float(detector.width), float(detector.total)
    dropped = float(width) + 1.0 - kept
    before = (float(total) + value - kept_total) / dropped if dropped > 0 else None
    return before, (kept_total / kept if kept > 0 else None)


def _detect(
    state: ModelMonitor, signal: Signal, values: Mapping[ModelName, float], now: datetime
) -> list[DriftDetection]:
    found = []
    for model, value in values.items():
        track = state.tracks[model]
        detector = track.score_drift if signal == "score" else track.error_drift
        means = _feed(detector, value)
        if means is not None:
            found.append(DriftDetection(model, signal, "ADWIN", now, *means))
    return found


def _direction(state: ModelMonitor, detections: Sequence[DriftDetection]) -> int:
    """+1 to trust the LR more, -1 less, 0 if the evidence is split.

    With enough labels in the window, the lower rolling log loss decides. Before that, each
    detection votes: a model whose scores moved is suspect; a model whose errors moved is
    judged by whether they rose or fell.
    """
    labels = len(state.recent_labels)
    if labels >= state.config.min_labels_for_direction:
        lr_loss = state.tracks["lr"].log_loss.obj.get()
        bp_loss = state.tracks["bp"].log_loss.obj.get()
        return (lr_loss < bp_loss) - (lr_loss > bp_loss)
    votes = 0
    for d in detections:
        got_worse = True  # moved scores: no label says which way is right, so doubt the mover
        if d.signal == "error" and d.mean_before is not None and d.mean_after is not None:
            got_worse = d.mean_after > d.mean_before
        against_lr = got_worse == (d.model == "lr")
        votes += -1 if against_lr else 1
    return (votes > 0) - (votes < 0)


def _advance(
    state: ModelMonitor,
    signal: Signal,
    history: Sequence[tuple[Any, ...]],
    detections: list[DriftDetection],
    now: datetime,
) -> list[ModelHealthEvent]:
    """Count one more event of this stream; close the assessment once it has seen enough.

    ``history`` is the stream's recent ``(bp, lr, ...)`` tuples, newest last.
    """
    assessment = state.assessments[signal]
    if assessment.detections:
        assessment.events_since += 1
    if detections:
        # A new cut restarts the count so that the assessed events all follow it.
        assessment.detections.extend(detections)
        assessment.events_since = 0
    n = state.config.assessment_events
    if not assessment.detections or assessment.events_since < n:
        return []
    recent = list(history)[-n:]
    profile = gap_profile([lr - bp for bp, lr, *_ in recent], state.config.sign_consistency)
    previous = state.lr_weight_adjustment
    rec, adjustment = recommend(
        profile, _direction(state, assessment.detections), previous, state.config
    )
    state.lr_weight_adjustment = adjustment
    if rec is Recommendation.REPLACE_NEURAL_BASE_MODEL:
        state.bp_flagged_for_replacement = True
    events = [
        ModelHealthEvent(now, d, profile, rec, previous, adjustment) for d in assessment.detections
    ]
    state.assessments[signal] = _Assessment()
    state.n_health_events += len(events)
    return events


# --- the step functions ---------------------------------------------------------------------


def observe_scores(
    state: ModelMonitor, bp_prob: float, lr_prob: float, now: datetime
) -> list[ModelHealthEvent]:
    """Record both models' probabilities for one scored event; return assessed drifts."""
    now = require_utc(now, "now")
    bp, lr = require_probability(bp_prob, "bp_prob"), require_probability(lr_prob, "lr_prob")
    state.recent_scores.append((bp, lr))
    state.n_scored += 1
    state.last_seen_at = now
    found = _detect(state, "score", {"bp": bp, "lr": lr}, now)
    return _advance(state, "score", state.recent_scores, found, now)


def observe_label(
    state: ModelMonitor, bp_prob: float, lr_prob: float, label: bool, now: datetime
) -> list[ModelHealthEvent]:
    """Score the probabilities stored at scoring time against a late label (before learning)."""
    now = require_utc(now, "now")
    bp, lr = require_probability(bp_prob, "bp_prob"), require_probability(lr_prob, "lr_prob")
    label = bool(label)
    state.recent_labels.append((bp, lr, label))
    state.n_labelled += 1
    state.last_seen_at = now
    for model, p in zip(MODELS, (bp, lr), strict=True):
        track = state.tracks[model]
        track.auc.update(label, p)
        track.log_loss.update(label, p)
    errors: dict[ModelName, float] = {"bp": abs(label - bp), "lr": abs(label - lr)}
    found = _detect(state, "error", errors, now)
    return _advance(state, "error", state.recent_labels, found, now)


# --- console and persistence ----------------------------------------------------------------


def snapshot(state: ModelMonitor) -> dict[str, Any]:
    """JSON-safe metrics for a console; a metric without enough data is None."""
    labels = state.recent_labels
    positives = sum(1 for *_, y in labels if y)
    both_classes = 0 < positives < len(labels)
    scores = state.recent_scores
    t = state.config.agreement_threshold
    profile = gap_profile([lr - bp for bp, lr in scores], state.config.sign_consistency)
    out: dict[str, Any] = {
        "window": state.config.window,
        "n_scored": state.n_scored,
        "n_labelled": state.n_labelled,
        "labels_in_window": len(labels),
        "positive_rate_in_window": positives / len(labels) if labels else None,
        "agreement_rate": (
            sum(1 for bp, lr in scores if (bp >= t) == (lr >= t)) / len(scores) if scores else None
        ),
        "mean_abs_gap": profile.mean_abs if scores else None,
        "mean_signed_gap": profile.mean_signed if scores else None,
        "lr_weight_adjustment": state.lr_weight_adjustment,
        "bp_flagged_for_replacement": state.bp_flagged_for_replacement,
        "n_health_events": state.n_health_events,
        "drift_assessment_open": any(a.detections for a in state.assessments.values()),
        "last_seen_at": state.last_seen_at.isoformat() if state.last_seen_at else None,
    }
    for model in MODELS:
        track = state.tracks[model]
        # `+ 0.0` turns the -0.0 the trapezoid rule can return into 0.0 for the console.
        out[f"{model}_auc"] = float(track.auc.obj.get()) + 0.0 if both_classes else None
        out[f"{model}_log_loss"] = float(track.log_loss.obj.get()) if labels else None
    return out


def to_state(state: ModelMonitor) -> dict[str, Any]:
    """JSON-safe state: config, LR weight adjustment, flag, counts and rolling windows."""
    return {
        "format_version": STATE_FORMAT_VERSION,
        "config": asdict(state.config),
        "lr_weight_adjustment": state.lr_weight_adjustment,
        "bp_flagged_for_replacement": state.bp_flagged_for_replacement,
        "n_scored": state.n_scored,
        "n_labelled": state.n_labelled,
        "n_health_events": state.n_health_events,
        "last_seen_at": state.last_seen_at.isoformat() if state.last_seen_at else None,
        "recent_scores": [list(s) for s in state.recent_scores],
        "recent_labels": [list(s) for s in state.recent_labels],
    }


def from_state(d: Mapping[str, Any]) -> ModelMonitor:
    """Rebuild a monitor from :func:`to_state`; drift detectors start afresh."""
    version = d.get("format_version")
    if version != STATE_FORMAT_VERSION:
        raise ValueError(
            f"unsupported monitor state format version {version!r}; "
            f"this build reads version {STATE_FORMAT_VERSION}"
        )
    last = d["last_seen_at"]
    state = ModelMonitor(
        config=MonitorConfig(**d["config"]),
        lr_weight_adjustment=float(d["lr_weight_adjustment"]),
        bp_flagged_for_replacement=bool(d["bp_flagged_for_replacement"]),
        n_scored=int(d["n_scored"]),
        n_labelled=int(d["n_labelled"]),
        n_health_events=int(d["n_health_events"]),
        last_seen_at=None if last is None else require_utc(datetime.fromisoformat(last)),
    )
    state.recent_scores.extend((float(bp), float(lr)) for bp, lr in d["recent_scores"])
    for bp, lr, y in d["recent_labels"]:
        label = bool(y)
        state.recent_labels.append((float(bp), float(lr), label))
        for model, p in zip(MODELS, (float(bp), float(lr)), strict=True):
            state.tracks[model].auc.update(label, p)
            state.tracks[model].log_loss.update(label, p)
    return state
