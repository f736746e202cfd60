"""Shared CLI output: JSON on stdout, one-line errors on stderr with exit code 2."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import orjson
import typer

from greencredit.streams.masking import scrub_text


def print_json(value: Any) -> None:
    """Indented JSON on stdout."""
    sys.stdout.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    )
    sys.stdout.write("\n")


def fail(message: str, code: int = 2) -> NoReturn:
    """A clear error (PII masked) and a non-zero exit, never a traceback."""
    typer.echo(f"error: {scrub_text(message)}", err=True)
    raise typer.Exit(code)
