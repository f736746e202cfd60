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
    "streams": ("bench_streams", "the engine vs the bare passthrough, every topic, one run"),
    "hop": ("bench_hop", "Faust's per-event cost: bare Faust hop vs librdkafka loop"),
    "latency": ("bench_latency", "event-to-decision latency vs offered load"),
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
        help="streams, hop: pre-loaded applications (20,000)",
    )
    parser.add_argument(
        "--transactions", type=int, default=30_000, help="streams: transactions (30,000)"
    )
    parser.add_argument(
        "--device-signals", type=int, default=30_000, help="streams: device signals (30,000)"
    )
    parser.add_argument(
        "--scaling-events",
        type=int,
        default=10_000,
        help="streams: applications per worker count (10,000)",
    )
    parser.add_argument(
        "--stream-loads",
        default="500,1000",
        help="streams: offered loads for latency, events/s (500,1000)",
    )
    parser.add_argument(
        "--stream-seconds", type=float, default=15.0, help="streams: seconds per load (15)"
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
        "streams": {
            "applications": args.throughput_events,
            "transactions": args.transactions,
            "device_signals": args.device_signals,
            "loads": args.stream_loads_list,
            "seconds": args.stream_seconds,
            "scaling_applications": args.scaling_events,
        },
        "hop": {"applications": args.throughput_events},
        "latency": {"loads": args.loads_list, "seconds": args.seconds},
        "memory": {"events": args.events},
    }
    return lambda: module.main(**options.get(name, {}))


def _loads(parser: argparse.ArgumentParser, option: str, text: str) -> list[int]:
    try:
        loads = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        parser.error(f"--{option}: comma-separated integers expected, got {text!r}")
    if not loads or min(loads) <= 0:
        parser.error(f"--{option}: at least one load, each > 0 events/s")
    return loads


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in args.names:
        if name not in BENCHMARKS:
            parser.error(f"unknown benchmark {name!r}: choose from {', '.join(BENCHMARKS)}")
    args.loads_list = _loads(parser, "loads", args.loads)
    args.stream_loads_list = _loads(parser, "stream-loads", args.stream_loads)
    sizes = ("events", "throughput_events", "seconds", "transactions", "device_signals")
    for option in (*sizes, "scaling_events", "stream_seconds"):
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
