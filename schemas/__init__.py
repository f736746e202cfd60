"""The event contracts: Avro schemas (``*.avsc``), the id manifest and example events.

Upstream teams read the ``.avsc`` files; Python code reaches them through
:func:`schema_dir` so installed wheels and a source checkout behave the same.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["examples_dir", "history_dir", "schema_dir"]


def schema_dir() -> Path:
    """Folder holding the current ``.avsc`` files and ``manifest.json``."""
    return Path(__file__).resolve().parent


def examples_dir() -> Path:
    """Folder holding one valid example event (JSON) per schema."""
    return schema_dir() / "examples"


def history_dir() -> Path:
    """Folder holding earlier versions of schemas, kept for evolution tests and the manifest."""
    return schema_dir() / "history"
