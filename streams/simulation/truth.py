"""Ground truth of the planted typologies, and how well the engine's outputs found them.

Detection is scored per *case* (a fraud ring, an identity thief, a loan): a case is found when
the engine flagged at least one of its subjects with the typology's own signal; a flag on a
subject of no case of that typology is a false positive. Fraud operations work cases, not
single events, so this is the unit that matters; the event-level figures are reported too so
nobody has to take the case-level ones on trust.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TYPOLOGIES", "GroundTruth", "detection_report"]

TYPOLOGIES = (
    "device_farm",
    "identity_theft",
    "velocity_burst",
    "synthetic_identity",
    "account_takeover",
    "green_fund_diversion",
    "first_payment_default",
    "gradual_delinquency_cure",
    "guarantor_default",
)


@dataclass
class GroundTruth:
    """typology -> case id -> subject ids (application ids, transaction event ids, loan ids)."""

    cases: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: {name: {} for name in TYPOLOGIES}
    )

    def add(self, typology: str, case: str, subject: str) -> None:
        """Record that `subject` belongs to `case` of `typology`."""
        if typology not in self.cases:
            raise ValueError(f"unknown typology {typology!r}")
        self.cases[typology].setdefault(case, set()).add(subject)

    def subjects(self, typology: str) -> set[str]:
        """Every subject of every case of `typology`."""
        return set().union(*self.cases[typology].values()) if self.cases[typology] else set()

    def bad_subjects(self) -> set[str]:
        """Every subject of any fraud typology (what analysts would confirm as fraud)."""
        fraud = TYPOLOGIES[:6]
        return set().union(*(self.subjects(t) for t in fraud))

    def counts(self) -> dict[str, dict[str, int]]:
        """Cases and subjects per typology, for the summary."""
        return {
            name: {"cases": len(cases), "subjects": len(self.subjects(name))}
            for name, cases in self.cases.items()
        }


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def detection_report(
    truth: GroundTruth, flagged: Mapping[str, Iterable[str]]
) -> dict[str, dict[str, Any]]:
    """Precision and recall per typology from the subjects the engine flagged for it.

    A flagged subject that belongs to no case of the typology counts against precision; a case
    with none of its subjects flagged counts against recall. None means "nothing to measure"
    (no case planted, or nothing flagged), never a silent 0 or 1.
    """
    report: dict[str, dict[str, Any]] = {}
    for name in TYPOLOGIES:
        marked = set(flagged.get(name, ()))
        case_of: dict[str, str] = {}
        for case, subjects in truth.cases[name].items():
            for subject in subjects:
                case_of[subject] = case
        true_hits = marked & case_of.keys()
        found_cases = {case_of[s] for s in true_hits}
        false_hits = marked - case_of.keys()
        # A false positive is its own "case" (one subject each) for case-level precision.
        report[name] = {
            "cases": len(truth.cases[name]),
            "cases_found": len(found_cases),
            "false_positives": len(false_hits),
            "precision": _ratio(len(found_cases), len(found_cases) + len(false_hits)),
            "recall": _ratio(len(found_cases), len(truth.cases[name])),
            "event_precision": _ratio(len(true_hits), len(marked)),
            "event_recall": _ratio(len(true_hits), len(case_of)),
        }
    return report
