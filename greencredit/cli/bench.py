"""`greencredit bench`: run the benchmarks of the source checkout (`python -m bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from ._output import fail

__all__ = ["bench_command"]

# greencredit/cli/bench.py -> the checkout root, where bench/ lives (it is not installed).
_ROOT = Path(__file__).resolve().parents[2]


def bench_command(
    names: list[str] = typer.Argument(
        None,
        help="scoring, face_blacklist, face, face_streams, streams, latency, memory (default: all)",
    ),
    events: int = typer.Option(1_000_000, help="memory: events to push."),
    throughput_events: int = typer.Option(20_000, help="streams: applications."),
    loads: str = typer.Option(
        "100,200,300,500,1000,2000", help="latency: offered loads, events/s."
    ),
    seconds: float = typer.Option(20.0, help="latency: seconds per load."),
) -> None:
    """Run benchmarks; each writes bench/results/<name>.json (and its plot)."""
    if not (_ROOT / "bench" / "__main__.py").is_file():
        fail(f"no bench/ next to the installed package ({_ROOT}): run from a source checkout")
    argv = [
        *(names or []),
        f"--events={events}",
        f"--throughput-events={throughput_events}",
        f"--loads={loads}",
        f"--seconds={seconds}",
    ]
    # Its own process: the runner validates the names and options with clear messages, and
    # the kernel benchmarks pin their process to one core.
    code = subprocess.call([sys.executable, "-m", "bench", *argv], cwd=_ROOT)  # noqa: S603
    raise typer.Exit(code)
