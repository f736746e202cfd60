"""Green-credit rules, one module per concern; this package re-exports their public names.

- taxonomy: which purposes are green, their categories, MCCs and sourced CO2e factors
- co2e: kg CO2e a financed purchase avoids
- pricing: preferential rates and the green approval bonus
- esg: risk of a business applicant's environmental declaration
- integrity: whether a green loan's money is spent on its purpose
- funders: funding partners' mandates and the funder that takes a loan
- portfolio: per-lender totals of disbursements

Money is integer minor units; rates are integer basis points. A factor without a defensible
public input is null, and every function that would use one answers ``None``.
"""

from __future__ import annotations

from .co2e import co2e_avoided_kg
from .esg import EsgDeclaration, esg_declaration, esg_risk
from .funders import Funder, route_to_funder
from .integrity import DIVERSION_ALERT, DIVERSION_ESCALATION, IntegrityState, observe_spend
from .portfolio import portfolio_totals
from .pricing import (
    REFER_BAND_MARGIN,
    GreenPricing,
    GreenPricingError,
    approve_below_for,
    price,
)
from .taxonomy import (
    DEFAULT_TAXONOMY_PATH,
    LOAN_PURPOSES,
    Co2eFactor,
    GreenTaxonomy,
    GreenTaxonomyError,
    PurposeRule,
    UnknownPurpose,
    default_taxonomy,
    load_taxonomy,
    taxonomy_from_dict,
)

__all__ = [
    "DEFAULT_TAXONOMY_PATH",
    "DIVERSION_ALERT",
    "DIVERSION_ESCALATION",
    "LOAN_PURPOSES",
    "REFER_BAND_MARGIN",
    "Co2eFactor",
    "EsgDeclaration",
    "Funder",
    "GreenPricing",
    "GreenPricingError",
    "GreenTaxonomy",
    "GreenTaxonomyError",
    "IntegrityState",
    "PurposeRule",
    "UnknownPurpose",
    "approve_below_for",
    "co2e_avoided_kg",
    "default_taxonomy",
    "esg_declaration",
    "esg_risk",
    "load_taxonomy",
    "observe_spend",
    "portfolio_totals",
    "price",
    "route_to_funder",
    "taxonomy_from_dict",
]
