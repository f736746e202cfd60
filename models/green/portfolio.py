"""Portfolio totals of disbursements per lender: loans, principal, green share, CO2e."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .taxonomy import GreenTaxonomy, default_taxonomy

__all__ = ["portfolio_totals"]


def _empty_totals() -> dict[str, Any]:
    return {"loans": 0, "principal_minor": 0, "co2e_avoided_kg": 0.0}


def portfolio_totals(
    disbursements: Iterable[Mapping[str, Any]], *, taxonomy: GreenTaxonomy | None = None
) -> dict[str, dict[str, Any]]:
    """Per tenant: loans, green loans, principal, green principal, CO2e, and per purpose.

    Records are disbursement events (tenant_id, amount_minor, currency, purpose,
    co2e_avoided_kg); green-ness comes from the taxonomy (the shipped one by default).
    Null CO2e estimates are skipped, not counted as zero evidence. A tenant whose records
    mix currencies is refused: minor units of different currencies do not add up.
    """
    taxonomy = taxonomy or default_taxonomy()
    totals: dict[str, dict[str, Any]] = {}
    for record in disbursements:
        tenant = record["tenant_id"]
        amount = record["amount_minor"]
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValueError(f"tenant {tenant!r}: amount_minor must be an integer, got {amount!r}")
        purpose = record["purpose"]
        green = taxonomy.is_green(purpose)
        tenant_totals = totals.setdefault(
            tenant,
            _empty_totals() | {"green_loans": 0, "green_principal_minor": 0, "by_purpose": {}},
        )
        currency = record.get("currency")
        if tenant_totals.setdefault("currency", currency) != currency:
            raise ValueError(f"tenant {tenant!r}: disbursements mix currencies")
        by_purpose = tenant_totals["by_purpose"].setdefault(purpose, _empty_totals())
        co2e = record.get("co2e_avoided_kg")
        for bucket in (tenant_totals, by_purpose):
            bucket["loans"] += 1
            bucket["principal_minor"] += amount
            bucket["co2e_avoided_kg"] += co2e or 0.0
        if green:
            tenant_totals["green_loans"] += 1
            tenant_totals["green_principal_minor"] += amount
    return totals
