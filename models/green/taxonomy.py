"""The green taxonomy: which purposes are green, their category, MCCs and CO2e factors.

Everything here is pure except :func:`load_taxonomy`, which reads the one shipped data file
(models/config/green_taxonomy.json). Every CO2e factor in the data file is derived from
named, sourced inputs and is recomputed on load (models/co2e_derivation.py). A purpose whose
saving cannot be shown to be positive states a zero claim, backed by its least favourable
sourced saving; a factor without a defensible public input is null.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import orjson

from ..co2e_derivation import (
    Derivation,
    DerivationError,
    parse_derivation,
    parse_grade_derivations,
    parse_zero_claim,
)

__all__ = [
    "DEFAULT_TAXONOMY_PATH",
    "LOAN_PURPOSES",
    "MCC_PATTERN",
    "MINOR_UNIT_DIGITS",
    "Co2eFactor",
    "GreenTaxonomy",
    "GreenTaxonomyError",
    "PurposeRule",
    "UnknownPurpose",
    "default_taxonomy",
    "load_taxonomy",
    "taxonomy_from_dict",
]

DEFAULT_TAXONOMY_PATH = Path(__file__).parent.parent / "config" / "green_taxonomy.json"

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
MCC_PATTERN = re.compile(r"\d{4}")
# ISO 4217 minor-unit digits, only for currencies a per-currency factor may be stated in.
MINOR_UNIT_DIGITS: Final = MappingProxyType({"CNY": 2, "EUR": 2, "USD": 2, "HKD": 2})


class GreenTaxonomyError(ValueError):
    """The taxonomy data is invalid; the message names the purpose and the problem."""


class UnknownPurpose(ValueError):
    """A purpose that is not a LoanPurpose symbol."""


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
    _check_graded(grades, where, kg, by_grade)
    return None, grades


def _check_graded(
    grades: Mapping[str, Derivation], where: str, kg: float | None, by_grade: dict[str, Any]
) -> None:
    """Every non-null graded figure is derived, and equals what its inputs give."""
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
    if basis == "per_currency_unit" and currency not in MINOR_UNIT_DIGITS:
        raise GreenTaxonomyError(
            f"{where}.currency: a per_currency_unit factor needs one of "
            f"{sorted(MINOR_UNIT_DIGITS)}, got {currency!r}"
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
        if not isinstance(mcc, str) or not MCC_PATTERN.fullmatch(mcc):
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
