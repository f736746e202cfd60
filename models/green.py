"""Green-credit rules: the purpose taxonomy, CO2e estimates, pricing, ESG, integrity, funders.

Everything here is pure except :func:`load_taxonomy`, which reads the one shipped data file
(models/config/green_taxonomy.json). Money is integer minor units; rates are integer basis
points. Every CO2e factor in the data file is derived from named, sourced inputs and is
recomputed on load (models/co2e_derivation.py). A purpose whose saving cannot be shown to be
positive states a zero claim, backed by its least favourable sourced saving; a factor without
a defensible public input is null, and every function that would use one answers ``None``
instead of guessing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

import orjson

from .co2e_derivation import (
    Derivation,
    DerivationError,
    parse_derivation,
    parse_grade_derivations,
    parse_zero_claim,
)

__all__ = [
    "DEFAULT_TAXONOMY_PATH",
    "DIVERSION_ALERT",
    "DIVERSION_ESCALATION",
    "LOAN_PURPOSES",
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

DEFAULT_TAXONOMY_PATH = Path(__file__).with_name("config") / "green_taxonomy.json"

# The LoanPurpose symbols of schemas/loan_application.avsc, in schema order. Listed here so
# models/ stays free of schema I/O; tests/unit/test_green.py checks they match the schema.
LOAN_PURPOSES: Final = (
    "ELECTRIC_VEHICLE",
    "E_BIKE",
    "SOLAR_PV",
    "HEAT_PUMP",
    "ENERGY_EFFICIENT_APPLIANCE",
    "HOME_INSULATION_RETROFIT",
    "PUBLIC_TRANSPORT_PASS",
    "GREEN_BUSINESS_TRANSFORMATION",
    "CAR",
    "HOME_IMPROVEMENT",
    "EDUCATION",
    "TRAVEL",
    "ELECTRONICS",
    "DEBT_CONSOLIDATION",
    "BUSINESS",
    "OTHER",
)

_BASES = ("per_item", "per_currency_unit")
_GRADES = tuple(f"GRADE_{n}" for n in range(1, 6))  # China's label: 1 (best) .. 5
_MCC = re.compile(r"\d{4}")
# ISO 4217 minor-unit digits, only for currencies a per-currency factor may be stated in.
_MINOR_UNIT_DIGITS: Final = MappingProxyType({"CNY": 2, "EUR": 2, "USD": 2, "HKD": 2})


class GreenTaxonomyError(ValueError):
    """The taxonomy data is invalid; the message names the purpose and the problem."""


class UnknownPurpose(ValueError):
    """A purpose that is not a LoanPurpose symbol."""


# ---------------------------------------------------------------------------- taxonomy


@dataclass(frozen=True)
class Co2eFactor:
    """kg CO2e a green purchase avoids: per item over its lifetime, or per currency unit.

    When ``by_grade`` is non-empty it replaces ``kg_co2e_avoided``: the estimate then
    depends on the label grade, and an unlisted grade gets none. A stated figure always
    comes with the derivation it was recomputed from (``derivation`` or, per grade,
    ``grade_derivations``).
    """

    basis: str
    kg_co2e_avoided: float | None
    lifetime_years: float | None
    assumptions: str
    source: str
    currency: str | None = None
    by_grade: Mapping[str, float | None] = field(default_factory=dict)
    note: str = ""
    derivation: Derivation | None = None
    grade_derivations: Mapping[str, Derivation] = field(default_factory=dict)


@dataclass(frozen=True)
class PurposeRule:
    """What the taxonomy says about one loan purpose."""

    purpose: str
    green: bool
    category: str
    co2e: Co2eFactor | None
    mccs: frozenset[str]


@dataclass(frozen=True)
class GreenTaxonomy:
    """Validated rules for every LoanPurpose; build with :func:`load_taxonomy`."""

    rules: Mapping[str, PurposeRule]
    version: int = 1

    def purpose(self, name: str) -> PurposeRule:
        """The rule for ``name``; UnknownPurpose when it is not a LoanPurpose symbol."""
        rule = self.rules.get(name)
        if rule is None:
            raise UnknownPurpose(
                f"unknown loan purpose {name!r}: expected one of {', '.join(LOAN_PURPOSES)}"
            )
        return rule

    def is_green(self, name: str) -> bool:
        """Whether ``name`` is a green purpose."""
        return self.purpose(name).green


def _number(value: Any, where: str, *, allow_none: bool = True) -> float | None:
    """A finite non-negative number (not a bool), or None when allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GreenTaxonomyError(f"{where}: must be a finite number, got {value!r}")
    if value < 0:
        raise GreenTaxonomyError(f"{where}: must not be negative, got {value!r}")
    return float(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GreenTaxonomyError(f"{where}: must be a non-empty string, got {value!r}")
    return value


def _derivations(
    raw: Any, where: str, sources: Mapping[str, str], kg: float | None, by_grade: dict[str, Any]
) -> tuple[Derivation | None, dict[str, Derivation]]:
    """Parse the derivation and check every stated figure equals what it recomputes to."""
    stated = [kg, *by_grade.values()]
    if raw is None:
        if any(v is not None for v in stated):
            raise GreenTaxonomyError(f"{where}: a stated factor needs a derivation from sources")
        return None, {}
    try:
        if isinstance(raw, Mapping) and "zero_because" in raw:
            if by_grade or kg != 0:
                raise GreenTaxonomyError(
                    f"{where}: a zero claim states kg_co2e_avoided 0 and no by_grade, got {kg!r}"
                )
            return parse_zero_claim(raw, where, sources), {}
        if not by_grade:
            derivation = parse_derivation(raw, where, sources)
            if kg != derivation.value():
                raise GreenTaxonomyError(
                    f"{where}: kg_co2e_avoided {kg!r} but its inputs give {derivation.value()!r}"
                )
            return derivation, {}
        base = parse_derivation(raw, where, sources, per_grade=True)
        grades = parse_grade_derivations(raw.get("per_grade"), base, f"{where}.per_grade", sources)
    except DerivationError as exc:
        raise GreenTaxonomyError(str(exc)) from exc
    if set(grades) != {g for g, v in by_grade.items() if v is not None} or kg is not None:
        raise GreenTaxonomyError(
            f"{where}: per_grade must derive exactly the non-null by_grade grades, "
            "and kg_co2e_avoided must be null"
        )
    for grade, derivation in grades.items():
        if by_grade[grade] != derivation.value():
            raise GreenTaxonomyError(
                f"{where}.by_grade.{grade}: {by_grade[grade]!r} but its inputs give "
                f"{derivation.value()!r}"
            )
    return None, grades


def _co2e(raw: Any, where: str, sources: Mapping[str, str]) -> Co2eFactor:
    if not isinstance(raw, Mapping):
        raise GreenTaxonomyError(f"{where}: a green purpose needs a co2e object, got {raw!r}")
    basis = raw.get("basis")
    if basis not in _BASES:
        raise GreenTaxonomyError(f"{where}.basis: must be one of {_BASES}, got {basis!r}")
    kg = _number(raw.get("kg_co2e_avoided"), f"{where}.kg_co2e_avoided")
    lifetime = _number(raw.get("lifetime_years"), f"{where}.lifetime_years")
    by_grade_raw = raw.get("by_grade", {})
    if not isinstance(by_grade_raw, Mapping):
        raise GreenTaxonomyError(f"{where}.by_grade: must be an object, got {by_grade_raw!r}")
    by_grade = {}
    for grade, value in by_grade_raw.items():
        if grade not in _GRADES:
            raise GreenTaxonomyError(f"{where}.by_grade: unknown grade {grade!r}")
        by_grade[grade] = _number(value, f"{where}.by_grade.{grade}")
    currency = raw.get("currency")
    if basis == "per_currency_unit" and currency not in _MINOR_UNIT_DIGITS:
        raise GreenTaxonomyError(
            f"{where}.currency: a per_currency_unit factor needs one of "
            f"{sorted(_MINOR_UNIT_DIGITS)}, got {currency!r}"
        )
    note = raw.get("note", "")
    if kg is None and all(v is None for v in by_grade.values()):
        note = _text(note, f"{where}.note (required when every factor is null)")
    derivation, grade_derivations = _derivations(
        raw.get("derivation"), f"{where}.derivation", sources, kg, by_grade
    )
    return Co2eFactor(
        basis=basis,
        kg_co2e_avoided=kg,
        lifetime_years=lifetime,
        assumptions=_text(raw.get("assumptions"), f"{where}.assumptions"),
        source=_text(raw.get("source"), f"{where}.source"),
        currency=currency,
        by_grade=MappingProxyType(by_grade),
        note=note,
        derivation=derivation,
        grade_derivations=MappingProxyType(grade_derivations),
    )


def _rule(name: str, raw: Any, sources: Mapping[str, str]) -> PurposeRule:
    where = f"purpose {name}"
    if not isinstance(raw, Mapping):
        raise GreenTaxonomyError(f"{where}: must be an object, got {raw!r}")
    green = raw.get("green")
    if not isinstance(green, bool):
        raise GreenTaxonomyError(f"{where}.green: must be true or false, got {green!r}")
    mccs = raw.get("mccs")
    if not isinstance(mccs, list):
        raise GreenTaxonomyError(f"{where}.mccs: must be a list, got {mccs!r}")
    for mcc in mccs:
        if not isinstance(mcc, str) or not _MCC.fullmatch(mcc):
            raise GreenTaxonomyError(f"{where}.mccs: {mcc!r} is not a 4-digit MCC string")
    if green and not mccs:
        raise GreenTaxonomyError(f"{where}.mccs: a green purpose needs fitting MCCs")
    if green:
        co2e: Co2eFactor | None = _co2e(raw.get("co2e"), f"{where}.co2e", sources)
    elif raw.get("co2e") is not None:
        raise GreenTaxonomyError(f"{where}.co2e: a non-green purpose must have co2e null")
    else:
        co2e = None
    category = _text(raw.get("category"), f"{where}.category")
    return PurposeRule(name, green, category, co2e, frozenset(mccs))


def taxonomy_from_dict(raw: Mapping[str, Any]) -> GreenTaxonomy:
    """Validate the parsed JSON document and build the taxonomy (errors name the purpose)."""
    purposes = raw.get("purposes")
    if not isinstance(purposes, Mapping):
        raise GreenTaxonomyError("taxonomy: 'purposes' must be an object keyed by LoanPurpose")
    unknown = sorted(set(purposes) - set(LOAN_PURPOSES))
    if unknown:
        raise GreenTaxonomyError(f"taxonomy: unknown purpose(s) {', '.join(unknown)}")
    missing = [p for p in LOAN_PURPOSES if p not in purposes]
    if missing:
        raise GreenTaxonomyError(f"taxonomy: missing purpose(s) {', '.join(missing)}")
    version = raw.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise GreenTaxonomyError(f"taxonomy: version must be a positive integer, got {version!r}")
    sources = _sources(raw.get("_sources", {}))
    rules = {name: _rule(name, purposes[name], sources) for name in LOAN_PURPOSES}
    return GreenTaxonomy(MappingProxyType(rules), version)


def _sources(raw: Any) -> dict[str, str]:
    """The ``_sources`` table: key -> full citation; derivation inputs may only cite its keys."""
    if not isinstance(raw, Mapping):
        raise GreenTaxonomyError(f"taxonomy: _sources must be an object, got {raw!r}")
    for key, citation in raw.items():
        _text(citation, f"taxonomy: _sources.{key}")
    return dict(raw)


def load_taxonomy(path: Path | str | None = None) -> GreenTaxonomy:
    """Read and validate a taxonomy file (the shipped one by default)."""
    source = Path(path) if path is not None else DEFAULT_TAXONOMY_PATH
    return taxonomy_from_dict(orjson.loads(source.read_bytes()))


@lru_cache(maxsize=1)
def default_taxonomy() -> GreenTaxonomy:
    """The shipped taxonomy, read once per process (it is immutable)."""
    return load_taxonomy()


# ---------------------------------------------------------------------------- CO2e


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
    major_units = Fraction(amount_minor, 10 ** _MINOR_UNIT_DIGITS[currency])
    return float(major_units * Fraction(kg))


# ---------------------------------------------------------------------------- pricing

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


# ---------------------------------------------------------------------------- ESG

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


# ---------------------------------------------------------------------------- integrity

DIVERSION_ALERT: Final = "DIVERSION_ALERT"
DIVERSION_ESCALATION: Final = "DIVERSION_ESCALATION"
Finding = Literal["DIVERSION_ALERT", "DIVERSION_ESCALATION"]


@dataclass(frozen=True)
class IntegrityState:
    """Spend of one loan's money so far, split by whether the merchant fits the purpose."""

    loan_id: str
    purpose: str
    principal_minor: int
    spent_fitting_minor: int = 0
    spent_other_minor: int = 0
    alerted: bool = False
    escalated: bool = False

    def __post_init__(self) -> None:
        """A loan has a positive principal and a purpose; spend counters are never negative."""
        if isinstance(self.principal_minor, bool) or self.principal_minor <= 0:
            raise ValueError(f"loan {self.loan_id!r}: principal_minor must be positive")
        if self.spent_fitting_minor < 0 or self.spent_other_minor < 0:
            raise ValueError(f"loan {self.loan_id!r}: spend counters must not be negative")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> IntegrityState:
        """Inverse of :meth:`to_dict`."""
        return cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})


