"""Run the benchmarks: `python -m bench` (all) or `python -m bench NAME ...`.

Several names run one after another, each in a process of its own: the kernel benchmarks
pin themselves to one core, and the stream benchmarks' servers would inherit that.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["BENCHMARKS", "main"]

ROOT = Path(__file__).resolve().parent.parent
# name -> (module, what it measures); modules are imported only when run (see above).
BENCHMARKS = {
    "scoring": ("bench_scoring", "scoring kernel, batched and single events, one core"),
    "face_blacklist": ("bench_face_blacklist", "blacklist match, 100,000 entries"),
    "face": ("bench_face", "face check of a 640x480 photo"),
    "face_streams": ("bench_face_streams", "applications with 25 % selfies vs 0 %, loop stalls"),
    "pipeline": ("bench_pipeline", "throughput: passthrough, decode-only, full pipeline"),
    "latency": ("bench_latency", "event-to-decision latency vs offered load"),
    "scaling": ("bench_scaling", "1 vs 2 workers on loan-applications"),
    "memory": ("bench_memory", "worker RSS over a long mixed stream"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="memory: events to push (1,000,000)"
    )
    parser.add_argument(
        "--throughput-events",
        type=int,
        default=20_000,
        help="pipeline, scaling: applications per measurement (20,000)",
    )
    parser.add_argument(
        "--loads",
        default="100,200,300,500,1000,2000",
        help="latency: offered loads, events/s, comma-separated (100,200,300,500,1000,2000)",
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="latency: seconds per offered load (20)"
    )
    return parser


def _runner(name: str, args: argparse.Namespace) -> Callable[[], Any]:
    module = importlib.import_module(f"bench.{BENCHMARKS[name][0]}")
    options: dict[str, dict[str, Any]] = {
        "pipeline": {"events": args.throughput_events},
        "scaling": {"events": args.throughput_events},
        "latency": {"loads": args.loads_list, "seconds": args.seconds},
        "memory": {"events": args.events},
    }
    return lambda: module.main(**options.get(name, {}))


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in args.names:
        if name not in BENCHMARKS:
            parser.error(f"unknown benchmark {name!r}: choose from {', '.join(BENCHMARKS)}")
    try:
        args.loads_list = sorted({int(x) for x in args.loads.split(",") if x.strip()})
    except ValueError:
        parser.error(f"--loads: comma-separated integers expected, got {args.loads!r}")
    if not args.loads_list or min(args.loads_list) <= 0:
        parser.error("--loads: at least one load, each > 0 events/s")
    for option in ("events", "throughput_events", "seconds"):
        if getattr(args, option) <= 0:
            parser.error(f"--{option.replace('_', '-')} must be > 0")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks; 0 when every one finished, 1 otherwise."""
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    _check(parser, args)
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    if len(names) == 1:
        _runner(names[0], args)()
        return 0
    options = [a for a in argv if a not in BENCHMARKS]
    failed = []
    for name in names:
        print(f"== {name}: {BENCHMARKS[name][1]}", flush=True)
        code = subprocess.call(  # noqa: S603 - our interpreter, our module
            [sys.executable, "-m", "bench", name, *options], cwd=ROOT
        )
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
