"""Fuse a lender's subjective AHP weights with objective model outputs into a decision.

Every indicator is a risk in [0, 1]. The score is the weighted sum of the provided indicators,
mapped to APPROVE / REVIEW / DECLINE by the lender's thresholds, and then hard flags (blacklist,
liveness, infrastructure failures) may raise — never lower — that decision. Each result carries
reason codes that name indicators and numbers only, never customer data.

Pure and vectorised: the agent builds an ``(n, len(INDICATORS))`` matrix per batch and calls
:func:`fuse_batch`; :func:`fuse_one` is a batch of one, so the two cannot diverge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache, partial
from itertools import repeat
from types import MappingProxyType
from typing import Literal, NamedTuple, cast

import numpy as np
import numpy.typing as npt

__all__ = [
    "APPROVE",
    "DECLINE",
    "INDICATORS",
    "NO_INDICATORS",
    "REVIEW",
    "Decision",
    "FusionPolicy",
    "FusionResult",
    "HardFlag",
    "Reason",
    "fuse_batch",
    "fuse_one",
    "indicator_matrix",
]

INDICATORS: tuple[str, ...] = (
    "device_risk",
    "identity_risk",
    "face_risk",
    "velocity_risk",
    "bp_default_risk",
    "online_lr_risk",
    "affordability_risk",
    "green_purpose_risk",
    "esg_risk",
    "behaviour_risk",
)

Decision = Literal["APPROVE", "REVIEW", "DECLINE"]
APPROVE: Decision = "APPROVE"
REVIEW: Decision = "REVIEW"
DECLINE: Decision = "DECLINE"
# Index = severity, so "never relax" is max() over severities.
_DECISIONS: tuple[Decision, ...] = (APPROVE, REVIEW, DECLINE)
_SEVERITY: dict[Decision, int] = {d: i for i, d in enumerate(_DECISIONS)}

NO_INDICATORS = "NO_INDICATORS"
_WEIGHT_SUM_TOLERANCE = 1e-6
_LR = INDICATORS.index("online_lr_risk")
_BP = INDICATORS.index("bp_default_risk")


class HardFlag(StrEnum):
    """A rule outcome that sets a floor on the decision regardless of the score."""

    FACE_BLACKLIST_HIT = "FACE_BLACKLIST_HIT"
    LIVENESS_FAILED = "LIVENESS_FAILED"
    FEATURES_UNAVAILABLE = "FEATURES_UNAVAILABLE"  # feature store (Redis) down: score is blind
    DEVICE_FARM = "DEVICE_FARM"
    FUNDING_UNAVAILABLE = "FUNDING_UNAVAILABLE"
    IDENTITY_INVALID = "IDENTITY_INVALID"  # ID check digit or birth date does not add up
    RISKY_DEVICE = "RISKY_DEVICE"  # emulator, or rooted/jailbroken behind a VPN or proxy
    FACE_UNVERIFIED = "FACE_UNVERIFIED"  # a face image was sent but could not be checked
    # An ID number, phone or device at the alarm end of a velocity ramp (e.g. a third
    # application within the hour): scripted testing of the form, whatever the score says.
    VELOCITY_BURST = "VELOCITY_BURST"
    # A selfie just under the face-blacklist match threshold: a person compares the photos
    # (the similarity is in the reason codes); declining on it would hit honest lookalikes.
    FACE_BLACKLIST_NEAR_MISS = "FACE_BLACKLIST_NEAR_MISS"


_FLAG_FLOOR: Mapping[HardFlag, Decision] = MappingProxyType(
    {
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
)
_FLAG_RANK: dict[HardFlag, int] = {flag: i for i, flag in enumerate(HardFlag)}


class Reason(NamedTuple):
    """One explanation line: a code, the indicator it concerns ("" for none), its score share.

    A NamedTuple rather than a dataclass: about ten are built per event on the hot path, and
    tuple construction costs half as much.
    """

    code: str
    indicator: str
    contribution: float


class FusionResult(NamedTuple):
    """Outcome for one event.

    ``score`` is NaN when no weighted indicator was provided (reason ``NO_INDICATORS``).
    ``reasons`` lists, in order: hard-flag codes (definition order of :class:`HardFlag`),
    ``NO_INDICATORS`` if applicable, provided indicators by contribution (largest first, ties in
    ``INDICATORS`` order), then ``<NAME>_NOT_PROVIDED`` codes. ``forced_by`` names every hard
    flag that was present; each one was applied as a floor, whether or not it raised the decision.
    """

    score: float
    decision: Decision
    reasons: tuple[Reason, ...]
    forced_by: tuple[str, ...]


@dataclass(frozen=True)
class FusionPolicy:
    """A lender's fusion configuration, validated once and turned into a weight vector.

    ``lr_weight_adjustment`` comes from model monitoring (already clamped by the caller to the
    lender's limit) and moves global weight from ``bp_default_risk`` to ``online_lr_risk`` when
    positive, the other way when negative. It is clipped to the weight available on the giving
    side, so neither weight goes negative and the total stays 1.
    """

    leaf_weights: Mapping[str, float] = field(hash=False)
    approve_below: float
    decline_at_or_above: float
    config_version: int
    lr_weight_adjustment: float = 0.0
    weights: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        """Validate the configuration and precompute the weight vector in INDICATORS order."""
        # A private read-only copy: the caller's dict may change after the policy is built.
        object.__setattr__(self, "leaf_weights", MappingProxyType(dict(self.leaf_weights)))
        _check_thresholds(self.approve_below, self.decline_at_or_above)
        if isinstance(self.config_version, bool) or not isinstance(self.config_version, int):
            raise ValueError(f"config_version must be an int, got {self.config_version!r}")
        if not math.isfinite(self.lr_weight_adjustment):
            raise ValueError(
                f"lr_weight_adjustment must be finite, got {self.lr_weight_adjustment}"
            )
        weights = _adjust_lr_weight(_weight_vector(self.leaf_weights), self.lr_weight_adjustment)
        weights.setflags(write=False)
        object.__setattr__(self, "weights", weights)

    @property
    def indicator_weights(self) -> dict[str, float]:
        """Effective global weight per indicator after the LR adjustment, for audit logs."""
        return dict(zip(INDICATORS, self.weights.tolist(), strict=True))


def _check_thresholds(approve_below: float, decline_at_or_above: float) -> None:
    # Written so that NaN fails too.
    if not 0.0 <= approve_below <= decline_at_or_above <= 1.0:
        raise ValueError(
            "thresholds must satisfy 0 <= approve_below <= decline_at_or_above <= 1, got "
            f"approve_below={approve_below}, decline_at_or_above={decline_at_or_above}"
        )


def _weight_vector(leaf_weights: Mapping[str, float]) -> npt.NDArray[np.float64]:
    """Leaf weights as a vector in INDICATORS order, absent leaves 0, normalised to sum 1."""
    unknown = sorted(set(leaf_weights) - set(INDICATORS))
    if unknown:
        raise ValueError(f"unknown leaf weights: {', '.join(unknown)}")
    weights = np.zeros(len(INDICATORS), dtype=np.float64)
    for i, name in enumerate(INDICATORS):
        value = float(leaf_weights.get(name, 0.0))
        if not (math.isfinite(value) and value >= 0.0):
            raise ValueError(f"leaf weight {name} must be finite and >= 0, got {value}")
        weights[i] = value
    total = float(weights.sum())
    if abs(total - 1.0) > _WEIGHT_SUM_TOLERANCE:
        raise ValueError(f"leaf weights must sum to 1 (±{_WEIGHT_SUM_TOLERANCE}), got {total}")
    # AHP output is rounded upstream; renormalising makes scores land exactly in [0, 1].
    return weights / total


def _adjust_lr_weight(
    weights: npt.NDArray[np.float64], adjustment: float
) -> npt.NDArray[np.float64]:
    """Shift ``adjustment`` of weight from BP to LR (negative: LR to BP), clipped at zero.

    The clip takes at most what the giving side holds, so that side ends at exactly 0.0
    (x - x == 0 in floating point) rather than a tiny negative weight.
    """
    delta = min(max(adjustment, -weights[_LR]), weights[_BP])
    adjusted = weights.copy()
    adjusted[_LR] += delta
    adjusted[_BP] -= delta
    return adjusted


def indicator_matrix(rows: Sequence[Mapping[str, float | None]]) -> npt.NDArray[np.float64]:
    """Build the ``(n, len(INDICATORS))`` input of :func:`fuse_batch` from per-event mappings.

    Missing keys and None become NaN ("not provided"). Unknown names and values outside [0, 1]
    raise ValueError naming the indicator: a typo would otherwise silently drop a check.
    """
    matrix = np.full((len(rows), len(INDICATORS)), np.nan, dtype=np.float64)
    for r, row in enumerate(rows):
        unknown = sorted(set(row) - set(INDICATORS))
        if unknown:
            raise ValueError(f"unknown indicators: {', '.join(unknown)}")
        for i, name in enumerate(INDICATORS):
            value = row.get(name)
            if value is None:
                continue
            value = float(value)
            if not (0.0 <= value <= 1.0 or math.isnan(value)):
                raise ValueError(f"indicator {name} must be in [0, 1], got {value}")
            matrix[r, i] = value
    return matrix


# Object arrays so that codes and names can be permuted with the same sort order as the numbers.
_INDICATOR_CODES = np.array([name.upper() for name in INDICATORS], dtype=object)
_NOT_PROVIDED_CODES = np.array(
    [f"{name.upper()}_NOT_PROVIDED" for name in INDICATORS], dtype=object
)
_INDICATOR_NAMES = np.array(INDICATORS, dtype=object)
_NO_INDICATORS_REASON = Reason(NO_INDICATORS, "", 0.0)
# tuple.__new__ skips the generated Reason.__new__ and _make's length check, about 40% faster;
# safe because _assemble always passes (code, indicator, contribution) triples.
_new_reason = cast("Callable[[tuple[str, str, float]], Reason]", partial(tuple.__new__, Reason))
# The same for the one result per event.
_new_result = cast(
    "Callable[[tuple[float, Decision, tuple[Reason, ...], tuple[str, ...]]], FusionResult]",
    partial(tuple.__new__, FusionResult),
)


@lru_cache(maxsize=64)
def _flag_effect(flags: frozenset[HardFlag]) -> tuple[tuple[Reason, ...], tuple[str, ...], int]:
    """Reason prefix, ``forced_by`` and severity floor for a set of flags (few sets occur)."""
    ordered = sorted((HardFlag(flag) for flag in flags), key=_FLAG_RANK.__getitem__)
    names = tuple(flag.value for flag in ordered)
    floor = max((_SEVERITY[_FLAG_FLOOR[flag]] for flag in ordered), default=0)
    return tuple(Reason(name, "", 0.0) for name in names), names, floor


def _validated_input(indicators: npt.ArrayLike) -> npt.NDArray[np.float64]:
    matrix = np.asarray(indicators, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(INDICATORS):
        raise ValueError(f"indicators must have shape (n, {len(INDICATORS)}), got {matrix.shape}")
    # NaN compares False on both sides, so "not provided" passes.
    bad = np.flatnonzero(((matrix < 0.0) | (matrix > 1.0)).any(axis=0))
    if bad.size:
        names = [INDICATORS[i] for i in bad.tolist()]
        raise ValueError(f"indicators must be in [0, 1]: {', '.join(names)}")
    return matrix


def _row_sums(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Sum each row strictly left to right.

    ``matrix.sum(axis=1)`` picks its summation order from the memory layout (pairwise within a
    C-order row, column by column for Fortran order), so the same event could score differently
    in the last bit depending on its batch; a fixed order makes batch and single scoring agree.
    """
    total = matrix[:, 0].copy()
    for column in range(1, matrix.shape[1]):
        total += matrix[:, column]
    return total


def fuse_batch(
    indicators: npt.ArrayLike,
    policy: FusionPolicy,
    flags: Sequence[frozenset[HardFlag]] | None = None,
) -> list[FusionResult]:
    """Score, decide and explain a batch of events; row i of ``indicators`` pairs with flags[i].

    A NaN indicator was not provided (e.g. no face image). Its weight is spread proportionally
    over the provided indicators, so the score stays a weighted average of what was actually
    checked: counting a skipped check as zero risk would bias the decision towards approval.
    """
    matrix = _validated_input(indicators)
    n = matrix.shape[0]
    if flags is not None and len(flags) != n:
        raise ValueError(f"flags has {len(flags)} entries for {n} rows")
    if n <= _SMALL_BATCH:
        return _fuse_rows(
            matrix.tolist(), policy, flags if flags is not None else [frozenset()] * n
        )

    provided = ~np.isnan(matrix)
    provided_weights = policy.weights * provided
    provided_total = _row_sums(provided_weights)
    scored = provided_total > 0.0
    effective = np.divide(
        provided_weights,
        provided_total[:, None],
        out=np.zeros_like(provided_weights),
        where=scored[:, None],
    )
    contributions = effective * np.where(provided, matrix, 0.0)
    scores = np.where(scored, _row_sums(contributions), np.nan)
    # NaN scores compare False and stay at severity 0 here; they become REVIEW just below.
    severity = (scores >= policy.approve_below).astype(np.int8)
    severity += scores >= policy.decline_at_or_above
    severity[~scored] = _SEVERITY[REVIEW]
    # Stable sort of -contribution: ties keep INDICATORS order, missing indicators go last.
    order = np.argsort(np.where(provided, -contributions, np.inf), axis=1, kind="stable")
    codes = np.where(provided, _INDICATOR_CODES, _NOT_PROVIDED_CODES)

    return _assemble(
        scores.tolist(),
        severity.tolist(),
        np.take_along_axis(codes, order, axis=1).tolist(),
        _INDICATOR_NAMES[order].tolist(),
        np.take_along_axis(contributions, order, axis=1).tolist(),
        scored.tolist(),
        flags if flags is not None else repeat(frozenset(), n),
    )


# Below this many rows, numpy's per-call overhead dominates: plain floats are ~5x faster
# for a single event. Both paths do the same IEEE operations in the same order (left-to-right
# sums, one division per weight), so they agree bit for bit; a test holds them to it.
_SMALL_BATCH = 4


def _fuse_rows(
    rows: list[list[float]], policy: FusionPolicy, flags: Sequence[frozenset[HardFlag]]
) -> list[FusionResult]:
    weights = policy.weights.tolist()
    scores, severities, codes, names, contributions, scored = [], [], [], [], [], []
    for row in rows:
        provided = [not math.isnan(v) for v in row]
        provided_weights = [w if p else 0.0 for w, p in zip(weights, provided, strict=True)]
        total = provided_weights[0]
        for w in provided_weights[1:]:
            total += w
        has_score = total > 0.0
        row_contributions = [
            (w / total) * v if (has_score and p) else 0.0
            for w, v, p in zip(provided_weights, row, provided, strict=True)
        ]
        score = row_contributions[0]
        for c in row_contributions[1:]:
            score += c
        if not has_score:
            score = math.nan
        severity = (
            _SEVERITY[REVIEW]
            if not has_score
            else (int(score >= policy.approve_below) + int(score >= policy.decline_at_or_above))
        )
        order = sorted(
            range(len(row)),
            key=lambda j: -row_contributions[j] if provided[j] else math.inf,
        )
        scores.append(score)
        severities.append(severity)
        codes.append(
            [_INDICATOR_CODES[j] if provided[j] else _NOT_PROVIDED_CODES[j] for j in order]
        )
        names.append([INDICATORS[j] for j in order])
        contributions.append([row_contributions[j] for j in order])
        scored.append(has_score)
    return _assemble(scores, severities, codes, names, contributions, scored, flags)


def _assemble(
    scores: list[float],
    severities: list[int],
    codes: list[list[str]],
    names: list[list[str]],
    contributions: list[list[float]],
    scored: list[bool],
    flags: Iterable[frozenset[HardFlag]],
) -> list[FusionResult]:
    """Build per-event results from the sorted arrays (the only per-row Python loop)."""
    results: list[FusionResult] = []
    rows = zip(scores, severities, codes, names, contributions, scored, flags, strict=True)
    for score, severity, row_codes, row_names, row_contributions, has_score, row_flags in rows:
        reasons = tuple(map(_new_reason, zip(row_codes, row_names, row_contributions, strict=True)))
        if not has_score:
            reasons = (_NO_INDICATORS_REASON, *reasons)
        forced_by: tuple[str, ...] = ()
        if row_flags:
            prefix, forced_by, floor = _flag_effect(frozenset(row_flags))
            severity = max(severity, floor)
            reasons = prefix + reasons
        results.append(_new_result((score, _DECISIONS[severity], reasons, forced_by)))
    return results


def fuse_one(
    indicators: Mapping[str, float | None],
    policy: FusionPolicy,
    flags: frozenset[HardFlag] = frozenset(),
) -> FusionResult:
    """Fuse a single event; identical to a batch of one by construction."""
    return fuse_batch(indicator_matrix([indicators]), policy, [flags])[0]
