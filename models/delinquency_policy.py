"""A lender's delinquency policy: DPD buckets, amount rules, risk raises and collection routing.

Levels come first from days past due (buckets in the style of Apache Fineract's delinquency
ranges), then from the amount overdue, so that a few cents overdue for 40 days is not treated
like half the principal. Mild levels are collected automatically (app push, SMS, auto-debit
retry), serious ones by people (phone calls, a collection agency, legal action).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_ROUTING",
    "LEGAL_ROUTE",
    "CollectionChannel",
    "CollectionMode",
    "DelinquencyLevel",
    "DelinquencyPolicy",
    "DelinquencyPolicyError",
    "DpdBucket",
    "Route",
    "Transition",
]


class DelinquencyLevel(StrEnum):
    """Severity of a loan, least severe first (the Avro enum DelinquencyLevel)."""

    CURRENT = "CURRENT"
    EARLY_WARNING = "EARLY_WARNING"
    MILD = "MILD"
    MODERATE = "MODERATE"
    SEVERE = "SEVERE"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        """Position in the severity order: CURRENT is 0, CRITICAL is 5."""
        return _LEVELS.index(self)

    def shifted(self, steps: int, floor: DelinquencyLevel | None = None) -> DelinquencyLevel:
        """The level ``steps`` away (negative = milder), kept within [floor, CRITICAL]."""
        lowest = 0 if floor is None else floor.rank
        return _LEVELS[min(max(self.rank + steps, lowest), len(_LEVELS) - 1)]


_LEVELS: tuple[DelinquencyLevel, ...] = tuple(DelinquencyLevel)
_E = TypeVar("_E", bound=StrEnum)
# Levels a DPD bucket may map to: one day past due is already delinquent.
_BUCKET_LEVELS = _LEVELS[_LEVELS.index(DelinquencyLevel.MILD) :]


class Transition(StrEnum):
    """What an escalation reports (the Avro enum EscalationTransition)."""

    ESCALATED = "ESCALATED"
    DEESCALATED = "DEESCALATED"
    CURED = "CURED"
    RESOLVED = "RESOLVED"


class CollectionMode(StrEnum):
    """Who collects: machines for mild levels, people for serious ones."""

    NONE = "NONE"
    AUTOMATIC = "AUTOMATIC"
    MANUAL = "MANUAL"


class CollectionChannel(StrEnum):
    """How to collect (the Avro enum CollectionChannel)."""

    NONE = "NONE"
    APP_PUSH = "APP_PUSH"
    SMS = "SMS"
    AUTO_DEBIT_RETRY = "AUTO_DEBIT_RETRY"
    PHONE_CALL = "PHONE_CALL"
    COLLECTION_AGENCY = "COLLECTION_AGENCY"
    LEGAL = "LEGAL"


class DelinquencyPolicyError(ValueError):
    """A delinquency policy that must not be applied; the message names the field."""


@dataclass(frozen=True)
class DpdBucket:
    """Days past due ``min_days``..``max_days`` (inclusive; None: no end) map to ``level``."""

    min_days: int
    max_days: int | None
    level: DelinquencyLevel

    def contains(self, days_past_due: int) -> bool:
        """Whether ``days_past_due`` falls in this bucket."""
        return days_past_due >= self.min_days and (
            self.max_days is None or days_past_due <= self.max_days
        )


@dataclass(frozen=True)
class Route:
    """Collection mode and channel for one level."""

    mode: CollectionMode
    channel: CollectionChannel


DEFAULT_BUCKETS: tuple[DpdBucket, ...] = (
    DpdBucket(1, 30, DelinquencyLevel.MILD),
    DpdBucket(31, 60, DelinquencyLevel.MODERATE),
    DpdBucket(61, 90, DelinquencyLevel.SEVERE),
    DpdBucket(91, None, DelinquencyLevel.CRITICAL),
)
DEFAULT_ROUTING: Mapping[DelinquencyLevel, Route] = MappingProxyType(
    {
        DelinquencyLevel.EARLY_WARNING: Route(CollectionMode.AUTOMATIC, CollectionChannel.APP_PUSH),
        DelinquencyLevel.MILD: Route(CollectionMode.AUTOMATIC, CollectionChannel.SMS),
        DelinquencyLevel.MODERATE: Route(
            CollectionMode.AUTOMATIC, CollectionChannel.AUTO_DEBIT_RETRY
        ),
        DelinquencyLevel.SEVERE: Route(CollectionMode.MANUAL, CollectionChannel.PHONE_CALL),
        DelinquencyLevel.CRITICAL: Route(
            CollectionMode.MANUAL, CollectionChannel.COLLECTION_AGENCY
        ),
    }
)
LEGAL_ROUTE = Route(CollectionMode.MANUAL, CollectionChannel.LEGAL)
_NO_ROUTE = Route(CollectionMode.NONE, CollectionChannel.NONE)


@dataclass(frozen=True)
class DelinquencyPolicy:
    """One lender's rules for grading delinquent loans, validated on construction.

    ``buckets`` grade by days past due (DPD). An overdue amount below both
    ``minor_amount_share`` of the principal and ``minor_amount_minor`` lowers the level one
    step (never below MILD); above ``major_amount_share`` it raises one step. A delinquent
    guarantor, or collateral worth less than outstanding principal / ``ltv_limit``, each raise
    one step (a loan with nothing overdue goes no further than EARLY_WARNING). A behaviour risk
    at or above ``early_warning_risk`` makes a CURRENT loan EARLY_WARNING. ``grace_days`` pass
    after a due date before DPD counts. ``routing`` says how each level is collected; CRITICAL
    loans at least ``legal_after_days`` past due go to legal action.
    """

    buckets: tuple[DpdBucket, ...] = DEFAULT_BUCKETS
    minor_amount_share: float = 0.01
    minor_amount_minor: int = 10_000
    major_amount_share: float = 0.5
    grace_days: int = 0
    ltv_limit: float = 0.8
    early_warning_risk: float = 0.7
    routing: Mapping[DelinquencyLevel, Route] = field(
        default_factory=lambda: DEFAULT_ROUTING, hash=False
    )
    legal_after_days: int = 180

    def __post_init__(self) -> None:
        """Normalise buckets and routing to typed values and check every field."""
        object.__setattr__(self, "buckets", _checked_buckets(self.buckets))
        object.__setattr__(self, "routing", _checked_routing(self.routing))
        for name, low, high, low_open in (
            ("minor_amount_share", 0.0, 1.0, False),
            ("major_amount_share", 0.0, 1.0, True),
            ("early_warning_risk", 0.0, 1.0, True),
            ("ltv_limit", 0.0, math.inf, True),
        ):
            object.__setattr__(self, name, _number(getattr(self, name), name, low, high, low_open))
        if self.minor_amount_share >= self.major_amount_share:
            raise DelinquencyPolicyError(
                f"minor_amount_share ({self.minor_amount_share}) must be below "
                f"major_amount_share ({self.major_amount_share})"
            )
        for name, low in (("minor_amount_minor", 0), ("grace_days", 0), ("legal_after_days", 1)):
            _integer(getattr(self, name), name, low)

    def level_for_days(self, days_past_due: int) -> DelinquencyLevel:
        """The bucket level for ``days_past_due``; CURRENT when nothing is past due."""
        if days_past_due <= 0:
            return DelinquencyLevel.CURRENT
        # Buckets are contiguous from day 1 with an open last one, so one always matches.
        return next(b.level for b in self.buckets if b.contains(days_past_due))

    def route_for(self, level: DelinquencyLevel, days_past_due: int) -> Route:
        """How to collect a loan at ``level`` that is ``days_past_due`` days late."""
        if level is DelinquencyLevel.CURRENT:
            return _NO_ROUTE
        if level is DelinquencyLevel.CRITICAL and days_past_due >= self.legal_after_days:
            return LEGAL_ROUTE
        return self.routing[level]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DelinquencyPolicy:
        """Build from a JSON object; absent keys take their defaults.

        Unknown keys are rejected rather than ignored: a misspelt ``grace_day`` silently
        falling back to the default would grade every loan of the lender differently.
        """
        if not isinstance(data, Mapping):
            raise DelinquencyPolicyError(f"policy must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise DelinquencyPolicyError(f"unknown policy keys: {', '.join(map(str, unknown))}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict that ``from_dict`` turns back into an equal policy."""
        return {
            "buckets": [
                {"min_days": b.min_days, "max_days": b.max_days, "level": b.level.value}
                for b in self.buckets
            ],
            "minor_amount_share": self.minor_amount_share,
            "minor_amount_minor": self.minor_amount_minor,
            "major_amount_share": self.major_amount_share,
            "grace_days": self.grace_days,
            "ltv_limit": self.ltv_limit,
            "early_warning_risk": self.early_warning_risk,
            "routing": {
                level.value: {"mode": r.mode.value, "channel": r.channel.value}
                for level, r in self.routing.items()
            },
            "legal_after_days": self.legal_after_days,
        }


