"""Simulated fraud analysts and loan servicing: labels from the ground truth.

Analysts work a share of the review cases and fraud alerts each day and label them from the
ground truth, as a careful team would; servicing reports each honest borrower's first
instalment as REPAID or DEFAULTED once its grace period is over. Both go to the feedback
topic, which is the only place the online models learn from.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from greencredit.streams.simulation.events import envelope, utc
from greencredit.streams.simulation.population import RepaymentHabit
from greencredit.streams.simulation.scenario import GRACE_DAYS, Scenario

__all__ = ["Analysts"]

FEEDBACK = "greencredit.analyst-feedback"


class Analysts:
    """Decides which cases get labelled and with what; remembers what it already labelled."""

    def __init__(self, scenario: Scenario, share: float = 0.7, seed: int = 11) -> None:
        self.scenario = scenario
        self.share = share
        self.rng = random.Random(seed)  # noqa: S311 - simulation
        self.done: set[str] = set()
        self.bad = scenario.truth.bad_subjects  # callable: truth grows as loans open

    def _label(
        self, day: int, subject: str, kind: str, label: str, tenant: str, case: str
    ) -> tuple[str, dict[str, Any]]:
        self.done.add(subject)
        at = utc(self.scenario.date_of(day), 10)
        return FEEDBACK, {
            **envelope(self.scenario.run, tenant, "feedback", subject, at),
            "subject_event_id": subject,
            "subject_type": kind,
            "label": label,
            "analyst_id": "analyst-sim",
            "case_id": case,
        }

    def review(
        self, day: int, decisions: list[dict[str, Any]], alerts: list[dict[str, Any]]
    ) -> list[tuple[str, dict[str, Any]]]:
        """Labels for a share of the open review cases and alerts not labelled yet."""
        bad = self.bad()
        out = []
        for d in decisions:
            subject = d["application_event_id"]
            if d["decision"] != "REVIEW" or subject in self.done or self.rng.random() > self.share:
                continue
            label = "FRAUD" if d["application_id"] in bad else "NOT_FRAUD"
            out.append(
                self._label(
                    day,
                    subject,
                    "APPLICATION",
                    label,
                    d["tenant_id"],
                    f"review-{d['application_id']}",
                )
            )
        for a in alerts:
            subject = a["source_event_id"]
            if (
                a["source"] != "TRANSACTION"
                or subject in self.done
                or self.rng.random() > self.share
            ):
                continue
            label = "FRAUD" if subject in bad else "NOT_FRAUD"
            out.append(
                self._label(day, subject, "TRANSACTION", label, a["tenant_id"], a["alert_id"])
            )
        return out

    def outcomes(
        self, day: int, decisions: dict[str, dict[str, Any]], loans: dict[str, dict[str, Any]]
    ) -> list[tuple[str, dict[str, Any]]]:
        """REPAID / DEFAULTED for honest borrowers whose first instalment's grace has passed."""
        today = self.scenario.date_of(day)
        by_app = {d["application_id"]: d for d in decisions.values()}
        out = []
        for loan in loans.values():
            decision = by_app.get(loan["application_id"])
            customer = self.scenario.customer(loan["customer_id"])
            if (
                decision is None
                or customer is None
                or decision["application_event_id"] in self.done
            ):
                continue
            if loan["schedule"][0]["due_date"] + timedelta(days=GRACE_DAYS + 1) > today:
                continue
            label = (
                "DEFAULTED" if customer.habit == RepaymentHabit.FIRST_PAYMENT_DEFAULT else "REPAID"
            )
            out.append(
                self._label(
                    day,
                    decision["application_event_id"],
                    "APPLICATION",
                    label,
                    loan["tenant_id"],
                    f"loan-{loan['loan_id']}",
                )
            )
        return out
