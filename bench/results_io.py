"""Where benchmarks put their numbers: bench/results/<name>.json, with the machine, also printed."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_DIR", "machine", "write_result"]

RESULTS_DIR = Path(__file__).parent / "results"
# Taken when the benchmark process starts, before its own load: other work on the box
# (tests, other runs) skews every stream benchmark, so the results say how busy it was.
_LOAD_BEFORE = [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """What ran the benchmark: numbers mean little without it."""
    memory_mb = None
    try:
        import psutil  # type: ignore[import-untyped]  # no stubs installed

        memory_mb = round(psutil.virtual_memory().total / 2**20)
    except ImportError:
        pass
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_mb": memory_mb,
        "arch": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average_1_5_15_min_before": _LOAD_BEFORE,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_result(path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Write `result` plus the machine description as indented JSON to `path`; print it."""
    result = {**result, "machine": machine()}
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    path.write_text(text + "\n")
    print(text)
    return result