def _checked_buckets(raw: Any) -> tuple[DpdBucket, ...]:
    if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Sequence) or not raw:
        raise DelinquencyPolicyError("buckets must be a non-empty list of (min, max, level)")
    buckets = tuple(_bucket(item, i) for i, item in enumerate(raw))
    expected_min = 1
    previous = DelinquencyLevel.MILD
    for i, b in enumerate(buckets):
        where = f"buckets[{i}]"
        if b.min_days != expected_min:
            raise DelinquencyPolicyError(
                f"{where}: starts at day {b.min_days}, expected {expected_min} "
                "(buckets must be contiguous from day 1, without gaps or overlaps)"
            )
        if b.max_days is None and i != len(buckets) - 1:
            raise DelinquencyPolicyError(f"{where}: only the last bucket may be open-ended")
        if b.max_days is not None and b.max_days < b.min_days:
            raise DelinquencyPolicyError(f"{where}: max_days {b.max_days} < min_days {b.min_days}")
        if b.level.rank < previous.rank:
            raise DelinquencyPolicyError(
                f"{where}: level {b.level} is milder than the previous bucket's {previous}"
            )
        previous = b.level
        expected_min = (b.max_days or 0) + 1
    if buckets[-1].max_days is not None:
        raise DelinquencyPolicyError(
            f"buckets[{len(buckets) - 1}]: the last bucket must be open-ended (max_days None) "
            f"so every DPD from {buckets[-1].max_days + 1} on has a level"
        )
    return buckets


