"""Lender configs for the console: the newest valid version per lender, edited judgements.

The lender page edits only the pairwise judgements of a lender's AHP hierarchy; its
structure, thresholds and optional parts (pricing, funders, delinquency policy) are carried
over from the version being edited. Validation is the worker's own
(``agents.lender_configs.config_from_event``), so a config the console publishes is one the
worker applies. No I/O: the service feeds ``LenderBook`` from the config topic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from greencredit.agents.lender_configs import config_from_event
from greencredit.models.ahp import AhpInconsistencyError, AhpInputError, evaluate_hierarchy
from greencredit.models.lender_config import LenderConfigError, default_lender_config
from greencredit.streams.records import output_event_id

__all__ = [
    "EditedConfig",
    "JudgementsRefused",
    "LenderBook",
    "StaleVersion",
    "base_event",
    "edit_config",
    "judgement_report",
]

_EXTENSIONS = ("delinquency_policy", "green_pricing", "funders")
THRESHOLDS = (
    "approve_below",
    "decline_at_or_above",
    "fraud_alert_threshold",
    "lr_weight_adjust_limit",
)
_CELL = re.compile(r"matrix\[(\d+)\]\[(\d+)\]")
_NODE = re.compile(r"node '([^']*)'")
_FRACTION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(\d+(?:\.\d+)?)\s*)?")


class JudgementsRefused(ValueError):
    """Edited judgements that must not be published; ``report`` says which cell and why."""

    def __init__(self, message: str, report: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = dict(report or {"valid": False, "consistent": False, "error": message})


class StaleVersion(ValueError):
    """The judgements were edited from a version that is no longer the newest."""


class LenderBook:
    """The newest valid config event per lender; invalid or older ones are ignored.

    The worker does the same: it dead-letters invalid ones and keeps the previous version.
    """

    def __init__(self) -> None:
        """Start empty: every lender has the engine's default config (version 1)."""
        self._events: dict[str, dict[str, Any]] = {}

    def apply(self, event: Mapping[str, Any]) -> bool:
        """Keep ``event`` if it is valid and newer than the lender's current one."""
        try:
            config_from_event(event)
        except (LenderConfigError, AhpInputError, ValueError, TypeError, KeyError):
            return False
        current = self._events.get(str(event["tenant_id"]))
        if current is not None and int(event["config_version"]) <= current["config_version"]:
            return False
        self._events[str(event["tenant_id"])] = dict(event)
        return True

    def published(self, tenant_id: str) -> bool:
        """Whether the lender has published a config (else it runs on the default)."""
        return tenant_id in self._events

    def current(self, tenant_id: str) -> dict[str, Any]:
        """The lender's newest config as an event (the default as version 1 if none)."""
        event = self._events.get(tenant_id)
        return dict(event) if event is not None else base_event(tenant_id)

    def tenants(self) -> list[str]:
        """Lenders with a published config, sorted."""
        return sorted(self._events)


def base_event(tenant_id: str) -> dict[str, Any]:
    """The engine's default config for ``tenant_id`` in LenderConfig event form (v1)."""
    config = default_lender_config(tenant_id)
    nodes = []
    for node in config.hierarchy["nodes"]:
        matrix = node.get("matrix")
        weights = node.get("weights")
        nodes.append(
            {
                "name": node["name"],
                "criteria": list(node["criteria"]),
                "matrix": [[float(v) for v in row] for row in matrix] if matrix else None,
                "weights": {k: float(v) for k, v in weights.items()} if weights else None,
            }
        )
    return {
        "tenant_id": tenant_id,
        "config_version": config.version,
        "root": config.hierarchy["root"],
        "nodes": nodes,
        "approve_below": config.approve_below,
        "decline_at_or_above": config.decline_at_or_above,
        "fraud_alert_threshold": config.fraud_alert_threshold,
        "lr_weight_adjust_limit": config.lr_weight_adjust_limit,
        **dict.fromkeys(_EXTENSIONS),
        "face_match_threshold": None,
        "proposed_by": None,
        "approved_by": None,
    }


def _hierarchy(event: Mapping[str, Any], matrices: Any) -> dict[str, Any]:
    """The event's hierarchy with the edited matrices put in (checked by name and kind)."""
    if not isinstance(matrices, Mapping):
        raise JudgementsRefused("'matrices' must be an object: node name -> matrix")
    by_name = {node["name"]: node for node in event["nodes"]}
    for name in matrices:
        node = by_name.get(name)
        if node is None:
            raise JudgementsRefused(f"node {name!r} is not in the hierarchy ({', '.join(by_name)})")
        if node.get("matrix") is None:
            raise JudgementsRefused(
                f"node {name!r} has direct weights, not pairwise judgements; it is not edited here"
            )
    nodes = []
    for node in event["nodes"]:
        entry: dict[str, Any] = {"name": node["name"], "criteria": list(node["criteria"])}
        if node.get("matrix") is not None:
            entry["matrix"] = matrices.get(node["name"], node["matrix"])
        else:
            entry["weights"] = dict(node["weights"])
        nodes.append(entry)
    return {"root": event["root"], "nodes": nodes}


