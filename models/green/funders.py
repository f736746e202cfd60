"""Funding partners' mandates and the choice of the funder that takes a loan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from .taxonomy import GreenTaxonomy

__all__ = ["Funder", "route_to_funder"]


@dataclass(frozen=True)
class Funder:
    """A funding partner's mandate: green-only or not, capacity, risk appetite, categories."""

    funder_id: str
    green_only: bool
    capacity_minor: int
    max_risk_score: float
    categories: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        """Reject mandates that cannot mean anything (no id, negative capacity)."""
        if not isinstance(self.funder_id, str) or not self.funder_id:
            raise ValueError(f"funder_id must be a non-empty string, got {self.funder_id!r}")
        if isinstance(self.capacity_minor, bool) or self.capacity_minor < 0:
            raise ValueError(f"funder {self.funder_id!r}: capacity_minor must be >= 0")
        if not 0 <= self.max_risk_score <= 1:
            raise ValueError(f"funder {self.funder_id!r}: max_risk_score must be in [0, 1]")


def route_to_funder(
    funders: Sequence[Funder],
    used_minor: Mapping[str, int],
    amount_minor: int,
    score: float,
    purpose: str,
    taxonomy: GreenTaxonomy,
) -> str | None:
    """The funder that takes this loan, or None (the caller sends the application to review).

    Eligible: the mandate fits (green-only funders take green purposes only; a category list
    must name the purpose's category), ``score <= max_risk_score``, and remaining capacity
    covers the amount. Among those, green-only funders come first for green loans, then the
    largest remaining share of capacity, then funder_id: deterministic for the same inputs.
    """
    if amount_minor <= 0:
        raise ValueError(f"amount_minor must be positive, got {amount_minor}")
    ids = [f.funder_id for f in funders]
    if len(set(ids)) != len(ids):
        raise ValueError("funder ids must be unique")
    rule = taxonomy.purpose(purpose)
    ranked = []
    for funder in funders:
        remaining = funder.capacity_minor - used_minor.get(funder.funder_id, 0)
        fits = not funder.green_only or rule.green
        fits = fits and (funder.categories is None or rule.category in funder.categories)
        fits = fits and funder.capacity_minor > 0  # capacity 0: a paused funder
        if fits and score <= funder.max_risk_score and remaining >= amount_minor:
            mandate_rank = 0 if (rule.green and funder.green_only) else 1
            share = Fraction(remaining, funder.capacity_minor)
            ranked.append((mandate_rank, -share, funder.funder_id))
    return min(ranked)[2] if ranked else None
