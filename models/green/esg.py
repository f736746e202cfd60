"""ESG risk of a business applicant's environmental declaration."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "CERTIFICATION_CREDIT",
    "ENERGY_INTENSITY_FULL_RISK_KWH_PER_10K",
    "NEUTRAL_ESG_RISK",
    "RECOGNISED_CERTIFICATIONS",
    "VIOLATION_PENALTY",
    "EsgDeclaration",
    "esg_declaration",
    "esg_risk",
]

# Policy scales, not published benchmarks: a lender should calibrate them per sector.
# Energy intensity at or above this many kWh per 10,000 units of revenue counts as full risk.
ENERGY_INTENSITY_FULL_RISK_KWH_PER_10K: Final = 5_000.0
# With only certifications or violations declared there is no measurement to start from;
# start in the middle so the declaration alone neither rewards nor punishes.
NEUTRAL_ESG_RISK: Final = 0.5
# Each recognised certification is evidence of a managed process, worth a tenth of the scale.
CERTIFICATION_CREDIT: Final = 0.1
# A violation is a fact, not a claim: it weighs more than a certificate.
VIOLATION_PENALTY: Final = 0.15
RECOGNISED_CERTIFICATIONS: Final = frozenset({"ISO14001", "ISO50001", "CHINAGREENFACTORY"})


@dataclass(frozen=True)
class EsgDeclaration:
    """What a business applicant declares about its environmental performance."""

    energy_intensity_kwh_per_10k_revenue: float | None = None
    renewable_share: float | None = None
    certifications: tuple[str, ...] = ()
    environmental_violations_3y: int | None = None

    def __post_init__(self) -> None:
        """Reject values outside their meaning (negative energy, shares above one)."""
        intensity = self.energy_intensity_kwh_per_10k_revenue
        if intensity is not None and not (math.isfinite(intensity) and intensity >= 0):
            raise ValueError(f"energy intensity must be >= 0, got {intensity!r}")
        share = self.renewable_share
        if share is not None and not (math.isfinite(share) and 0 <= share <= 1):
            raise ValueError(f"renewable_share must be in [0, 1], got {share!r}")
        violations = self.environmental_violations_3y
        if violations is not None and (isinstance(violations, bool) or violations < 0):
            raise ValueError(f"environmental_violations_3y must be >= 0, got {violations!r}")


def esg_declaration(declared: Mapping[str, Any]) -> EsgDeclaration:
    """The declaration as an application's `esg` record carries it (validated on build)."""
    return EsgDeclaration(
        energy_intensity_kwh_per_10k_revenue=declared.get("energy_intensity_kwh_per_10k_revenue"),
        renewable_share=declared.get("renewable_share"),
        certifications=tuple(declared.get("certifications") or ()),
        environmental_violations_3y=declared.get("environmental_violations_3y"),
    )


def _certification_key(name: str) -> str:
    return re.sub(r"[\s\-_]+", "", name.upper())


def esg_risk(declaration: EsgDeclaration) -> float | None:
    """ESG risk in [0, 1] (higher is worse), or None when nothing was declared.

    Start from the mean of the measured parts (intensity scaled to the full-risk level;
    1 - renewable share), else neutral; subtract a credit per distinct recognised
    certification and add a penalty per violation. Monotone in each input.
    """
    measured = []
    if declaration.energy_intensity_kwh_per_10k_revenue is not None:
        intensity = declaration.energy_intensity_kwh_per_10k_revenue
        measured.append(min(intensity / ENERGY_INTENSITY_FULL_RISK_KWH_PER_10K, 1.0))
    if declaration.renewable_share is not None:
        measured.append(1.0 - declaration.renewable_share)
    certified = {_certification_key(c) for c in declaration.certifications}
    credits = len(certified & RECOGNISED_CERTIFICATIONS)
    violations = declaration.environmental_violations_3y
    if not measured and not declaration.certifications and violations is None:
        return None
    risk = sum(measured) / len(measured) if measured else NEUTRAL_ESG_RISK
    risk += VIOLATION_PENALTY * (violations or 0) - CERTIFICATION_CREDIT * credits
    return min(max(risk, 0.0), 1.0)
