"""Pure arithmetic of the stream benchmarks: rates, latency percentiles, CPU accounting.

No I/O here, so every rule by which a number in bench/results is computed has a unit test
(tests/unit/test_bench_stats.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

from greencredit.models.stats import percentile

__all__ = [
    "Sample",
    "counter_rate",
    "cpu_at",
    "cpu_in_window",
    "cpu_per_event",
    "idle_since",
    "latency_summary",
    "rate_of",
    "ratio",
]

# (wall-clock seconds, value): a counter or a CPU-seconds reading taken at that time.
Sample = tuple[float, float]


def rate_of(stamps: Iterable[int]) -> float:
    """Messages per second between the first and the last timestamp (ms).

    n messages span n - 1 intervals: the first one marks the start of the clock.
    """
    ordered = sorted(stamps)
    span = (ordered[-1] - ordered[0]) / 1000 if ordered else 0
    return (len(ordered) - 1) / span if span > 0 else 0.0


def counter_rate(samples: Sequence[Sample], total: int) -> dict[str, float]:
    """Rate from polls of a "messages finished" counter that goes from 0 to `total`.

    Each poll gives the exact count at the time it was answered, so the rate between two
    polls is exact; the polls used are the first one that saw work done and the last one
    that saw work left (the start-up and the tail would add up to a poll interval each of
    idle time). When the run was too short to leave two such polls, the first poll that
    saw everything done ends the window instead.
    """
    busy = [(t, c) for t, c in samples if 0 < c < total]
    done = [(t, c) for t, c in samples if c >= total]
    if len(busy) >= 2 and busy[-1][1] > busy[0][1]:
        (t0, c0), (t1, c1) = busy[0], busy[-1]
    elif busy and done:
        (t0, c0), (t1, c1) = busy[0], done[0]
    else:
        raise ValueError(f"too few polls between 0 and {total} to time the run")
    return {
        "events_per_second": (c1 - c0) / (t1 - t0),
        "counted_events": c1 - c0,
        "window_s": t1 - t0,
        "window_end": t1,
    }


def latency_summary(latencies_ms: list[float], offered: int) -> dict[str, Any]:
    """p50/p95/p99/max/mean of the observed latencies; missing ones are counted, not guessed."""
    ordered = sorted(latencies_ms)
    if not ordered:
        return {"offered": offered, "observed": 0}
    return {
        "offered": offered,
        "observed": len(ordered),
        **{f"p{q}_ms": round(percentile(ordered, q) or 0.0, 1) for q in (50, 95, 99)},
        "max_ms": round(ordered[-1], 1),
        "mean_ms": round(sum(ordered) / len(ordered), 1),
    }


def cpu_at(samples: Sequence[Sample], at: float) -> float:
    """CPU seconds at time `at`, linearly interpolated between the two samples around it."""
    if not samples:
        raise ValueError("no CPU samples")
    if at <= samples[0][0]:
        return samples[0][1]
    for (t0, c0), (t1, c1) in pairwise(samples):
        if t0 <= at <= t1:
            return c0 if t1 == t0 else c0 + (c1 - c0) * (at - t0) / (t1 - t0)
    return samples[-1][1]


def _slope(samples: Sequence[Sample], start: float, end: float) -> float:
    return (cpu_at(samples, end) - cpu_at(samples, start)) / (end - start)


def idle_since(
    samples: Sequence[Sample],
    after: float,
    tail_s: float = 2.0,
    window_s: float = 0.5,
    margin: float = 0.1,
    max_idle: float = 0.5,
) -> tuple[float, float] | None:
    """When a process went idle after `after`, and its idle CPU rate (cores); None if not yet.

    A Faust worker is never at 0: with the 10 ms fetch bound its consumers poll the broker
    all the time (about a quarter of a core here). So "idle" is relative: the rate over the
    last `tail_s` seconds sampled is the idle rate, if it is under `max_idle` cores and
    steady (its two halves within `margin`; a tail that still holds the end of the work
    would overstate the idle rate), and the process went idle at the earliest sample time
    >= `after` from which no `window_s` window until the end ran above that rate + `margin`.
    """
    if not samples or samples[-1][0] - after < tail_s + window_s:
        return None
    end, middle = samples[-1][0], samples[-1][0] - tail_s / 2
    halves = (_slope(samples, end - tail_s, middle), _slope(samples, middle, end))
    idle_rate = _slope(samples, end - tail_s, end)
    if idle_rate > max_idle or abs(halves[0] - halves[1]) > margin:
        return None
    since = None
    for t, _ in samples:
        if t < after or t + window_s > end:
            continue
        if _slope(samples, t, t + window_s) > idle_rate + margin:
            since = None
        elif since is None:
            since = t
    return None if since is None else (since, idle_rate)


def ratio(value: float, base: float, target: float) -> dict[str, Any]:
    """value / base with its target (a minimum) and whether it was met."""
    share = value / base if base else 0.0
    return {"ratio": round(share, 3), "target_min": target, "met": share >= target}


def cpu_per_event(
    cpu: Sequence[Sample], stamps_ms: Sequence[int], warm_up: int, until: float
) -> dict[str, Any]:
    """CPU per output from the `warm_up`-th output to `until` (when the process went idle).

    The window opens when output number `warm_up` was produced (cold start, model loading
    and the first batches are left out) and closes at `until`, not at the last output: work
    that follows the last output (opening loans from the disbursements, acks, commits)
    belongs to these events too. Divided by the outputs produced after the window opened.
    """
    ordered = sorted(stamps_ms)
    if len(ordered) <= warm_up:
        raise ValueError(f"{len(ordered)} outputs, not more than the warm-up of {warm_up}")
    start = ordered[warm_up - 1] / 1000 if warm_up else cpu[0][0]
    counted = sum(1 for s in ordered if s / 1000 > start)
    seconds = cpu_at(cpu, until) - cpu_at(cpu, start)
    return {
        "us_per_event": round(seconds / counted * 1e6, 1) if counted else None,
        "cpu_seconds": round(seconds, 3),
        "counted_events": counted,
        "window_s": round(until - start, 3),
    }


def cpu_in_window(cpu: Sequence[Sample], rate: dict[str, float]) -> float | None:
    """CPU µs per event over the window of a counter_rate result."""
    counted = rate["counted_events"]
    if not counted:
        return None
    end = rate["window_end"]
    seconds = cpu_at(cpu, end) - cpu_at(cpu, end - rate["window_s"])
    return round(seconds / counted * 1e6, 1)
