"""Lender configuration: validation, round trips, the shipped default, and version ordering."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greencredit.models.ahp import evaluate_hierarchy
from greencredit.models.fusion import INDICATORS
from greencredit.models.lender_config import (
    DEFAULT_HIERARCHY_PATH,
    LenderConfig,
    LenderConfigBook,
    LenderConfigError,
    default_hierarchy,
    default_lender_config,
)

DEFAULT_LEAVES = {
    "device_risk", "identity_risk", "face_risk", "velocity_risk",
    "bp_default_risk", "online_lr_risk", "affordability_risk",
    "green_purpose_risk", "esg_risk", "behaviour_risk",
}  # fmt: skip


def config_dict(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = default_lender_config("bank-a").to_dict()
    data.update(changes)
    return data


# --- the shipped default -----------------------------------------------------------------


def test_default_hierarchy_has_the_agreed_shape_and_is_consistent() -> None:
    spec = default_hierarchy()
    result = evaluate_hierarchy(spec)

    assert result.local["goal"].keys() == {"fraud_risk", "credit_risk", "green_esg", "behaviour"}
    assert list(result.local["fraud_risk"]) == [
        "device_risk", "identity_risk", "face_risk", "velocity_risk",
    ]  # fmt: skip
    assert list(result.local["credit_risk"]) == [
        "bp_default_risk", "online_lr_risk", "affordability_risk",
    ]  # fmt: skip
    assert list(result.local["green_esg"]) == ["green_purpose_risk", "esg_risk"]
    assert result.local["behaviour"] == {"behaviour_risk": 1.0}
    assert set(result.leaf_weights) == DEFAULT_LEAVES == set(INDICATORS)
    assert sum(result.leaf_weights.values()) == pytest.approx(1.0)
    assert result.cr_total < 0.02
    assert all(r is None or r.cr < 0.02 for r in result.node_results.values())
    assert "_comment" in spec


def test_default_hierarchy_ranks_fraud_and_credit_first() -> None:
    top = evaluate_hierarchy(default_hierarchy()).local["goal"]

    ranked = sorted(top, key=top.__getitem__, reverse=True)
    assert set(ranked[:2]) == {"fraud_risk", "credit_risk"}


def test_default_hierarchy_is_a_fresh_dict_each_call() -> None:
    first = default_hierarchy()
    first["root"] = "changed"

    assert default_hierarchy()["root"] == "goal"
    assert DEFAULT_HIERARCHY_PATH.is_file()


def test_default_lender_config_values() -> None:
    config = default_lender_config("bank-a")

    assert (config.tenant_id, config.version) == ("bank-a", 1)
    assert config.approve_below == 0.35
    assert config.decline_at_or_above == 0.60
    assert config.fraud_alert_threshold == 0.70
    assert config.lr_weight_adjust_limit == 0.10
    assert set(config.leaf_weights) == DEFAULT_LEAVES
    assert sum(config.leaf_weights.values()) == pytest.approx(1.0)
    assert config.ahp.consistent


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tenant_id": ""}, "tenant_id must be a non-empty string"),
        ({"tenant_id": None}, "tenant_id must be a non-empty string"),
        ({"version": 0}, "version must be an integer >= 1"),
        ({"version": True}, "version must be an integer >= 1"),
        ({"version": "2"}, "version must be an integer >= 1"),
        ({"approve_below": 0.7, "decline_at_or_above": 0.6}, "approve_below .* must not exceed"),
        ({"approve_below": -0.1}, "approve_below must be in"),
        ({"decline_at_or_above": 1.5}, "decline_at_or_above must be in"),
        ({"fraud_alert_threshold": float("nan")}, "fraud_alert_threshold must be in"),
        ({"lr_weight_adjust_limit": "0.1"}, "lr_weight_adjust_limit must be a number"),
        ({"lr_weight_adjust_limit": True}, "lr_weight_adjust_limit must be a number"),
        ({"hierarchy": [1]}, "hierarchy must be an object"),
        ({"hierarchy": "{not json"}, "hierarchy is not valid JSON"),
        (
            {
                "hierarchy": {
                    "root": "g",
                    "nodes": [{"name": "g", "criteria": ["x"], "weights": {"x": 1}}],
                }
            },
            "hierarchy has leaves that are not risk indicators: x",
        ),
    ],
)
def test_invalid_config_is_rejected(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(LenderConfigError, match=message):
        LenderConfig.from_dict(config_dict(**changes))


def test_inconsistent_hierarchy_is_rejected_naming_tenant_version_and_node() -> None:
    hierarchy = default_hierarchy()
    fraud = next(node for node in hierarchy["nodes"] if node["name"] == "fraud_risk")
    fraud["matrix"] = [
        [1, 9, 1 / 9, 1],
        [1 / 9, 1, 9, 1],
        [9, 1 / 9, 1, 1],
        [1, 1, 1, 1],
    ]

    with pytest.raises(
        LenderConfigError, match=r"tenant 'bank-a' v3: hierarchy: node 'fraud_risk': inconsistent"
    ):
        LenderConfig.from_dict(config_dict(version=3, hierarchy=hierarchy))


def test_missing_fields_are_named() -> None:
    data = config_dict()
    del data["approve_below"], data["version"]

    with pytest.raises(
        LenderConfigError, match="tenant 'bank-a' is missing version, approve_below"
    ):
        LenderConfig.from_dict(data)


def test_thresholds_may_meet_and_integers_are_accepted() -> None:
    config = LenderConfig.from_dict(
        config_dict(approve_below=0, decline_at_or_above=0, fraud_alert_threshold=1)
    )

    assert config.approve_below == 0.0 and isinstance(config.approve_below, float)


# --- round trips and immutability ------------------------------------------------------------


def test_dict_round_trip_and_unknown_keys_are_ignored() -> None:
    original = default_lender_config("bank-a")

    again = LenderConfig.from_dict({**original.to_dict(), "published_by": "risk-team"})

    assert again == original
    assert again.leaf_weights == original.leaf_weights


def test_hierarchy_may_arrive_as_a_json_string() -> None:
    data = config_dict(hierarchy=orjson.dumps(default_hierarchy()).decode())

    config = LenderConfig.from_dict(data)

    assert config.hierarchy == default_hierarchy()


def test_config_is_immutable_and_detached_from_the_callers_dict() -> None:
    hierarchy = default_hierarchy()
    config = LenderConfig.from_dict(config_dict(hierarchy=hierarchy))
    weights_before = dict(config.leaf_weights)

    hierarchy["nodes"][0]["matrix"][0][1] = 9
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.version = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.leaf_weights["device_risk"] = 1.0  # type: ignore[index]

    assert config.hierarchy == default_hierarchy()
    assert dict(config.leaf_weights) == weights_before
    assert config.to_dict()["hierarchy"] is not config.hierarchy


# --- the book ----------------------------------------------------------------------------


def versioned(tenant: str, version: int, approve_below: float = 0.35) -> LenderConfig:
    return LenderConfig.from_dict(
        config_dict(tenant_id=tenant, version=version, approve_below=approve_below)
    )


def test_book_keeps_the_newest_version_and_ignores_redelivery() -> None:
    book = LenderConfigBook()

    assert book.apply(versioned("bank-a", 2))
    assert not book.apply(versioned("bank-a", 2, approve_below=0.1))  # same version redelivered
    assert not book.apply(versioned("bank-a", 1))  # older, replayed from the compacted topic
    assert book.apply(versioned("bank-b", 1))
    assert book.apply(versioned("bank-a", 5))

    latest = book.get("bank-a")
    assert latest is not None and latest.version == 5
    assert book.tenants() == ["bank-a", "bank-b"]
    assert len(book) == 2 and "bank-b" in book and "bank-c" not in book


def test_book_falls_back_to_the_default_config() -> None:
    book = LenderConfigBook()

    fallback = book.config_for("bank-c")

    assert fallback == default_lender_config("bank-c")
    assert book.config_for("bank-c") is fallback
    assert book.get("bank-c") is None and len(book) == 0
    book.apply(versioned("bank-c", 2))
    assert book.config_for("bank-c").version == 2


@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=12))
def test_book_holds_the_highest_version_whatever_the_delivery_order(versions: list[int]) -> None:
    book = LenderConfigBook()
    configs = {v: versioned("bank-a", v) for v in set(versions)}

    applied = [book.apply(configs[v]) for v in versions]

    newest = book.get("bank-a")
    assert newest is not None and newest.version == max(versions)
    expected = [v > max(versions[:i], default=0) for i, v in enumerate(versions)]
    assert applied == expected


def test_face_match_threshold_is_optional_and_validated() -> None:
    assert default_lender_config("bank-a").face_match_threshold is None
    # A config stored before the field existed has no such key: the shipped threshold applies.
    stored = default_lender_config("bank-a").to_dict()
    del stored["face_match_threshold"]
    assert LenderConfig.from_dict(stored).face_match_threshold is None
    strict = LenderConfig.from_dict(config_dict(face_match_threshold=0.55))
    assert strict.face_match_threshold == 0.55
    assert LenderConfig.from_dict(strict.to_dict()) == strict
    for bad in (1.5, -0.1, "high", float("nan")):
        with pytest.raises(LenderConfigError, match="face_match_threshold"):
            LenderConfig.from_dict(config_dict(face_match_threshold=bad))
