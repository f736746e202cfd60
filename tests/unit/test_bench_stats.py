"""The arithmetic behind bench/results/streams.json: rates, percentiles, CPU accounting."""

from __future__ import annotations

import pytest

from bench.stats import (
    counter_rate,
    cpu_at,
    cpu_in_window,
    cpu_per_event,
    idle_since,
    latency_summary,
    rate_of,
    ratio,
)


def test_rate_counts_intervals_not_messages() -> None:
    # 11 messages 100 ms apart span 1 s: 10 intervals, 10 per second (not 11).
    assert rate_of(range(0, 1001, 100)) == pytest.approx(10.0)
    assert rate_of([5]) == 0.0
    assert rate_of([]) == 0.0


def test_counter_rate_uses_polls_that_saw_work_in_progress() -> None:
    # Idle start-up polls and the polls after the end are left out: only the rate between
    # the first poll with work done and the last one with work left counts.
    polls = [(0.0, 0), (1.0, 0), (1.5, 100), (2.0, 600), (2.5, 1100), (3.0, 1200), (9.0, 1200)]
    rate = counter_rate(polls, 1200)
    assert rate["events_per_second"] == pytest.approx(1000 / 1.0)
    assert rate["counted_events"] == 1000
    assert rate["window_end"] == 2.5


def test_counter_rate_of_a_short_run_ends_at_the_first_complete_poll() -> None:
    polls = [(0.0, 0), (1.0, 400), (1.5, 1000)]
    assert counter_rate(polls, 1000)["events_per_second"] == pytest.approx(600 / 0.5)


def test_counter_rate_refuses_a_run_it_cannot_time() -> None:
    with pytest.raises(ValueError, match="too few polls"):
        counter_rate([(0.0, 0), (1.0, 1000)], 1000)


def test_latency_summary_is_nearest_rank_and_counts_missing_outputs() -> None:
    summary = latency_summary([float(x) for x in range(1, 101)], offered=120)
    assert summary["p50_ms"] == 50.0
    assert summary["p99_ms"] == 99.0
    assert summary["max_ms"] == 100.0
    assert (summary["observed"], summary["offered"]) == (100, 120)
    assert latency_summary([], offered=5) == {"offered": 5, "observed": 0}


def test_cpu_at_interpolates_between_samples() -> None:
    samples = [(10.0, 1.0), (11.0, 2.0), (13.0, 2.0)]
    assert cpu_at(samples, 10.25) == pytest.approx(1.25)
    assert cpu_at(samples, 12.0) == pytest.approx(2.0)
    assert cpu_at(samples, 5.0) == 1.0  # before the first sample: the first value
    assert cpu_at(samples, 20.0) == 2.0


def _busy_then_idle(busy_until: float, end: float, busy: float, idle: float) -> list:
    """CPU samples every 20 ms: `busy` cores until `busy_until`, then `idle` cores."""
    samples, cpu, t = [], 0.0, 0.0
    while t <= end:
        samples.append((t, cpu))
        cpu += 0.02 * (busy if t < busy_until else idle)
        t = round(t + 0.02, 2)
    return samples


def test_idle_since_finds_the_knee_after_the_last_output() -> None:
    # Busy at one core until 5 s (loans still being opened after the last decision at 4 s),
    # then a Faust worker's idle floor of a quarter core.
    samples = _busy_then_idle(5.0, 9.0, busy=1.0, idle=0.25)
    found = idle_since(samples, after=4.0)
    assert found is not None
    since, idle_rate = found
    assert since == pytest.approx(5.0, abs=0.1)
    assert idle_rate == pytest.approx(0.25, abs=0.02)


def test_idle_since_waits_while_the_process_is_still_working() -> None:
    samples = _busy_then_idle(20.0, 9.0, busy=0.9, idle=0.25)
    assert idle_since(samples, after=4.0) is None  # the tail is busy: not idle yet
    short = _busy_then_idle(5.0, 6.0, busy=1.0, idle=0.25)
    assert idle_since(short, after=5.0) is None  # not enough idle time sampled yet
    # The work ended 1.2 s before the last sample: the 2 s tail still holds some of it at
    # under half a core on average, but it is not steady, so the idle rate is not known yet.
    straddling = _busy_then_idle(6.8, 8.0, busy=0.6, idle=0.25)
    assert idle_since(straddling, after=4.0) is None
    assert idle_since(_busy_then_idle(6.8, 9.5, busy=0.6, idle=0.25), after=4.0) is not None


def test_cpu_per_event_skips_warm_up_and_runs_until_idle() -> None:
    # One core busy 0..10 s: CPU seconds = wall seconds. Outputs one per 10 ms from 0 s.
    samples = [(t / 10, t / 10) for t in range(0, 121)]
    stamps = [t * 10 for t in range(1, 1001)]  # ms, 10 ms .. 10 s
    result = cpu_per_event(samples, stamps, warm_up=100, until=11.0)
    # The window opens at the 100th output (1.0 s) and closes at 11 s: 10 s of CPU for
    # the 900 outputs after the 100th; the second after the last output is counted too.
    assert result["counted_events"] == 900
    assert result["cpu_seconds"] == pytest.approx(10.0)
    assert result["us_per_event"] == pytest.approx(10.0 / 900 * 1e6, rel=1e-3)


def test_cpu_per_event_needs_more_outputs_than_the_warm_up() -> None:
    with pytest.raises(ValueError, match="warm-up"):
        cpu_per_event([(0.0, 0.0), (1.0, 1.0)], [100, 200], warm_up=2, until=1.0)


def test_cpu_in_window_divides_by_the_events_of_the_window() -> None:
    samples = [(0.0, 0.0), (2.0, 1.0), (4.0, 3.0)]
    rate = {"counted_events": 1000, "window_s": 2.0, "window_end": 4.0}
    assert cpu_in_window(samples, rate) == pytest.approx(2.0 / 1000 * 1e6)


def test_ratio_reports_the_target_and_whether_it_was_met() -> None:
    assert ratio(400, 1000, 0.5) == {"ratio": 0.4, "target_min": 0.5, "met": False}
    assert ratio(500, 1000, 0.5)["met"] is True
    assert ratio(1, 0, 0.5)["met"] is False  # no baseline: never met
