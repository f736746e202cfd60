"""Application scoring: model outputs and rule indicators -> AHP fusion -> decision draft.

This is the one scoring path: the Faust application agent calls it on batches, and
``greencredit score`` calls it on files. Everything the agent fetched from Redis or the
face check arrives as an explicit :class:`ApplicationContext`, so this module stays pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from operator import mul
from typing import Any

import numpy as np

from .bp import BpCreditModel
from .bp_features import BP_FEATURE_NAMES, applications_to_bp_matrix
from .fusion import INDICATORS, FusionPolicy, FusionResult, HardFlag, fuse_batch
from .green import LOAN_PURPOSES, default_taxonomy, esg_declaration, esg_risk
from .lender_config import LenderConfig
from .online_lr import LinearSnapshot, OnlineRiskModel

__all__ = [
    "CONTEXT_FEATURES",
    "GREEN_PURPOSES",
    "IDENTITY_RULE_CODES",
    "ApplicationContext",
    "ApplicationScorer",
    "ScoredApplication",
    "affordability_risk",
    "application_esg_risk",
    "id_check_digit",
    "identity_risk",
    "lr_features",
    "monthly_instalment_minor",
]

# Purposes the product treats as green consumption / green transformation (seed 6.1): the
# taxonomy file (models/config/green_taxonomy.json) is the one place that says so.
GREEN_PURPOSES = frozenset(p for p in LOAN_PURPOSES if default_taxonomy().is_green(p))

# Affordability: the instalment at a reference rate as a share of net monthly income.
# Up to 15 % is comfortable (risk 0); 50 % and more is unaffordable (risk 1). The reference
# rate only sizes the instalment for this check; pricing is the lender's business.
REFERENCE_ANNUAL_RATE = 0.08
COMFORTABLE_DEBT_SERVICE = 0.15
UNAFFORDABLE_DEBT_SERVICE = 0.50

# The PRC resident ID check digit (GB 11643-1999, ISO 7064 MOD 11-2).
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# The numeric facts the worker records per application (models/decision.py builds them).
# The online LR always scores over all of them (absent ones at the scaler's mean): a fixed
# column set keeps an application's risk independent of what else is in its batch.
CONTEXT_FEATURES = (
    "apps_per_device_1h",
    "apps_per_device_24h",
    "apps_per_device_7d",
    "apps_per_id_24h",
    "apps_per_phone_24h",
    "identities_per_device_30d",
)
# The reason codes identity_risk can give (recomputed from the application on a replay).
IDENTITY_RULE_CODES = frozenset({"ID_CHECKSUM_INVALID", "ID_BIRTH_DATE_INVALID", "ID_AGE_MISMATCH"})


@dataclass(frozen=True)
class ApplicationContext:
    """What the agent found out about an application outside the event itself.

    A None indicator means "not provided" (the fusion redistributes its weight).
    `features` is the numeric snapshot recorded in the decision (Redis velocity counts, ...).
    """

    device_risk: float | None = None
    velocity_risk: float | None = None
    behaviour_risk: float | None = None
    face_risk: float | None = None
    identity_signals_risk: float | None = None  # e.g. one ID used with many phones
    flags: frozenset[HardFlag] = frozenset()
    codes: tuple[str, ...] = ()  # informational reason codes (e.g. FACE_NO_FACE), no PII
    features: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoredApplication:
    """Everything the decision record needs, before it is given ids and a hash."""

    result: FusionResult
    indicators: dict[str, float]
    features: dict[str, float]
    bp_default_probability: float
    lr_risk: float
    model_versions: dict[str, str]
    config_version: int
    rule_codes: tuple[str, ...] = ()  # identity rules that fired (reason codes, no PII)
    # The fusion policy's inputs besides the config version, so the decision can be replayed.
    lr_weight_adjustment: float = 0.0
    approve_below: float | None = None


def monthly_instalment_minor(amount_minor: int, term_months: int, annual_rate: float) -> int:
    """Annuity instalment in minor units (rounded up: the borrower never pays less than due)."""
    if term_months <= 0:
        raise ValueError("term_months must be positive")
    monthly = annual_rate / 12
    if monthly == 0:
        return math.ceil(amount_minor / term_months)
    factor = monthly / (1 - (1 + monthly) ** -term_months)
    return math.ceil(amount_minor * factor)


def affordability_risk(application: Mapping[str, Any]) -> float | None:
    """Debt-service ratio mapped to [0, 1]; None when the income was not declared."""
    income = application.get("monthly_income_minor")
    if not income or income <= 0:
        return None
    instalment = monthly_instalment_minor(
        int(application["requested_amount_minor"]),
        int(application["term_months"]),
        REFERENCE_ANNUAL_RATE,
    )
    ratio = instalment / income
    span = UNAFFORDABLE_DEBT_SERVICE - COMFORTABLE_DEBT_SERVICE
    return float(min(max((ratio - COMFORTABLE_DEBT_SERVICE) / span, 0.0), 1.0))


def id_check_digit(first17: str) -> str:
    """The check character of a PRC resident ID for its first 17 digits (MOD 11-2)."""
    if len(first17) != len(_ID_WEIGHTS):
        raise ValueError(f"expected {len(_ID_WEIGHTS)} digits, got {len(first17)}")
    total = sum(map(mul, map(int, first17), _ID_WEIGHTS))
    return _ID_CHECK[total % 11]


def _id_birth_date(id_number: str) -> date | None:
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


def identity_risk(application: Mapping[str, Any], today: date) -> tuple[float, list[str]]:
    """Rule-based identity risk from the ID number itself, with the rule codes that fired.

    An 18-character PRC ID whose check digit is wrong is almost always mistyped or forged;
    a birth date that disagrees with the declared age by more than a year is a strong sign
    of a borrowed identity. Other ID formats are not judged (risk 0, no code).
    """
    number = str(application["applicant"]["id_card_number"]).strip().upper()
    if len(number) != 18 or not number[:17].isdigit():
        return 0.0, []
    if id_check_digit(number[:17]) != number[17]:
        return 1.0, ["ID_CHECKSUM_INVALID"]
    born = _id_birth_date(number)
    if born is None or born > today:
        return 1.0, ["ID_BIRTH_DATE_INVALID"]
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    declared = int(application["credit_profile"]["age_years"])
    if abs(age - declared) > 1:
        return 0.8, ["ID_AGE_MISMATCH"]
    return 0.0, []


def application_esg_risk(application: Mapping[str, Any]) -> float | None:
    """ESG indicator of a business applicant's declaration; None for consumers."""
    declared = application.get("esg")
    if not declared:
        return None
    return esg_risk(esg_declaration(declared))


