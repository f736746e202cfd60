"""Features kept between scoring and the late label that lets the online LR learn from them.

A credit outcome (first payment made or missed) arrives days or weeks after the event was
scored. Learning must use the features *as they were scored*, and test-then-train monitoring
must use the probabilities *as they were predicted*, so both are kept here, keyed by event id,
until the label arrives or the entry expires. In production the agent keeps the same layout in
Redis; this is the reference logic and the in-memory variant used by tests and the simulator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_TTL",
    "PendingEntry",
    "PendingFeatures",
    "require_probability",
    "require_utc",
]

STATE_FORMAT_VERSION = 1

# Long enough for a first-instalment outcome on monthly repayment; a label later than that is
# better used by the batch retraining than by an online model that has moved on.
DEFAULT_TTL = timedelta(days=30)
# Memory bound of the in-memory variant (~1-2 KB per entry with a few dozen features). A 30-day
# TTL at production volume needs Redis; the bound only stops a test or simulator from growing.
DEFAULT_MAX_ENTRIES = 100_000


def require_utc(moment: datetime, what: str = "timestamp") -> datetime:
    """Return ``moment`` in UTC; a naive datetime is rejected because its zone is a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _parse_utc(text: str, what: str) -> datetime:
    return require_utc(datetime.fromisoformat(text), what)


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """What was scored for one event: its features, when, and each model's probability."""

    event_id: str
    features: Mapping[str, float]
    scored_at: datetime
    risk: float
    bp_prob: float | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (ISO UTC timestamp)."""
        return {
            "event_id": self.event_id,
            "features": dict(self.features),
            "scored_at": self.scored_at.isoformat(),
            "risk": self.risk,
            "bp_prob": self.bp_prob,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PendingEntry:
        """Inverse of :meth:`to_json`."""
        bp = d.get("bp_prob")
        return cls(
            event_id=str(d["event_id"]),
            features={str(k): float(v) for k, v in d["features"].items()},
            scored_at=_parse_utc(d["scored_at"], "scored_at"),
            risk=float(d["risk"]),
            bp_prob=None if bp is None else float(bp),
        )


def require_probability(value: float, what: str = "probability") -> float:
    """Return ``value`` as a float if it is a probability; NaN or out-of-range is a bug upstream."""
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{what} must be a probability in [0, 1], got {value!r}")
    return value


@dataclass
class PendingFeatures:
    """Scored features awaiting their label, bounded in age (``ttl``) and in count.

    Entries are kept in the order they were remembered, which is ``scored_at`` order because
    the scorer stamps them with its own clock; "oldest" therefore means first remembered.
    Remembering an id again replaces its entry and makes it the newest.
    """

    ttl: timedelta = DEFAULT_TTL
    max_entries: int = DEFAULT_MAX_ENTRIES
    dropped: int = 0
    expired: int = 0
    _entries: dict[str, PendingEntry] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.ttl <= timedelta(0):
            raise ValueError(f"ttl must be positive, got {self.ttl}")
        if self.max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {self.max_entries}")

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._entries

    def remember(
        self,
        event_id: str,
        features: Mapping[str, float],
        scored_at: datetime,
        risk: float,
        *,
        bp_prob: float | None = None,
    ) -> list[str]:
        """Keep what was scored for ``event_id``; return the ids dropped to respect the bound.

        ``risk`` is the online LR's probability and ``bp_prob`` the BP model's, both as
        predicted at scoring time, so that monitoring can score them against the label later.
        """
        entry = PendingEntry(
            event_id=event_id,
            features={str(k): float(v) for k, v in features.items()},
            scored_at=require_utc(scored_at, "scored_at"),
            risk=require_probability(risk, "risk"),
            bp_prob=None if bp_prob is None else require_probability(bp_prob, "bp_prob"),
        )
        self._entries.pop(event_id, None)
        self._entries[event_id] = entry
        dropped_ids: list[str] = []
        while len(self._entries) > self.max_entries:
            oldest = next(iter(self._entries))
            del self._entries[oldest]
            dropped_ids.append(oldest)
        self.dropped += len(dropped_ids)
        return dropped_ids

    def take(self, event_id: str) -> PendingEntry | None:
        """Remove and return the entry for a label that just arrived; None if unknown or gone."""
        return self._entries.pop(event_id, None)

    def expire(self, now: datetime) -> list[str]:
        """Drop entries scored ``ttl`` or more before ``now``; return their ids, oldest first."""
        cutoff = require_utc(now, "now") - self.ttl
        # A full scan rather than stopping at the first young entry: a clock step back on the
        # scorer would otherwise hide older entries behind a newer one.
        gone = [eid for eid, e in self._entries.items() if e.scored_at <= cutoff]
        for eid in gone:
            del self._entries[eid]
        self.expired += len(gone)
        return gone

    def to_state(self) -> dict[str, Any]:
        """JSON-safe state; entries listed oldest first so the drop order survives a restart."""
        return {
            "format_version": STATE_FORMAT_VERSION,
            "ttl_seconds": self.ttl.total_seconds(),
            "max_entries": self.max_entries,
            "dropped": self.dropped,
            "expired": self.expired,
            "entries": [e.to_json() for e in self._entries.values()],
        }

    @classmethod
    def from_state(cls, d: Mapping[str, Any]) -> PendingFeatures:
        """Rebuild from :meth:`to_state`; an unknown format version is rejected."""
        version = d.get("format_version")
        if version != STATE_FORMAT_VERSION:
            raise ValueError(
                f"unsupported PendingFeatures state format version {version!r}; "
                f"this build reads version {STATE_FORMAT_VERSION}"
            )
        buffer = cls(
            ttl=timedelta(seconds=float(d["ttl_seconds"])),
            max_entries=int(d["max_entries"]),
            dropped=int(d["dropped"]),
            expired=int(d["expired"]),
        )
        for raw in d["entries"]:
            entry = PendingEntry.from_json(raw)
            buffer._entries[entry.event_id] = entry
        return buffer