def observe_spend(
    state: IntegrityState,
    mcc: str,
    amount_minor: int,
    taxonomy: GreenTaxonomy,
    tolerance: float = 0.2,
    persistence: float = 0.5,
) -> tuple[IntegrityState, Finding | None]:
    """Add one transaction to the loan's spend; report a diversion the first time it shows.

    DIVERSION_ALERT once non-fitting spend exceeds ``tolerance`` x principal,
    DIVERSION_ESCALATION once it exceeds ``persistence`` x principal (one step crossing
    both reports the escalation). Refunds (negative amounts) reduce spend, never below
    zero, and do not re-arm a finding already reported. Non-green loans are not tracked.
    """
    if not _MCC.fullmatch(mcc):
        raise ValueError(f"mcc must be 4 digits, got {mcc!r}")
    if not 0 <= tolerance <= persistence:
        raise ValueError(f"need 0 <= tolerance <= persistence, got {tolerance}, {persistence}")
    rule = taxonomy.purpose(state.purpose)
    if not rule.green:
        return state, None
    if mcc in rule.mccs:
        state = replace(state, spent_fitting_minor=max(state.spent_fitting_minor + amount_minor, 0))
        return state, None
    other = max(state.spent_other_minor + amount_minor, 0)
    state = replace(state, spent_other_minor=other)
    share = Fraction(other, state.principal_minor)
    if not state.escalated and share > Fraction(str(persistence)):
        return replace(state, alerted=True, escalated=True), DIVERSION_ESCALATION
    if not state.alerted and share > Fraction(str(tolerance)):
        return replace(state, alerted=True), DIVERSION_ALERT
    return state, None


# ---------------------------------------------------------------------------- funders


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


# ---------------------------------------------------------------------------- portfolio


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
