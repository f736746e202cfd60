"""What the engine flagged per typology, and the demo's summary (the `--summary` JSON)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from greencredit.models.scoring import GREEN_PURPOSES
from greencredit.models.stats import percentile, rank_auc
from greencredit.streams.simulation.truth import TYPOLOGIES, detection_report

from .observer import INPUTS, Observer

__all__ = ["flags_by_typology", "percentile", "rank_auc", "summary"]  # the last two re-exported


def _codes(record: dict[str, Any]) -> set[str]:
    return {reason["code"] for reason in record.get("reasons", [])}


# Decision reason code -> the typology it signals.
_DECISION_SIGNALS = {
    "DEVICE_FARM": "device_farm",
    "FACE_BLACKLIST_HIT": "identity_theft",
    "IDENTITY_INVALID": "synthetic_identity",
    "VELOCITY_BURST": "velocity_burst",
}


def _escalation_typologies(escalation: dict[str, Any]) -> list[str]:
    found = []
    if escalation["transition"] == "ESCALATED" and "instalment 1 unpaid" in escalation["reason"]:
        found.append("first_payment_default")
    if escalation["transition"] == "CURED":
        found.append("gradual_delinquency_cure")
    if "guarantor delinquent" in escalation["reason"]:
        found.append("guarantor_default")
    return found


def flags_by_typology(observed: Observer) -> dict[str, set[str]]:
    """Subjects the engine's outputs flag, per typology, by the typology's own signal.

    Applications by application id, transactions by event id, loans by loan id. Each signal is
    something a consumer of the output topics can see: a reason code, an indicator, an
    alert source, an escalation reason.
    """
    flags: dict[str, set[str]] = {name: set() for name in TYPOLOGIES}
    with observed.lock:
        decisions = list(observed.decisions.values())
        alerts = list(observed.alerts.values())
        escalations = list(observed.escalations.values())
        loan_of = dict(observed.loan_of_transaction)
    for d in decisions:
        codes = _codes(d)
        for code, typology in _DECISION_SIGNALS.items():
            if code in codes:
                flags[typology].add(d["application_id"])
    for a in alerts:
        if "SIM_SWAP_LARGE_AMOUNT" in _codes(a):
            flags["account_takeover"].add(a["source_event_id"])
        loan = loan_of.get(a["source_event_id"]) if a["source"] == "GREEN_PURPOSE" else None
        if loan is not None:
            flags["green_fund_diversion"].add(loan)
    for e in escalations:
        for typology in _escalation_typologies(e):
            flags[typology].add(e["loan_id"])
    return flags


def _face_check(decisions: list[dict[str, Any]], scenario: Any) -> dict[str, Any]:
    """Honest selfies: how many were declined as blacklisted, how many went to review."""
    honest = set(getattr(scenario, "honest_selfies", ()))
    decided = [d for d in decisions if d["application_id"] in honest]
    declined = sum(1 for d in decided if "FACE_BLACKLIST_HIT" in _codes(d))
    near_miss = sum(1 for d in decided if "FACE_BLACKLIST_NEAR_MISS" in _codes(d))
    return {
        "honest_selfies_decided": len(decided),
        "honest_declined_as_blacklisted": declined,
        "honest_declined_rate": round(declined / len(decided), 4) if decided else None,
        "honest_near_miss_reviews": near_miss,
    }


def summary(observed: Observer, scenario: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """The `--summary` document: counts, detection against ground truth, latency, green."""
    flags = flags_by_typology(observed)
    with observed.lock:
        decisions = list(observed.decisions.values())
        alerts = list(observed.alerts.values())
        disbursements = list(observed.disbursements.values())
        escalations = list(observed.escalations.values())
        letters = len(observed.dead_letters)
        inputs = {t: len(observed.seen[t]) for t in observed.seen if t in INPUTS}
    latency = observed.latencies_ms()
    per_app = Counter(d["application_id"] for d in disbursements)
    green = [d for d in disbursements if d["purpose"] in GREEN_PURPOSES]
    co2e = [d["co2e_avoided_kg"] for d in green if d["co2e_avoided_kg"] is not None]
    return {
        "events_in": {t.removeprefix("greencredit."): n for t, n in sorted(inputs.items())},
        "decisions": {
            k.lower(): v for k, v in sorted(Counter(d["decision"] for d in decisions).items())
        },
        "fraud_alerts": len(alerts),
        "disbursements": len(disbursements),
        "duplicate_disbursements": sum(n - 1 for n in per_app.values() if n > 1),
        "escalations": {
            mode.lower(): n
            for mode, n in sorted(
                Counter(
                    e["collection_mode"] for e in escalations if e["transition"] == "ESCALATED"
                ).items()
            )
        },
        "detection": detection_report(scenario.truth, flags),
        "face_check": _face_check(decisions, scenario),
        "latency_ms": {
            "p50": percentile(latency, 50),
            "p99": percentile(latency, 99),
            "max": max(latency, default=None),
            "decisions_timed": len(latency),
        },
        "green": {
            "green_loans": len(green),
            "co2e_avoided_kg": round(sum(co2e), 1) if co2e else None,
            "green_loans_without_co2e_factor": len(green) - len(co2e),
            # Green but credited nothing: zero claims (e-bikes, transit passes, where no
            # saving can be shown) and appliances no better than the market average.
            "green_loans_credited_zero_co2e": sum(1 for kg in co2e if kg == 0),
            "diversion_alerts": sum(1 for a in alerts if a["source"] == "GREEN_PURPOSE"),
        },
        "dead_letters": letters,
        "ground_truth": scenario.truth.counts(),
        **extra,
    }
