"""``greencredit ahp FILE.json``: weights and consistency of a lender's AHP judgements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer

from greencredit.models.ahp import (
    AhpInconsistencyError,
    AhpInputError,
    HierarchyResult,
    PairwiseResult,
    parse_ahp_document,
)

__all__ = ["ahp_command", "ahp_report"]


def ahp_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON file: {criteria, matrix} for one pairwise matrix or {root, nodes} "
            "for a hierarchy.",
            metavar="FILE.json",
            show_default=False,
        ),
    ],
) -> None:
    """Print AHP weights, lambda_max, CI and CR as JSON; exit 2 if the file is unusable."""
    try:
        raw = file.read_bytes()
    except OSError as err:
        _fail(f"cannot read {file}: {err.strerror or err}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        _fail(f"{file} is not valid JSON: {err}")
    try:
        result = parse_ahp_document(doc)
    except AhpInconsistencyError as err:
        _fail(f"{file}: {err}")
    except AhpInputError as err:
        _fail(f"{file}: invalid AHP document: {err}")
    typer.echo(orjson.dumps(ahp_report(result), option=orjson.OPT_INDENT_2).decode())


def ahp_report(result: PairwiseResult | HierarchyResult) -> dict[str, Any]:
    """JSON-ready summary; for a hierarchy the matrix figures are the root node's."""
    if isinstance(result, PairwiseResult):
        return {"weights": result.weights, **_consistency(result)}
    root = result.node_results[result.root]
    return {
        "weights": result.leaf_weights,
        # A root given direct weights has no judgements, hence no lambda_max/CI/CR.
        **(_consistency(root) if root is not None else dict.fromkeys(("lambda_max", "ci", "cr"))),
        "consistent": result.consistent,
        "cr_total": result.cr_total,
        "global_weights": result.global_weights,
        "local_weights": result.local,
    }


def _consistency(result: PairwiseResult) -> dict[str, Any]:
    return {
        "lambda_max": result.lambda_max,
        "ci": result.ci,
        "cr": result.cr,
        "consistent": result.consistent,
    }


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code=2)
