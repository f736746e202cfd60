"""``greencredit ahp FILE.json``: output keys, and exit code 2 with one line for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from greencredit.cli import app as greencredit_app
from greencredit.cli.ahp import ahp_command
from greencredit.models.lender_config import DEFAULT_HIERARCHY_PATH

SINGLE = {"criteria": ["a", "b", "c"], "matrix": [[1, 2, 4], ["1/2", 1, 2], [0.25, 0.5, 1]]}
CYCLIC = {"criteria": ["a", "b", "c"], "matrix": [[1, 3, "1/5"], [0.333, 1, 3], [5, "1/3", 1]]}


@pytest.fixture
def app() -> typer.Typer:
    # A callback keeps `ahp` a named subcommand, as on the real multi-command app.
    cli = typer.Typer()
    cli.callback()(lambda: None)
    cli.command("ahp")(ahp_command)
    return cli


def run(app: typer.Typer, path: Path) -> Any:
    return CliRunner().invoke(app, ["ahp", str(path)])


def write(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "judgements.json"
    path.write_bytes(content if isinstance(content, bytes) else orjson.dumps(content))
    return path


def test_single_matrix_output(app: typer.Typer, tmp_path: Path) -> None:
    result = run(app, write(tmp_path, SINGLE))

    assert result.exit_code == 0, result.stderr
    out = orjson.loads(result.stdout)
    assert set(out) == {"weights", "lambda_max", "ci", "cr", "consistent"}
    assert out["weights"] == pytest.approx({"a": 4 / 7, "b": 2 / 7, "c": 1 / 7})
    assert out["lambda_max"] == pytest.approx(3.0)
    assert out["cr"] == pytest.approx(0.0, abs=1e-12)
    assert out["consistent"] is True


def test_hierarchy_output(app: typer.Typer) -> None:
    result = run(app, DEFAULT_HIERARCHY_PATH)

    assert result.exit_code == 0, result.stderr
    out = orjson.loads(result.stdout)
    assert set(out) == {
        "weights", "lambda_max", "ci", "cr", "consistent",
        "cr_total", "global_weights", "local_weights",
    }  # fmt: skip
    assert sum(out["weights"].values()) == pytest.approx(1.0)
    assert "behaviour_risk" in out["weights"] and "fraud_risk" not in out["weights"]
    assert out["global_weights"]["goal"] == 1.0
    assert out["global_weights"]["fraud_risk"] == pytest.approx(
        out["local_weights"]["goal"]["fraud_risk"]
    )
    assert out["cr_total"] < 0.1 and out["consistent"] is True
    assert out["lambda_max"] >= 4


def test_root_with_direct_weights_has_no_matrix_figures(app: typer.Typer, tmp_path: Path) -> None:
    doc = {
        "root": "g",
        "nodes": [{"name": "g", "criteria": ["x", "y"], "weights": {"x": 1, "y": 3}}],
    }

    out = orjson.loads(run(app, write(tmp_path, doc)).stdout)

    assert out["lambda_max"] is None and out["cr"] is None
    assert out["weights"] == {"x": 0.25, "y": 0.75}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"{not json", "is not valid JSON"),
        (
            {"criteria": ["a", "b"], "matrix": [[1, "two"], [0.5, 1]]},
            "invalid AHP document: matrix[0][1] (a vs b)",
        ),
        ({"root": "goal", "nodes": []}, "invalid AHP document: hierarchy nodes"),
        ([1, 2, 3], "invalid AHP document: an AHP document must be a JSON object"),
        (CYCLIC, "inconsistent judgements: CR = "),
    ],
)
def test_bad_input_exits_2_with_one_line(
    app: typer.Typer, tmp_path: Path, content: Any, message: str
) -> None:
    path = tmp_path / "missing.json" if content is None else write(tmp_path, content)

    result = run(app, path)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_directory_is_reported_not_raised(app: typer.Typer, tmp_path: Path) -> None:
    result = run(app, tmp_path)

    assert result.exit_code == 2
    assert "cannot read" in result.stderr


def test_registered_on_the_greencredit_app() -> None:
    assert "ahp" in [command.name for command in greencredit_app.registered_commands]


def test_console_entry_point(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "greencredit", "ahp", str(write(tmp_path, SINGLE))],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    bad = subprocess.run(
        [sys.executable, "-m", "greencredit", "ahp", str(tmp_path / "nope.json")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert ok.returncode == 0, ok.stderr
    assert orjson.loads(ok.stdout)["consistent"] is True
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: cannot read") and "Traceback" not in bad.stderr
