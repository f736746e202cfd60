"""The console's lender configs: live AHP reports, refusals naming the cell, new versions."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from greencredit.agents.lender_configs import config_from_event
from greencredit.console.lenders import (
    JudgementsRefused,
    LenderBook,
    StaleVersion,
    base_event,
    edit_config,
    judgement_report,
)
from greencredit.models.ahp import evaluate_hierarchy
from greencredit.streams.codec import AvroCodec
from tests.factories import example, native

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
# The goal node's criteria: fraud_risk, credit_risk, green_esg, behaviour.
CONSISTENT_GOAL = [[1, 2, 3, 5], ["1/2", 1, 2, 3], ["1/3", "1/2", 1, 2], [0.2, "1/3", 0.5, 1]]
# fraud > credit, credit > green, but green 9x fraud: contradictory.
INCONSISTENT_GOAL = [[1, 5, "1/9", 5], ["1/5", 1, 5, 5], [9, "1/5", 1, 5], ["1/5", "1/5", "1/5", 1]]


def published_event(version: int = 3, **changes) -> dict:
    event = example("lender_config")
    event.update(
        event_id=str(uuid.uuid4()),
        config_version=version,
        occurred_at=NOW.isoformat(),
        green_pricing=json.dumps({"base_rate_bps": 800}),
    )
    event.update(changes)
    return native("greencredit.v1.LenderConfig", event)


def test_a_lender_without_a_config_edits_the_engine_default():
    event = base_event("bank-x")
    assert event["config_version"] == 1
    report = judgement_report(event, {})
    assert report["valid"] and report["consistent"] and report["error"] is None
    assert report["cr_total"] < 0.1 and abs(sum(report["leaf_weights"].values()) - 1) < 1e-9
    assert set(report["nodes"]) == {"goal", "fraud_risk", "credit_risk"}  # the pairwise ones


def test_the_report_recomputes_cr_with_models_ahp():
    event = base_event("bank-x")
    report = judgement_report(event, {"goal": CONSISTENT_GOAL})
    criteria = event["nodes"][0]["criteria"]
    expected = evaluate_hierarchy(
        {
            "root": "goal",
            "nodes": [{"name": "goal", "criteria": criteria, "matrix": CONSISTENT_GOAL}],
        }
    )
    assert report["nodes"]["goal"]["cr"] == pytest.approx(expected.node_results["goal"].cr)
    assert report["nodes"]["goal"]["weights"] == pytest.approx(expected.local["goal"])


def test_an_inconsistent_matrix_is_reported_with_the_judgement_to_revisit():
    report = judgement_report(base_event("bank-x"), {"goal": INCONSISTENT_GOAL})
    assert report["valid"] and not report["consistent"]
    assert report["nodes"]["goal"]["cr"] >= 0.1
    assert "CR" in report["error"] and "node 'goal'" in report["error"]
    cell = report["cell"]
    assert cell["node"] == "goal" and f"matrix[{cell['row']}][{cell['col']}]" in report["error"]


@pytest.mark.parametrize(
    ("cell", "value", "row", "col", "words"),
    [
        ((0, 1), "abc", 0, 1, "not a number"),
        ((0, 2), 12, 0, 2, "Saaty"),
        ((1, 0), 3, 0, 1, "expected"),  # not the reciprocal of matrix[0][1] = 2
        ((2, 2), 2, 2, 2, "itself"),
    ],
)
def test_an_invalid_judgement_is_refused_naming_its_cell(cell, value, row, col, words):
    matrix = [list(r) for r in CONSISTENT_GOAL]
    matrix[cell[0]][cell[1]] = value
    report = judgement_report(base_event("bank-x"), {"goal": matrix})
    assert not report["valid"] and not report["consistent"]
    assert report["cell"] == {"node": "goal", "row": row, "col": col}
    assert f"matrix[{row}][{col}]" in report["error"] and words in report["error"]


@pytest.mark.parametrize(
    ("matrices", "words"),
    [
        ({"nope": [[1]]}, "not in the hierarchy"),
        ({"green_esg": [[1, 2], [0.5, 1]]}, "direct weights"),
        ([[1]], "must be an object"),
    ],
)
def test_edits_outside_the_pairwise_nodes_are_refused(matrices, words):
    with pytest.raises(JudgementsRefused, match=words):
        judgement_report(base_event("bank-x"), matrices)


def test_a_consistent_edit_becomes_the_next_version_the_worker_accepts():
    book = LenderBook()
    assert book.apply(published_event(3))
    edited = edit_config(book, "lender-green-bank", 3, {"goal": CONSISTENT_GOAL}, NOW)
    event = edited.event
    assert event["config_version"] == 4 and event["occurred_at"] == NOW
    AvroCodec().encode("greencredit.lender-config", event)  # valid on the wire
    config = config_from_event(event)  # the worker's own validation
    goal = next(n for n in event["nodes"] if n["name"] == "goal")
    # Reciprocals are exact, whatever was typed ("1/3", 0.2, ...).
    for i in range(4):
        for j in range(4):
            assert goal["matrix"][i][j] * goal["matrix"][j][i] == pytest.approx(1.0, abs=1e-12)
    assert goal["matrix"][0][1] == 2.0 and goal["matrix"][3][0] == 0.2
    assert config.ahp.local["goal"] == pytest.approx(edited.report["nodes"]["goal"]["weights"])
    # Thresholds and optional parts are those of the version edited.
    assert event["approve_below"] == published_event(3)["approve_below"]
    assert json.loads(event["green_pricing"]) == {"base_rate_bps": 800}
    # Same tenant and version -> same event id (a repeated publish is one event).
    assert (
        edited.event["event_id"]
        == edit_config(book, "lender-green-bank", 3, {"goal": CONSISTENT_GOAL}, NOW).event[
            "event_id"
        ]
    )


def test_publishing_is_refused_for_inconsistent_invalid_or_stale_edits():
    book = LenderBook()
    with pytest.raises(JudgementsRefused, match="CR") as refused:
        edit_config(book, "bank-x", 1, {"goal": INCONSISTENT_GOAL}, NOW)
    assert refused.value.report["cell"]["node"] == "goal"
    bad = [list(r) for r in CONSISTENT_GOAL]
    bad[0][3] = 0
    with pytest.raises(JudgementsRefused, match=r"matrix\[0\]\[3\]"):
        edit_config(book, "bank-x", 1, {"goal": bad}, NOW)
    with pytest.raises(StaleVersion, match="version 1"):
        edit_config(book, "bank-x", 2, {"goal": CONSISTENT_GOAL}, NOW)
    with pytest.raises(JudgementsRefused, match="base_version"):
        edit_config(book, "bank-x", "1", {"goal": CONSISTENT_GOAL}, NOW)


def test_the_book_keeps_the_newest_valid_version():
    book = LenderBook()
    assert not book.published("lender-green-bank")
    assert book.apply(published_event(2))
    assert not book.apply(published_event(1))  # older
    assert not book.apply(published_event(2))  # redelivered
    bad_nodes = published_event(5)["nodes"]
    bad_nodes[0]["matrix"] = INCONSISTENT_GOAL_NUMBERS
    assert not book.apply(published_event(5, nodes=bad_nodes))  # the worker refuses it too
    assert book.current("lender-green-bank")["config_version"] == 2
    assert book.tenants() == ["lender-green-bank"]


INCONSISTENT_GOAL_NUMBERS = [[1, 9, 1 / 9, 1], [1 / 9, 1, 9, 1], [9, 1 / 9, 1, 1], [1, 1, 1, 1]]
