"""Device signals -> device state in Redis -> alert on new risky findings.

The stored state also feeds application decisions (device_risk, DEVICE_FARM) and
transaction scores (SIM swap before a large amount).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from greencredit.infra.feature_store import DeviceSignalKeys
from greencredit.infra.stores import EngineStateStore, FeatureStoreProtocol
from greencredit.models.features import DEVICE_RULE_WEIGHTS, device_risk, device_rules
from greencredit.streams import topics
from greencredit.streams.masking import pseudonym
from greencredit.streams.records import fraud_alert_record

from .batch import BatchResult
from .messages import Decoder, Incoming, Outgoing, dead_letter
from .resources import Resources
from .retry import RedisUnavailable, Retry

__all__ = ["DeviceDeps", "process_device_signals"]

# One alert per device and finding per day; the rule keeps counting in the state meanwhile.
FINDING_TTL = int(timedelta(days=1).total_seconds())


@dataclass(frozen=True)
class DeviceDeps:
    """What device signals use: device state (features) and the once-a-day finding markers."""

    decoder: Decoder
    retry: Retry
    state: EngineStateStore  # finding markers
    features: FeatureStoreProtocol  # device state
    pii_key: bytes  # pseudonyms of device and fingerprint

    @classmethod
    def of(cls, r: Resources) -> DeviceDeps:
        """The worker's part for this processor."""
        return cls(r.decoder, r.retry, r.state, r.features, r.pii_key)


def _keys(deps: DeviceDeps, signal: dict[str, Any]) -> DeviceSignalKeys:
    return DeviceSignalKeys(
        event_id=signal["event_id"],
        occurred_at=signal["occurred_at"],
        device_ref=pseudonym(signal["device_id"], deps.pii_key, "device"),
        fingerprint_ref=pseudonym(signal["fingerprint"], deps.pii_key, "fingerprint"),
        customer_id=signal.get("customer_id"),
        is_emulator=signal["is_emulator"],
        is_rooted=signal["is_rooted"],
        is_jailbroken=signal["is_jailbroken"],
        vpn_active=signal["vpn_active"],
        proxy_active=signal["proxy_active"],
        sim_change_age_hours=signal.get("sim_change_age_hours"),
        geo_country=signal.get("geo_country"),
    )


async def process_device_signals(
    deps: DeviceDeps, messages: Sequence[Incoming], now: datetime | None = None
) -> BatchResult:
    """Update device states; alert on findings that are new for the device."""
    now = now or datetime.now(UTC)
    result = BatchResult()
    signals = [event for _, event in deps.decoder.decode_all(messages, result.outputs)]
    if not signals:
        return result
    try:
        keys = [_keys(deps, s) for s in signals]
        states = await deps.retry(
            "record_device_signals", lambda: deps.features.record_device_signals(keys)
        )
        findings = []
        for key, state, signal in zip(keys, states, signals, strict=True):
            for rule in sorted(device_rules(state, signal["occurred_at"])):
                findings.append((key.device_ref, str(rule), state, signal))
        new = await deps.retry(
            "first_findings",
            lambda: deps.state.first_findings(
                [(f[0], f[1], f[3]["event_id"]) for f in findings], FINDING_TTL
            ),
        )
    except RedisUnavailable:
        for message in messages:
            result.outputs.append(dead_letter(message, RedisUnavailable("device state")))
        return result
    alerted: set[str] = set()
    for (device_ref, _rule, state, signal), is_new in zip(findings, new, strict=True):
        if not is_new or signal["event_id"] in alerted:
            continue
        alerted.add(signal["event_id"])
        rules = device_rules(state, signal["occurred_at"])
        # Ties (equal weights) by code: the rules are a set, and a redelivery must list them
        # in the same order.
        reasons = sorted(
            ((str(r), DEVICE_RULE_WEIGHTS[r]) for r in rules), key=lambda r: (-r[1], r[0])
        )
        record = fraud_alert_record(
            "DEVICE_SIGNAL",
            signal,
            device_risk(state, signal["occurred_at"]),
            reasons,
            now,
            customer_id=signal.get("customer_id"),
            device_ref=device_ref,
        )
        result.outputs.append(Outgoing(topics.FRAUD_ALERTS.name, device_ref, record))
    # No done markers: nothing would read them. Replaying a signal rewrites the state it
    # already wrote; a finding's marker names the signal that holds it, so a replay of that
    # signal sends its alert again (same id) and no other signal alerts for the finding.
    return result


def register(app: Any, topics_by_name: dict[str, Any], runtime: Any) -> None:
    """Attach the device-signals agent to the Faust app."""
    runtime.attach(
        app,
        topics_by_name[topics.DEVICE_SIGNALS.name],
        "device_signals",
        process_device_signals,
        DeviceDeps.of,
        pipelined=True,
    )
