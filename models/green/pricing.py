"""A lender's preferential pricing of green loans: rates, discounts, approval bonus."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final

from .taxonomy import GreenTaxonomy

__all__ = [
    "REFER_BAND_MARGIN",
    "GreenPricing",
    "GreenPricingError",
    "approve_below_for",
    "price",
]

# A green bonus may raise the approval threshold up to this far below the decline
# threshold, never to it: the refer band (manual review) must stay non-empty.
REFER_BAND_MARGIN: Final = 0.01


class GreenPricingError(ValueError):
    """A lender's green pricing that must not be applied; the message names the field."""


@dataclass(frozen=True)
class GreenPricing:
    """A lender's preferential pricing for green loans (integer basis points)."""

    base_rate_bps: int = 600
    risk_premium_bps_at_full_risk: int = 1200
    green_discount_bps: int = 50
    discount_by_category: Mapping[str, int] = field(default_factory=dict)
    green_approve_below_bonus: float = 0.05
    max_discount_bps: int = 200

    def __post_init__(self) -> None:
        """Validate every field; freeze the per-category discounts."""
        for name in ("base_rate_bps", "risk_premium_bps_at_full_risk", "green_discount_bps"):
            _check_bps(getattr(self, name), name)
        _check_bps(self.max_discount_bps, "max_discount_bps")
        if not isinstance(self.discount_by_category, Mapping):
            raise GreenPricingError("discount_by_category must be a mapping of category to bps")
        for category, bps in self.discount_by_category.items():
            if not isinstance(category, str) or not category:
                raise GreenPricingError(f"discount_by_category: bad category {category!r}")
            _check_bps(bps, f"discount_by_category[{category!r}]")
        bonus = self.green_approve_below_bonus
        if isinstance(bonus, bool) or not isinstance(bonus, int | float) or not 0 <= bonus <= 1:
            raise GreenPricingError(f"green_approve_below_bonus must be in [0, 1], got {bonus!r}")
        object.__setattr__(
            self, "discount_by_category", MappingProxyType(dict(self.discount_by_category))
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "discount_by_category": dict(self.discount_by_category)
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> GreenPricing:
        """Build from :meth:`to_dict` output; unknown keys are rejected, missing take defaults."""
        unknown = sorted(set(raw) - {f.name for f in fields(cls)})
        if unknown:
            raise GreenPricingError(f"unknown green pricing field(s): {', '.join(unknown)}")
        return cls(**raw)


def _check_bps(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise GreenPricingError(f"{name} must be a non-negative integer (bps), got {value!r}")


def price(
    policy: GreenPricing, score: float, purpose: str, taxonomy: GreenTaxonomy
) -> tuple[int, int]:
    """(annual_rate_bps, rate_discount_bps): base + premium x score, minus any green discount.

    The discount is the category's own (else the lender's default), capped at
    ``max_discount_bps`` and at the gross rate, so the rate is never negative.
    """
    if not math.isfinite(score):
        raise ValueError(f"score must be a finite number, got {score!r}")
    rule = taxonomy.purpose(purpose)
    gross = policy.base_rate_bps + round(
        policy.risk_premium_bps_at_full_risk * min(max(score, 0.0), 1.0)
    )
    discount = 0
    if rule.green:
        wanted = policy.discount_by_category.get(rule.category, policy.green_discount_bps)
        discount = min(wanted, policy.max_discount_bps, gross)
    return gross - discount, discount


def approve_below_for(
    policy: GreenPricing,
    base_approve_below: float,
    purpose: str,
    taxonomy: GreenTaxonomy,
    *,
    decline_at_or_above: float,
) -> float:
    """The approval threshold for this purpose: raised by the green bonus for green loans.

    Capped at ``decline_at_or_above - REFER_BAND_MARGIN`` so borderline green loans still
    reach review; never lowered below the lender's own threshold.
    """
    if not taxonomy.purpose(purpose).green:
        return base_approve_below
    cap = decline_at_or_above - REFER_BAND_MARGIN
    return max(base_approve_below, min(base_approve_below + policy.green_approve_below_bonus, cap))