def judgement_report(event: Mapping[str, Any], matrices: Any) -> dict[str, Any]:
    """CR per pairwise node, CR_total and weights of the edited hierarchy, or why not.

    ``valid`` is False for a judgement that is not a number on Saaty's scale, not
    reciprocal, or not 1 on the diagonal; ``consistent`` is False when CR >= 0.10. ``error``
    names the node and cell; ``cell`` locates it for the page ({node, row, col}).
    """
    hierarchy = _hierarchy(event, matrices)
    try:
        result = evaluate_hierarchy(hierarchy, require_consistency=False)
    except AhpInputError as err:
        return {"valid": False, "consistent": False, "error": str(err), "cell": _cell_of(err)}
    report: dict[str, Any] = {
        "valid": True,
        "consistent": result.consistent,
        "error": None,
        "cell": None,
        "cr_total": result.cr_total,
        "nodes": {
            name: {
                "cr": r.cr,
                "ci": r.ci,
                "lambda_max": r.lambda_max,
                "consistent": r.consistent,
                "weights": r.weights,
            }
            for name, r in result.node_results.items()
            if r is not None
        },
        "leaf_weights": result.leaf_weights,
    }
    if not result.consistent:
        try:
            evaluate_hierarchy(hierarchy)
        except AhpInconsistencyError as err:
            j = err.judgement
            report["error"] = str(err)
            report["cell"] = {
                "node": err.node,
                "row": j.row,
                "col": j.col,
                "suggested": j.suggested,
            }
    return report


def _cell_of(err: AhpInputError) -> dict[str, Any] | None:
    """Locate the cell an input error names (models/ahp.py writes "node 'x': matrix[i][j]")."""
    text = str(err)
    cell, node = _CELL.search(text), _NODE.search(text)
    if cell is None or node is None:
        return None
    return {"node": node.group(1), "row": int(cell.group(1)), "col": int(cell.group(2))}


@dataclass(frozen=True)
class EditedConfig:
    """A new config version ready to publish, and the report that allowed it."""

    event: dict[str, Any]
    report: dict[str, Any]


def _thresholds(raw: Any) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise JudgementsRefused("'thresholds' must be an object: name -> number")
    out = {}
    for name, value in raw.items():
        if name not in THRESHOLDS:
            raise JudgementsRefused(f"threshold {name!r} is not one of {', '.join(THRESHOLDS)}")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise JudgementsRefused(f"threshold {name!r} must be a number")
        out[name] = float(value)
    return out


def edit_config(
    book: LenderBook,
    tenant_id: str,
    base_version: Any,
    matrices: Any,
    now: datetime,
    thresholds: Any = None,
    *,
    proposed_by: str | None = None,
    approved_by: str | None = None,
) -> EditedConfig:
    """The next version of the lender's config with edited judgements and thresholds, validated.

    Raises StaleVersion if ``base_version`` is not the newest version (someone published
    meanwhile) and JudgementsRefused for invalid or inconsistent judgements or thresholds
    the worker would refuse. The maker and checker are recorded in the event.
    """
    current = book.current(tenant_id)
    if isinstance(base_version, bool) or not isinstance(base_version, int):
        raise JudgementsRefused("'base_version' must be the integer version you edited")
    if base_version != current["config_version"]:
        raise StaleVersion(
            f"lender {tenant_id!r} is at version {current['config_version']}, you edited "
            f"version {base_version}: reload the page and redo the change"
        )
    edited_thresholds = _thresholds(thresholds)
    report = judgement_report(current, matrices)
    if not report["valid"] or not report["consistent"]:
        raise JudgementsRefused(f"refused: {report['error']}", report)
    version = int(current["config_version"]) + 1
    nodes = [
        {
            **node,
            "matrix": _reciprocal(_numbers(node["matrix"])) if node.get("matrix") else None,
        }
        for node in _hierarchy(current, matrices)["nodes"]
    ]
    event = {
        **current,
        "event_id": output_event_id("lender-config", f"{tenant_id}:{version}"),
        "tenant_id": tenant_id,
        "occurred_at": now,
        "schema_version": 4,
        "config_version": version,
        "nodes": [{"weights": None, **node} for node in nodes],
        **edited_thresholds,
        "proposed_by": proposed_by,
        "approved_by": approved_by,
    }
    try:
        config_from_event(event)  # the worker's own check, thresholds and leaves included
    except (LenderConfigError, AhpInputError) as err:
        raise JudgementsRefused(f"refused: {err}") from None
    return EditedConfig(event, report)


def _numbers(matrix: list[list[Any]]) -> list[list[float]]:
    """Judgements as floats ("1/3" -> 0.333...); already validated by judgement_report."""
    return [[_number(value) for value in row] for row in matrix]


def _number(value: Any) -> float:
    if isinstance(value, str):
        match = _FRACTION.fullmatch(value)
        if match is None:  # unreachable after validation; keeps the parser honest
            raise JudgementsRefused(f"{value!r} is not a number or a fraction like 1/3")
        return float(match[1]) / (float(match[2]) if match[2] else 1.0)
    return float(value)


def _reciprocal(matrix: list[list[float]]) -> list[list[float]]:
    """Keep the judgement >= 1 of each pair and write its mirror as the exact reciprocal."""
    n = len(matrix)
    out = [[1.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            upper = matrix[i][j]
            if upper >= 1 or math.isclose(upper, 1.0):
                out[i][j], out[j][i] = upper, 1.0 / upper
            else:
                out[j][i], out[i][j] = matrix[j][i], 1.0 / matrix[j][i]
    return out
