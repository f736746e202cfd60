"""Semantic checks of a decoded loan application: what the Avro schema cannot say.

The schema fixes types; these rules fix the ranges and shapes the engine can act on. An
application that breaks one is dead-lettered with the rule as its reason (naming the
field, never its value) instead of failing its whole batch or being scored on nonsense:
a negative amount, a 92-quadrillion loan, an event dated in year 9999, an ID number with
an invisible character that would give one person a second pseudonym and dodge the
velocity checks.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .bp_features import application_to_bp_features
from .green import esg_declaration

__all__ = [
    "MAX_FUTURE_SKEW",
    "MAX_ID_CHARS",
    "MAX_MONEY_MINOR",
    "MAX_TERM_MONTHS",
    "application_problem",
]

# Arithmetic safety, not credit policy (lenders decline large loans by their thresholds):
# below 10**12 minor units every derived amount (interest over 50 years included) stays
# exact as a float (< 2**53) and far inside Avro's long.
MAX_MONEY_MINOR = 10**12
# 50 years; longer terms put due dates past what dates can hold.
MAX_TERM_MONTHS = 600
# Producers' clocks drift; an event from further in the future is a bug or an attack.
MAX_FUTURE_SKEW = timedelta(days=1)
MAX_ID_CHARS = 128
_MAX_NAME_CHARS = 256
_MAX_CONTACT_CHARS = 254  # the longest valid e-mail address
_IDS = ("tenant_id", "application_id", "customer_id", "device_id")
_DIGIT_STRINGS = ("id_card_number", "phone", "bank_card_number")


def _invisible(text: str) -> bool:
    # Control and format characters (zero-width, bidi overrides) change what a reader sees.
    # A printable string has neither (str.isprintable refuses every C* and Z* but the
    # space): only the others need the per-character look-up.
    if text.isprintable():
        return False
    return any(unicodedata.category(c) in ("Cc", "Cf") for c in text)


def _printable_ascii(text: str) -> bool:
    """Whether every character is in " "..."~" (what the per-character test said, in C)."""
    return text.isascii() and text.isprintable()


def _opaque_id(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "empty"
    if len(value) > MAX_ID_CHARS:
        return f"longer than {MAX_ID_CHARS} characters"
    if not _printable_ascii(value) or " " in value:
        return "not printable ASCII without spaces"
    return None


def _applicant_problem(applicant: Mapping[str, Any]) -> str | None:
    name = applicant.get("full_name")
    if not isinstance(name, str) or not name.strip():
        return "applicant.full_name: empty"
    if len(name) > _MAX_NAME_CHARS:
        return f"applicant.full_name: longer than {_MAX_NAME_CHARS} characters"
    if _invisible(name):
        return "applicant.full_name: contains control or invisible characters"
    for field in _DIGIT_STRINGS:
        value = applicant.get(field)
        if not isinstance(value, str) or not value.strip():
            return f"applicant.{field}: empty"
        if len(value) > 64 or not _printable_ascii(value):
            return f"applicant.{field}: not up to 64 printable ASCII characters"
    email = applicant.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > _MAX_CONTACT_CHARS:
        return "applicant.email: not an address of at most 254 characters"
    if _invisible(email) or any(c.isspace() for c in email):
        return "applicant.email: contains spaces, control or invisible characters"
    return None


def _money_problem(application: Mapping[str, Any]) -> str | None:
    amount = application.get("requested_amount_minor")
    if isinstance(amount, int) and amount > MAX_MONEY_MINOR:
        return f"requested_amount_minor: above {MAX_MONEY_MINOR}"
    term = application.get("term_months")
    if isinstance(term, int) and term > MAX_TERM_MONTHS:
        return f"term_months: above {MAX_TERM_MONTHS}"
    income = application.get("monthly_income_minor")
    if income is not None and not 0 <= income <= MAX_MONEY_MINOR:
        return f"monthly_income_minor: outside 0..{MAX_MONEY_MINOR}"
    return None


def _esg_problem(application: Mapping[str, Any]) -> str | None:
    declared = application.get("esg")
    if not declared:
        return None
    try:
        esg_declaration(declared)
    except (ValueError, TypeError) as exc:
        return f"esg: {exc}"
    return None


def application_problem(application: Mapping[str, Any], now: datetime) -> str | None:
    """The first rule a decoded application breaks (field and rule, no value), or None."""
    try:
        uuid.UUID(str(application.get("event_id")))
    except ValueError:
        return "event_id: not a UUID"
    for field in _IDS:
        problem = _opaque_id(application.get(field))
        if problem:
            return f"{field}: {problem}"
    occurred = application.get("occurred_at")
    if not isinstance(occurred, datetime) or occurred.tzinfo is None:
        return "occurred_at: not a timezone-aware timestamp"
    if occurred > now + MAX_FUTURE_SKEW:
        return f"occurred_at: more than {MAX_FUTURE_SKEW.days} day in the future"
    applicant = application.get("applicant")
    if not isinstance(applicant, Mapping):
        return "applicant: missing"
    problem = _applicant_problem(applicant) or _money_problem(application)
    if problem:
        return problem
    try:
        # The BP encoder checks the credit profile, the amount and the term (>= 1).
        application_to_bp_features(application)
    except ValueError as exc:
        return str(exc)
    return _esg_problem(application)