def _bucket(item: Any, index: int) -> DpdBucket:
    where = f"buckets[{index}]"
    if isinstance(item, DpdBucket):
        values = (item.min_days, item.max_days, item.level)
    elif isinstance(item, Mapping):
        try:
            values = (item["min_days"], item.get("max_days"), item["level"])
        except KeyError as err:
            raise DelinquencyPolicyError(f"{where}: missing {err.args[0]}") from None
    elif isinstance(item, Sequence) and not isinstance(item, str | bytes) and len(item) == 3:
        values = (item[0], item[1], item[2])
    else:
        raise DelinquencyPolicyError(f"{where}: expected (min_days, max_days, level)")
    min_days, max_days, level = values
    _integer(min_days, f"{where}.min_days", 1)
    if max_days is not None:
        _integer(max_days, f"{where}.max_days", 1)
    parsed = _enum(DelinquencyLevel, level, f"{where}.level")
    if parsed not in _BUCKET_LEVELS:
        raise DelinquencyPolicyError(
            f"{where}.level: {parsed} is not a delinquent level "
            f"(one of {', '.join(_BUCKET_LEVELS)})"
        )
    return DpdBucket(min_days, max_days, parsed)


def _checked_routing(raw: Any) -> Mapping[DelinquencyLevel, Route]:
    if not isinstance(raw, Mapping):
        raise DelinquencyPolicyError("routing must map levels to (mode, channel)")
    routing: dict[DelinquencyLevel, Route] = {}
    for key, value in raw.items():
        level = _enum(DelinquencyLevel, key, "routing key")
        where = f"routing[{level}]"
        mode: Any
        channel: Any
        if level is DelinquencyLevel.CURRENT:
            raise DelinquencyPolicyError(f"{where}: CURRENT loans are never collected")
        if isinstance(value, Route):
            mode, channel = value.mode, value.channel
        elif isinstance(value, Mapping):
            mode, channel = value.get("mode"), value.get("channel")
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes) and len(value) == 2:
            mode, channel = value
        else:
            raise DelinquencyPolicyError(f"{where}: expected (mode, channel)")
        route = Route(
            _enum(CollectionMode, mode, f"{where}.mode"),
            _enum(CollectionChannel, channel, f"{where}.channel"),
        )
        if route.mode is CollectionMode.NONE or route.channel is CollectionChannel.NONE:
            raise DelinquencyPolicyError(
                f"{where}: a delinquent level needs a collection mode and channel, "
                f"got {route.mode}/{route.channel}"
            )
        routing[level] = route
    missing = [level for level in _LEVELS[1:] if level not in routing]
    if missing:
        raise DelinquencyPolicyError(f"routing has no route for {', '.join(missing)}")
    return MappingProxyType({level: routing[level] for level in _LEVELS[1:]})


def _enum(kind: type[_E], value: Any, where: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise DelinquencyPolicyError(
            f"{where}: {value!r} is not one of {', '.join(kind)}"
        ) from None


def _integer(value: Any, where: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise DelinquencyPolicyError(f"{where} must be an integer >= {low}, got {value!r}")


def _number(value: Any, where: str, low: float, high: float, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise DelinquencyPolicyError(f"{where} must be a number, got {value!r}")
    number = float(value)
    too_low = number <= low if low_open else number < low
    if too_low or number > high or math.isinf(number):
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise DelinquencyPolicyError(f"{where} must be in {interval}, got {value!r}")
    return number
