"""Where benchmarks put their numbers: bench/results/<name>.json, also printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def write_result(path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Write `result` as indented JSON to `path`, print it, and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    path.write_text(text + "\n")
    print(text)
    return result