def lr_features(bp_row: np.ndarray, context: ApplicationContext) -> dict[str, float]:
    """Feature dict of the online LR: the BP inputs plus the context's numeric features."""
    return _lr_features([float(value) for value in bp_row], context)


def _lr_features(bp_row: list[float], context: ApplicationContext) -> dict[str, float]:
    # bp_row: one row of the batch matrix's tolist(), already Python floats. The names of
    # the BP inputs and the context's features come as one tuple (few key sets occur).
    names = _feature_names(tuple(context.features))
    values = [*bp_row, *map(float, context.features.values())]
    return dict(zip(names, values, strict=True))


@lru_cache(maxsize=64)
def _feature_names(context_keys: tuple[str, ...]) -> tuple[str, ...]:
    return (*BP_FEATURE_NAMES, *(f"ctx_{k}" for k in context_keys))


class ApplicationScorer:
    """Scores batches of applications with the BP model, the online LR and AHP fusion."""

    def __init__(self, bp_model: BpCreditModel) -> None:
        self.bp_model = bp_model
        self._policies: dict[tuple[str, int, float, float], FusionPolicy] = {}
        self._snapshots: dict[tuple[int, str, tuple[str, ...]], LinearSnapshot] = {}

    def policy(
        self,
        config: LenderConfig,
        lr_weight_adjustment: float = 0.0,
        approve_below: float | None = None,
    ) -> FusionPolicy:
        """The fusion policy of a lender configuration (cached per version and adjustment).

        `approve_below` overrides the lender's threshold (green loans get a higher one).
        """
        threshold = config.approve_below if approve_below is None else approve_below
        key = (config.tenant_id, config.version, lr_weight_adjustment, threshold)
        policy = self._policies.get(key)
        if policy is None:
            policy = FusionPolicy(
                leaf_weights=dict(config.leaf_weights),
                approve_below=threshold,
                decline_at_or_above=config.decline_at_or_above,
                config_version=config.version,
                lr_weight_adjustment=lr_weight_adjustment,
            )
            self._policies[key] = policy
        return policy

    def score_batch(
        self,
        applications: Sequence[Mapping[str, Any]],
        contexts: Sequence[ApplicationContext],
        configs: Sequence[LenderConfig],
        lr_models: Sequence[OnlineRiskModel],
        lr_weight_adjustments: Sequence[float] | None = None,
        approve_below: Sequence[float | None] | None = None,
    ) -> list[ScoredApplication]:
        """Score a batch; element i of every sequence belongs to application i.

        `approve_below[i]`, when given, replaces the lender's approval threshold for
        application i (preferential treatment of green loans).
        """
        n = len(applications)
        if not (len(contexts) == len(configs) == len(lr_models) == n):
            raise ValueError("applications, contexts, configs and lr_models differ in length")
        if n == 0:
            return []
        adjustments = list(lr_weight_adjustments or [0.0] * n)
        bp_matrix = applications_to_bp_matrix(applications)
        bp_probs = self.bp_model.predict_default_proba(bp_matrix)
        lr_probs = self._lr_risks(bp_matrix, contexts, lr_models)
        indicator_rows: list[dict[str, float]] = []
        rule_codes: list[tuple[str, ...]] = []
        context_codes: list[tuple[str, ...]] = []
        # Python floats once per column (the same values as float() of each element).
        bp_list, lr_list = bp_probs.tolist(), lr_probs.tolist()
        rows = zip(applications, contexts, bp_list, lr_list, strict=True)
        for application, context, bp_probability, lr_probability in rows:
            id_risk, id_codes = identity_risk(application, _occurred_date(application))
            if context.identity_signals_risk is not None:
                id_risk = max(id_risk, context.identity_signals_risk)
            indicators = {
                "bp_default_risk": bp_probability,
                "online_lr_risk": lr_probability,
                "affordability_risk": affordability_risk(application),
                "identity_risk": id_risk,
                "device_risk": context.device_risk,
                "velocity_risk": context.velocity_risk,
                "face_risk": context.face_risk,
                "behaviour_risk": context.behaviour_risk,
                "green_purpose_risk": 0.0 if application["purpose"] in GREEN_PURPOSES else 1.0,
                "esg_risk": application_esg_risk(application),
            }
            indicator_rows.append({k: v for k, v in indicators.items() if v is not None})
            rule_codes.append(tuple(id_codes))
            context_codes.append(context.codes)
        flags = [
            c.flags | {HardFlag.IDENTITY_INVALID} if codes else c.flags
            for c, codes in zip(contexts, rule_codes, strict=True)
        ]
        thresholds = list(approve_below or [None] * n)
        results = self._fuse(indicator_rows, configs, adjustments, flags, thresholds)
        applied_thresholds = [
            config.approve_below if t is None else float(t)
            for config, t in zip(configs, thresholds, strict=True)
        ]
        bp_rows = bp_matrix.tolist()
        return [
            ScoredApplication(
                result=results[i],
                indicators=indicator_rows[i],
                features=_lr_features(bp_rows[i], contexts[i]),
                bp_default_probability=bp_list[i],
                lr_risk=lr_list[i],
                model_versions={"bp": self.bp_model.version, "online_lr": lr_models[i].version},
                config_version=configs[i].version,
                rule_codes=rule_codes[i] + context_codes[i],
                lr_weight_adjustment=float(adjustments[i]),
                approve_below=applied_thresholds[i],
            )
            for i in range(n)
        ]

    def _lr_risks(
        self,
        bp_matrix: np.ndarray,
        contexts: Sequence[ApplicationContext],
        lr_models: Sequence[OnlineRiskModel],
    ) -> np.ndarray:
        """Online-LR risk per row, vectorised per model through a LinearSnapshot."""
        context_names = sorted(
            {f"ctx_{k}" for k in CONTEXT_FEATURES}
            | {f"ctx_{k}" for c in contexts for k in c.features}
        )
        names = (*BP_FEATURE_NAMES, *context_names)
        context_keys = [name[len("ctx_") :] for name in context_names]
        risks = np.empty(len(contexts))
        by_model: dict[int, list[int]] = {}
        for i, model in enumerate(lr_models):
            by_model.setdefault(id(model), []).append(i)
        for indices in by_model.values():
            model = lr_models[indices[0]]
            snapshot = self._snapshot(model, names)
            matrix = np.empty((len(indices), len(names)))
            matrix[:, : len(BP_FEATURE_NAMES)] = bp_matrix[indices]
            # The context columns as one block; an absent feature must not move the logit, so
            # it is put at the scaler's mean.
            means = snapshot.means.tolist()
            features = [contexts[i].features for i in indices]
            block = [
                [
                    means[j] if (value := row.get(name)) is None else value
                    for j, name in enumerate(context_keys, start=len(BP_FEATURE_NAMES))
                ]
                for row in features
            ]
            matrix[:, len(BP_FEATURE_NAMES) :] = np.array(block, dtype=np.float64).reshape(
                len(indices), len(context_keys)
            )
            risks[indices] = snapshot.predict_matrix(matrix)
        return risks

    def _snapshot(self, model: OnlineRiskModel, names: tuple[str, ...]) -> LinearSnapshot:
        key = (id(model), model.version, names)
        cached = self._snapshots.get(key)
        if cached is None:
            if len(self._snapshots) > 64:  # models learn: drop stale snapshots
                self._snapshots.clear()
            cached = self._snapshots[key] = model.snapshot(names)
        return cached

    def _fuse(
        self,
        rows: list[dict[str, float]],
        configs: Sequence[LenderConfig],
        adjustments: list[float],
        flags: list[frozenset[HardFlag]],
        thresholds: list[float | None],
    ) -> list[FusionResult]:
        # One vectorised fusion call per distinct policy in the batch (usually one lender).
        # Absent indicators are NaN ("not provided"); one array from the batch's rows.
        nan = math.nan
        matrix = np.array(
            [[row.get(name, nan) for name in INDICATORS] for row in rows], dtype=np.float64
        ).reshape(len(rows), len(INDICATORS))
        groups: dict[FusionPolicy, list[int]] = {}
        for i, config in enumerate(configs):
            groups.setdefault(self.policy(config, adjustments[i], thresholds[i]), []).append(i)
        results: list[FusionResult | None] = [None] * len(rows)
        for policy, indices in groups.items():
            fused = fuse_batch(matrix[indices], policy, [flags[i] for i in indices])
            for index, result in zip(indices, fused, strict=True):
                results[index] = result
        return [r for r in results if r is not None]


def _occurred_date(application: Mapping[str, Any]) -> date:
    occurred = application.get("occurred_at")
    if isinstance(occurred, datetime):
        return occurred.astimezone(UTC).date()
    return datetime.now(UTC).date()
