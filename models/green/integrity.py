"""Use-of-funds integrity: is a green loan's money spent at merchants fitting its purpose."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from fractions import Fraction
from typing import Any, Final, Literal

from .taxonomy import MCC_PATTERN, GreenTaxonomy

__all__ = ["DIVERSION_ALERT", "DIVERSION_ESCALATION", "Finding", "IntegrityState", "observe_spend"]

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
        """JSON-able form (asdict's, without its deep copy of fields that are all scalars)."""
        return {name: getattr(self, name) for name in _INTEGRITY_FIELDS}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> IntegrityState:
        """Inverse of :meth:`to_dict`."""
        return cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})


# Every green disbursement stores its watch: asdict's recursive copy cost most of that.
_INTEGRITY_FIELDS = tuple(f.name for f in fields(IntegrityState))


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
    if not MCC_PATTERN.fullmatch(mcc):
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
