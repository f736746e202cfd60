"""Fraud typology of a case, derived from its reason codes, so analysts can filter by pattern.

Two kinds of reason codes reach fraud operations:

* **rule codes** appear only when a rule fired (hard flags, device findings, the SIM-swap
  takeover rule, green-loan diversion, identity and face checks). Every one present counts.
* **scored evidence** (indicators and transaction evidence such as ``CARD_VELOCITY``) is
  listed with a contribution on most events, however small. Only the largest contributor
  counts, or a velocity score of 0.01 would file every case under velocity.

A case's typologies are the rule typologies in the priority order of ``RULE_TYPOLOGIES``
(most specific first), then the top scored one; the first is the primary typology. A case
with neither is ``OTHER``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

__all__ = [
    "OTHER",
    "RULE_TYPOLOGIES",
    "SCORED_TYPOLOGIES",
    "TYPOLOGIES",
    "typologies",
]

OTHER = "OTHER"

# typology -> rule codes, most specific pattern first (the first match is the primary one).
RULE_TYPOLOGIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "FACE_BLACKLIST": ("FACE_BLACKLIST_HIT", "FACE_BLACKLIST_NEAR_MISS"),
        "ACCOUNT_TAKEOVER": ("SIM_SWAP_LARGE_AMOUNT", "RECENT_SIM_SWAP"),
        "DEVICE_FARM": ("DEVICE_FARM",),
        "GREEN_LOAN_DIVERSION": ("DIVERSION_ESCALATION", "DIVERSION_ALERT"),
        "IDENTITY_FRAUD": (
            "IDENTITY_INVALID",
            "ID_CHECKSUM_INVALID",
            "ID_BIRTH_DATE_INVALID",
            "ID_AGE_MISMATCH",
        ),
        "RISKY_DEVICE": ("RISKY_DEVICE", "EMULATOR", "ROOTED_WITH_VPN", "FINGERPRINT_CHANGED"),
        # FACE_* / LIVENESS_* informational codes (FACE_NO_FACE, LIVENESS_NO_BLINK, ...) too.
        "FACE_VERIFICATION": ("LIVENESS_FAILED", "FACE_UNVERIFIED"),
        "DEGRADED_CHECK": ("FEATURES_UNAVAILABLE",),
        "FUNDING": ("FUNDING_UNAVAILABLE",),
    }
)
_FACE_PREFIXES = ("FACE_", "LIVENESS_")

# Scored evidence code -> typology, used for the largest contributor only.
SCORED_TYPOLOGIES: Mapping[str, str] = MappingProxyType(
    {
        # transaction evidence (models/fraud.py FRAUD_WEIGHTS)
        "CARD_VELOCITY": "CARD_VELOCITY",
        "AMOUNT_ANOMALY": "CARD_ANOMALY",
        "NIGHT_TIME_NEW_MERCHANT": "CARD_ANOMALY",
        "GEO_MISMATCH": "CARD_ANOMALY",
        "ONLINE_LR": "MODEL_RISK",
        "DEVICE_RISK": "RISKY_DEVICE",
        # application indicators (models/fusion.py INDICATORS, upper-cased)
        "IDENTITY_RISK": "IDENTITY_FRAUD",
        "FACE_RISK": "FACE_VERIFICATION",
        "VELOCITY_RISK": "APPLICATION_VELOCITY",
        "BP_DEFAULT_RISK": "CREDIT_RISK",
        "ONLINE_LR_RISK": "CREDIT_RISK",
        "AFFORDABILITY_RISK": "CREDIT_RISK",
        "GREEN_PURPOSE_RISK": "GREEN_ESG",
        "ESG_RISK": "GREEN_ESG",
        "BEHAVIOUR_RISK": "BEHAVIOUR",
    }
)
_SCORED_CODES = frozenset(SCORED_TYPOLOGIES)
_RULE_OF: Mapping[str, str] = MappingProxyType(
    {code: name for name, codes in RULE_TYPOLOGIES.items() for code in codes}
)

TYPOLOGIES: tuple[str, ...] = tuple(
    dict.fromkeys([*RULE_TYPOLOGIES, *SCORED_TYPOLOGIES.values(), OTHER])
)
"""Every typology name, in display order."""


def typologies(reasons: Iterable[tuple[str, float]]) -> tuple[str, ...]:
    """Typologies of a case from its ``(code, contribution)`` reasons; primary first."""
    found: set[str] = set()
    top: tuple[float, str] | None = None
    for code, contribution in reasons:
        if code in _SCORED_CODES:
            if contribution > 0 and (top is None or contribution > top[0]):
                top = (contribution, SCORED_TYPOLOGIES[code])
        elif code in _RULE_OF:
            found.add(_RULE_OF[code])
        elif code.startswith(_FACE_PREFIXES) and not code.endswith("_NOT_PROVIDED"):
            found.add("FACE_VERIFICATION")
    ordered = [name for name in RULE_TYPOLOGIES if name in found]
    if top is not None and top[1] not in found:
        ordered.append(top[1])
    return tuple(ordered) or (OTHER,)
