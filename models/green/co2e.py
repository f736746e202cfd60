"""CO2e a financed green purchase avoids, from the taxonomy's sourced factors."""

from __future__ import annotations

import re
from fractions import Fraction

from .taxonomy import MINOR_UNIT_DIGITS, GreenTaxonomy

__all__ = ["co2e_avoided_kg"]


def _normalise_grade(grade: str) -> str:
    """'grade 1', 'GRADE-1', '1' -> 'GRADE_1'; anything else (e.g. 'A+++') unchanged."""
    text = re.sub(r"[\s\-]+", "_", grade.strip().upper())
    return f"GRADE_{text}" if text.isdigit() else text


def co2e_avoided_kg(
    taxonomy: GreenTaxonomy,
    purpose: str,
    amount_minor: int,
    currency: str,
    grade: str | None = None,
) -> float | None:
    """Estimated kg CO2e the financed purchase avoids, or None when there is no honest figure.

    None for non-green purposes, null factors, and graded factors whose grade is missing or
    not listed. A per-item factor counts one item per loan. A per-currency-unit factor applies
    only in the currency its source states: there is no documented conversion, and an
    exchange rate would change the estimate with the market rather than with the purchase.
    """
    if amount_minor < 0:
        raise ValueError(f"amount_minor must not be negative, got {amount_minor}")
    rule = taxonomy.purpose(purpose)
    factor = rule.co2e
    if not rule.green or factor is None:
        return None
    if factor.by_grade:
        kg = None if grade is None else factor.by_grade.get(_normalise_grade(grade))
    else:
        kg = factor.kg_co2e_avoided
    if kg is None:
        return None
    if factor.basis == "per_item":
        return kg
    if currency != factor.currency:
        return None
    major_units = Fraction(amount_minor, 10 ** MINOR_UNIT_DIGITS[currency])
    return float(major_units * Fraction(kg))
