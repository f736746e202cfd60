"""Feature math for fraud scoring: raw counts and device facts in, risk indicators in [0, 1] out.

Pure, no I/O: the Redis feature store (infra/feature_store.py) keeps the counts and device
state and returns the dataclasses defined here; the agents turn them into indicators with the
functions below. Every threshold is a named constant with the reason for its value, so a
reviewer can challenge a number without reading the code around it. Timestamps must be
timezone-aware: a naive datetime would silently shift night-time and SIM-age rules by hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import cast
from zoneinfo import ZoneInfo

import numpy as np

from greencredit.models.label_buffer import require_utc

__all__ = [
    "AMOUNT_COLD_START_N",
    "AMOUNT_COLD_START_RISK",
    "AMOUNT_Z",
    "APPLICATION_VELOCITY",
    "CARD_VELOCITY",
    "DAY",
    "DEFAULT_TIME_ZONE",
    "DEVICE_FARM_THRESHOLD",
    "DEVICE_RULE_WEIGHTS",
    "FINGERPRINT_CHANGE_THRESHOLD",
    "HOUR",
    "IDENTITY_WINDOW",
    "NIGHT_END_HOUR",
    "NIGHT_START_HOUR",
    "RECENT_SIM_SWAP",
    "VELOCITY_BURST_AT",
    "WEEK",
    "AmountStats",
    "ApplicationVelocity",
    "DeviceRule",
    "DeviceState",
    "Ramp",
    "TransactionFeatures",
    "VelocityLimits",
    "WindowCounts",
    "amount_anomaly",
    "application_velocity_risk",
    "application_velocity_risks",
    "device_risk",
    "device_rules",
    "epoch_ms",
    "from_epoch_ms",
    "geo_mismatch",
    "is_night_time",
    "risk_of_device_rules",
    "velocity_risk",
]

# Sliding windows of the velocity counts. One hour catches scripted bursts, a day catches
# "shopping around" the same identity, a week catches slow-drip identity farming.
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
# Window for "distinct identities / customers / fingerprints per device". A month is long
# enough to see a farm that rotates identities slowly, short enough that a family sharing a
# phone over the years does not accumulate into a "farm".
IDENTITY_WINDOW = timedelta(days=30)


# --- velocity ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """Events of one subject in sliding windows ending at one event, that event included.

    Counted by event time (``occurred_at``), so a replay sees the same windows. ``last_7d`` is
    None where the store keeps only a day (card transactions).
    """

    last_1h: int
    last_24h: int
    last_7d: int | None = None


@dataclass(frozen=True, slots=True)
class Ramp:
    """Linear risk ramp: 0 at or below ``normal``, 1 at or above ``alarm``."""

    normal: float
    alarm: float

    def __post_init__(self) -> None:
        """Reject a ramp that cannot rise (it would divide by zero or invert the risk)."""
        if not self.alarm > self.normal:
            raise ValueError(f"alarm ({self.alarm}) must exceed normal ({self.normal})")

    def risk(self, value: float) -> float:
        """Where ``value`` sits on the ramp, clamped to [0, 1]."""
        return min(1.0, max(0.0, (value - self.normal) / (self.alarm - self.normal)))


@dataclass(frozen=True, slots=True)
class VelocityLimits:
    """One ramp per window; the velocity risk is the worst window."""

    last_1h: Ramp
    last_24h: Ramp
    last_7d: Ramp | None = None


# Applications per device / ID number / phone, counts including the scored application.
# A genuine applicant applies once and may retry once after fixing a typo; a third attempt
# within the hour is what scripted identity testing looks like. Over a day two is still normal
# (retry next morning), five is an identity being shopped around lenders' forms; over a week
# three is normal, eight means the identity or device is being farmed.
APPLICATION_VELOCITY = VelocityLimits(
    last_1h=Ramp(normal=1, alarm=3),
    last_24h=Ramp(normal=2, alarm=5),
    last_7d=Ramp(normal=3, alarm=8),
)
# At the alarm end of any of those windows (e.g. a third application within the hour) the
# burst is scripted testing of the form: a hard flag (VELOCITY_BURST), not only a score share.
VELOCITY_BURST_AT = 1.0
# Card transactions, including the scored one. Heavy but honest card users make a handful
# per hour (commute, lunch, groceries) and a few dozen per day; card-testing bots make tens
# per hour. Set high on purpose: velocity is a supporting signal for cards, not a verdict.
CARD_VELOCITY = VelocityLimits(
    last_1h=Ramp(normal=6, alarm=20),
    last_24h=Ramp(normal=40, alarm=120),
)


def velocity_risk(counts: WindowCounts, limits: VelocityLimits = APPLICATION_VELOCITY) -> float:
    """Worst window's ramp risk in [0, 1]; a window missing on either side is skipped."""
    risks = [limits.last_1h.risk(counts.last_1h), limits.last_24h.risk(counts.last_24h)]
    if limits.last_7d is not None and counts.last_7d is not None:
        risks.append(limits.last_7d.risk(counts.last_7d))
    return max(risks)


