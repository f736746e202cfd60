"""Versioned per-lender configuration: the lender's AHP hierarchy and decision thresholds.

Configs arrive on a compacted topic, so a version can be redelivered, or replayed after
a newer one; LenderConfigBook keeps only the newest version per tenant. A config is
validated when built, so a scorer never sees weights from an inconsistent hierarchy.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from .ahp import AhpInputError, HierarchyResult, evaluate_hierarchy
from .fusion import INDICATORS

__all__ = [
    "DEFAULT_HIERARCHY_PATH",
    "LenderConfig",
    "LenderConfigBook",
    "LenderConfigError",
    "default_hierarchy",
    "default_lender_config",
]

DEFAULT_HIERARCHY_PATH = Path(__file__).with_name("config") / "default_hierarchy.json"

_THRESHOLDS = (
    "approve_below",
    "decline_at_or_above",
    "fraud_alert_threshold",
    "lr_weight_adjust_limit",
)
_FIELDS = ("tenant_id", "version", "hierarchy", *_THRESHOLDS)


class LenderConfigError(ValueError):
    """A lender configuration that must not be applied; the message names tenant and field."""


def default_hierarchy() -> dict[str, Any]:
    """Load the shipped default AHP hierarchy (a fresh dict each call, safe to modify)."""
    loaded: dict[str, Any] = orjson.loads(DEFAULT_HIERARCHY_PATH.read_bytes())
    return loaded


@dataclass(frozen=True)
class LenderConfig:
    """One version of a lender's risk configuration, validated on construction.

    Scores below ``approve_below`` are approved, at or above ``decline_at_or_above``
    declined, in between referred. ``fraud_alert_threshold`` raises a fraud alert;
    ``lr_weight_adjust_limit`` bounds how far online learning may move the LR weight.
    ``face_match_threshold`` overrides the shipped face-blacklist match threshold (cosine).
    ``ahp`` holds the evaluated hierarchy, computed once here. Leaves must be names from
    ``fusion.INDICATORS``; a hierarchy may leave some out (they then weigh 0).
    """

    tenant_id: str
    version: int
    hierarchy: dict[str, Any]
    approve_below: float
    decline_at_or_above: float
    fraud_alert_threshold: float
    lr_weight_adjust_limit: float
    # None: the face embedder's shipped 1:N threshold (calibrated for the design blacklist
    # size, see the face model card). A lender with a much larger blacklist sets a higher one.
    face_match_threshold: float | None = None
    ahp: HierarchyResult = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate every field and evaluate the hierarchy once."""
        if not isinstance(self.tenant_id, str) or not self.tenant_id.strip():
            raise LenderConfigError(f"tenant_id must be a non-empty string, got {self.tenant_id!r}")
        where = f"lender config for tenant {self.tenant_id!r}"
        version = self.version
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise LenderConfigError(f"{where}: version must be an integer >= 1, got {version!r}")
        where = f"{where} v{version}"
        for name in _THRESHOLDS:
            object.__setattr__(self, name, _unit_interval(getattr(self, name), f"{where}: {name}"))
        if self.face_match_threshold is not None:
            object.__setattr__(
                self,
                "face_match_threshold",
                _unit_interval(self.face_match_threshold, f"{where}: face_match_threshold"),
            )
        if self.approve_below > self.decline_at_or_above:
            raise LenderConfigError(
                f"{where}: approve_below ({self.approve_below}) must not exceed "
                f"decline_at_or_above ({self.decline_at_or_above})"
            )
        if not isinstance(self.hierarchy, Mapping):
            raise LenderConfigError(f"{where}: hierarchy must be an object (root, nodes)")
        # A private copy: the caller mutating its dict later must not desync `ahp`.
        hierarchy = copy.deepcopy(dict(self.hierarchy))
        try:
            result = evaluate_hierarchy(hierarchy)
        except AhpInputError as err:
            raise LenderConfigError(f"{where}: hierarchy: {err}") from err
        # Fusion scores only the indicators it knows; reject a typo here, not at scoring time.
        unknown = sorted(set(result.leaf_weights) - set(INDICATORS))
        if unknown:
            raise LenderConfigError(
                f"{where}: hierarchy has leaves that are not risk indicators: "
                f"{', '.join(unknown)} (known: {', '.join(INDICATORS)})"
            )
        object.__setattr__(self, "hierarchy", hierarchy)
        object.__setattr__(self, "ahp", result)

    @property
    def leaf_weights(self) -> Mapping[str, float]:
        """Global weight of every leaf indicator (sums to 1), read-only."""
        return MappingProxyType(self.ahp.leaf_weights)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LenderConfig:
        """Build from a decoded event or JSON object.

        ``hierarchy`` may be an object or a JSON string. Unknown keys are ignored so a
        newer producer can add fields (Avro schema evolution) without breaking readers.
        """
        if not isinstance(data, Mapping):
            raise LenderConfigError(f"lender config must be an object, got {type(data).__name__}")
        missing = [name for name in _FIELDS if name not in data]
        if missing:
            tenant = data.get("tenant_id", "?")
            raise LenderConfigError(
                f"lender config for tenant {tenant!r} is missing {', '.join(missing)}"
            )
        values = {name: data[name] for name in _FIELDS}
        # Optional: configs stored before it existed have no such key.
        values["face_match_threshold"] = data.get("face_match_threshold")
        if isinstance(values["hierarchy"], str | bytes):
            try:
                values["hierarchy"] = orjson.loads(values["hierarchy"])
            except orjson.JSONDecodeError as err:
                raise LenderConfigError(
                    f"lender config for tenant {values['tenant_id']!r}: hierarchy is not "
                    f"valid JSON ({err})"
                ) from err
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict that ``from_dict`` turns back into an equal config."""
        return {
            "tenant_id": self.tenant_id,
            "version": self.version,
            "hierarchy": copy.deepcopy(self.hierarchy),
            **{name: getattr(self, name) for name in _THRESHOLDS},
            "face_match_threshold": self.face_match_threshold,
        }


def default_lender_config(tenant_id: str) -> LenderConfig:
    """Version 1 for a lender that has not published a config: default hierarchy."""
    return LenderConfig(
        tenant_id=tenant_id,
        version=1,
        hierarchy=default_hierarchy(),
        approve_below=0.35,
        decline_at_or_above=0.60,
        fraud_alert_threshold=0.70,
        lr_weight_adjust_limit=0.10,
    )


class LenderConfigBook:
    """The newest LenderConfig per tenant; older or redelivered versions are ignored.

    The first config seen for a version wins: changing a config means bumping its version.
    No I/O: the agent consuming the config topic feeds ``apply``.
    """

    def __init__(self) -> None:
        """Start empty; every tenant falls back to the default config."""
        self._latest: dict[str, LenderConfig] = {}
        self._defaults: dict[str, LenderConfig] = {}

    def apply(self, config: LenderConfig) -> bool:
        """Keep ``config`` if it is newer than the tenant's current one; return whether it was."""
        current = self._latest.get(config.tenant_id)
        if current is not None and config.version <= current.version:
            return False
        self._latest[config.tenant_id] = config
        return True

    def get(self, tenant_id: str) -> LenderConfig | None:
        """Return the newest applied config for ``tenant_id``, or None if none arrived."""
        return self._latest.get(tenant_id)

    def config_for(self, tenant_id: str) -> LenderConfig:
        """Return the newest applied config, else the default (built once per tenant)."""
        latest = self._latest.get(tenant_id)
        if latest is not None:
            return latest
        if tenant_id not in self._defaults:
            self._defaults[tenant_id] = default_lender_config(tenant_id)
        return self._defaults[tenant_id]

    def tenants(self) -> list[str]:
        """Return the tenants with an applied config, sorted."""
        return sorted(self._latest)

    def __len__(self) -> int:
        """Count tenants with an applied config."""
        return len(self._latest)

    def __contains__(self, tenant_id: object) -> bool:
        """Tell whether ``tenant_id`` has an applied config."""
        return tenant_id in self._latest


def _unit_interval(value: Any, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise LenderConfigError(f"{label} must be a number in [0, 1], got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise LenderConfigError(f"{label} must be in [0, 1], got {value!r}")
    return number