# --- device -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the engine knows about a device (by pseudonym) when an event from it is scored.

    Flags are those of the device's latest signal by event time; ``last_signal_at`` is None
    when the SDK never reported the device (flags then default to False: no evidence).
    ``sim_changed_at`` is derived from the signal's ``sim_change_age_hours`` so the age can be
    taken at scoring time. Distinct counts are of members last seen less than
    :data:`IDENTITY_WINDOW` before the scored event (a replay also sees later arrivals).
    """

    device_ref: str
    last_signal_at: datetime | None = None
    is_emulator: bool = False
    is_rooted: bool = False
    is_jailbroken: bool = False
    vpn_active: bool = False
    proxy_active: bool = False
    sim_changed_at: datetime | None = None
    geo_country: str | None = None
    distinct_fingerprints_30d: int = 0
    distinct_identities_30d: int = 0  # ID-number pseudonyms applying from this device
    distinct_customers_30d: int = 0  # platform customer accounts seen on this device


class DeviceRule(StrEnum):
    """A named device finding; the names go into reason codes."""

    EMULATOR = "EMULATOR"
    ROOTED_WITH_VPN = "ROOTED_WITH_VPN"
    RECENT_SIM_SWAP = "RECENT_SIM_SWAP"
    DEVICE_FARM = "DEVICE_FARM"
    FINGERPRINT_CHANGED = "FINGERPRINT_CHANGED"


# Takeover fraud ports the victim's number to a new SIM and uses it within a day or two, before
# the victim notices; 72 h covers a weekend.
RECENT_SIM_SWAP = timedelta(hours=72)
# Distinct identities (or customer accounts) on one device within IDENTITY_WINDOW. Two is a
# couple sharing a tablet; three or more different ID numbers on one phone is the signature of
# a device farm or an agent applying on behalf of recruited "mules".
DEVICE_FARM_THRESHOLD = 3
# A fingerprint is a hash of hardware/software traits; a second one within the window means a
# factory reset or a spoofing tool. Both happen to honest users too, hence the low weight below.
FINGERPRINT_CHANGE_THRESHOLD = 2

# Risk each rule contributes alone; rules combine as independent evidence (noisy-OR), so the
# total stays in [0, 1] and never falls when a rule is added. Emulators and farms have no honest
# use in consumer credit; root + VPN is fraud tooling but also privacy-minded power users; a new
# SIM is most often a new contract; fingerprint drift is mostly OS updates and resets.
DEVICE_RULE_WEIGHTS: Mapping[DeviceRule, float] = MappingProxyType(
    {
        DeviceRule.EMULATOR: 0.8,
        DeviceRule.DEVICE_FARM: 0.8,
        DeviceRule.ROOTED_WITH_VPN: 0.6,
        DeviceRule.RECENT_SIM_SWAP: 0.5,
        DeviceRule.FINGERPRINT_CHANGED: 0.3,
    }
)


def device_rules(
    state: DeviceState, now: datetime, *, farm_threshold: int = DEVICE_FARM_THRESHOLD
) -> frozenset[DeviceRule]:
    """The rules a device state triggers at ``now`` (the scored event's time, timezone-aware).

    A SIM change reported *after* ``now`` (the state is the latest known) also counts as
    recent: a swap right after an application is as suspicious as one right before.
    """
    now = require_utc(now, "now")
    rules: set[DeviceRule] = set()
    if state.is_emulator:
        rules.add(DeviceRule.EMULATOR)
    if (state.is_rooted or state.is_jailbroken) and (state.vpn_active or state.proxy_active):
        rules.add(DeviceRule.ROOTED_WITH_VPN)
    if state.sim_changed_at is not None and now - state.sim_changed_at < RECENT_SIM_SWAP:
        rules.add(DeviceRule.RECENT_SIM_SWAP)
    if max(state.distinct_identities_30d, state.distinct_customers_30d) >= farm_threshold:
        rules.add(DeviceRule.DEVICE_FARM)
    if state.distinct_fingerprints_30d >= FINGERPRINT_CHANGE_THRESHOLD:
        rules.add(DeviceRule.FINGERPRINT_CHANGED)
    return frozenset(rules)


def device_risk(
    state: DeviceState, now: datetime, *, farm_threshold: int = DEVICE_FARM_THRESHOLD
) -> float:
    """Noisy-OR of the triggered rules' weights: 0 for a clean device, below 1 otherwise."""
    return risk_of_device_rules(device_rules(state, now, farm_threshold=farm_threshold))


def risk_of_device_rules(rules: frozenset[DeviceRule]) -> float:
    """:func:`device_risk` from rules already found (a caller that needs both finds them once)."""
    clean = 1.0
    for rule in rules:
        clean *= 1.0 - DEVICE_RULE_WEIGHTS[rule]
    return 1.0 - clean


# --- per-event results of the feature store ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplicationVelocity:
    """Velocity of one application's device, ID number and phone, plus the device's state."""

    event_id: str
    device: WindowCounts
    id_number: WindowCounts
    phone: WindowCounts
    device_state: DeviceState


def application_velocity_risk(
    velocity: ApplicationVelocity, limits: VelocityLimits = APPLICATION_VELOCITY
) -> float:
    """Worst of the device, ID-number and phone velocity risks."""
    return max(
        velocity_risk(velocity.device, limits),
        velocity_risk(velocity.id_number, limits),
        velocity_risk(velocity.phone, limits),
    )


def application_velocity_risks(
    velocities: Sequence[ApplicationVelocity], limits: VelocityLimits = APPLICATION_VELOCITY
) -> list[float]:
    """:func:`application_velocity_risk` of a batch, as columns (equal to it bit for bit).

    The ramps are the same IEEE operations on the same values (counts are small integers,
    exact as floats), so each element equals the scalar function's result; a test holds it.
    A window missing on either side contributes nothing (as the scalar function skips it).
    """
    if not velocities:
        return []
    counts = np.array(
        [
            (c.last_1h, c.last_24h, np.nan if c.last_7d is None else c.last_7d)
            for v in velocities
            for c in (v.device, v.id_number, v.phone)
        ],
        dtype=np.float64,
    ).reshape(len(velocities), 3, 3)
    ramps = (limits.last_1h, limits.last_24h, limits.last_7d)
    risks = np.zeros((len(velocities), 3, 3))
    for window, ramp in enumerate(ramps):
        if ramp is None:
            continue
        column = counts[:, :, window]
        ramped = np.minimum(
            1.0, np.maximum(0.0, (column - ramp.normal) / (ramp.alarm - ramp.normal))
        )
        # A missing count (NaN) is skipped: 0.0 never wins the max over the 1 h and 24 h risks,
        # which are >= 0.0.
        risks[:, :, window] = np.where(np.isnan(column), 0.0, ramped)
    return cast("list[float]", risks.reshape(len(velocities), 9).max(axis=1).tolist())


@dataclass(frozen=True, slots=True)
class AmountStats:
    """Running statistics of an account's transaction amounts (minor units).

    ``std`` is the population standard deviation (numpy's default, ddof=0); ``n`` = 0 gives
    mean 0 and std 0.
    """

    n: int
    mean: float
    std: float


@dataclass(frozen=True, slots=True)
class TransactionFeatures:
    """Stored features of one transaction.

    ``amount_history`` excludes this transaction, so an anomaly compares it with the past.
    ``is_new_merchant`` is True the first time the account pays the merchant (within the
    store's memory of merchants). ``geo_mismatch`` compares IP, device and merchant countries.
    """

    event_id: str
    card: WindowCounts
    amount_history: AmountStats
    is_new_merchant: bool
    geo_mismatch: bool
    device_state: DeviceState | None


# --- event-level indicators -------------------------------------------------------------------

# Local night is 00:00-05:59: applications and spending in those hours are rare for honest
# customers and common for bots and for fraud run from other time zones.
NIGHT_START_HOUR = 0
NIGHT_END_HOUR = 6  # exclusive
DEFAULT_TIME_ZONE = "Asia/Shanghai"


def is_night_time(occurred_at: datetime, tz: str = DEFAULT_TIME_ZONE) -> bool:
    """True when ``occurred_at`` falls in local night (00:00-05:59) in time zone ``tz``."""
    local = require_utc(occurred_at, "occurred_at").astimezone(ZoneInfo(tz))
    return NIGHT_START_HOUR <= local.hour < NIGHT_END_HOUR


def geo_mismatch(
    ip_country: str | None, device_country: str | None, merchant_country: str | None = None
) -> bool:
    """True when the known countries (ISO alpha-2, any case) are not all the same.

    Unknown countries are left out: missing data is not evidence. Pass ``merchant_country``
    only where the customer must be at the merchant (card present); for e-commerce a foreign
    merchant is ordinary.
    """
    known = {c.strip().upper() for c in (ip_country, device_country, merchant_country) if c}
    return len(known) > 1


# Below five past transactions mean and std say little (one large first purchase would make
# every later one look small); cold start returns "no evidence" rather than a guess.
AMOUNT_COLD_START_N = 5
AMOUNT_COLD_START_RISK = 0.0
# z-scores of a spend above the account's mean. Two standard deviations happens every few
# weeks for an honest customer (rent, a flight); six is a drained account.
AMOUNT_Z = Ramp(normal=2.0, alarm=6.0)
# Floors of the std used for z: an account that always spends the same amount has std 0, and
# a cent more must not score as infinitely anomalous. 10 % of the mean, at least one minor unit.
AMOUNT_MIN_STD_FRACTION = 0.1
AMOUNT_MIN_STD_MINOR = 1.0


def amount_anomaly(amount: int, mean: float, std: float, n: int) -> float:
    """Risk in [0, 1] that ``amount`` is unusually large for the account's history.

    One-sided: a smaller-than-usual spend is not an amount anomaly (tiny card-testing charges
    are caught by velocity). Cold start (n < :data:`AMOUNT_COLD_START_N`) gives
    :data:`AMOUNT_COLD_START_RISK`.
    """
    if n < AMOUNT_COLD_START_N:
        return AMOUNT_COLD_START_RISK
    if not (math.isfinite(mean) and math.isfinite(std)) or std < 0:
        raise ValueError(f"mean and std must be finite and std >= 0, got {mean}, {std}")
    scale = max(std, AMOUNT_MIN_STD_FRACTION * abs(mean), AMOUNT_MIN_STD_MINOR)
    return AMOUNT_Z.risk((amount - mean) / scale)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch, exactly (no float rounding); naive is rejected."""
    return (require_utc(moment) - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    """Inverse of :func:`epoch_ms`, in UTC."""
    return _EPOCH + timedelta(milliseconds=ms)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
