"""The README's stream benchmark table is rendered from the JSON, and shows the committed run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.report import END, README, RESULTS, START, render_table, replace_block, rows


def _throughput(pipeline: int, passthrough: int, target: float, events: int) -> dict[str, Any]:
    share = round(pipeline / passthrough, 3)
    return {
        "events": events,
        "pipeline_events_per_second": pipeline,
        "passthrough_events_per_second": passthrough,
        "ratio": share,
        "target_min": target,
        "met": share >= target,
    }


def _point(load: int, p50: float, p99: float, observed: int | None = None) -> dict[str, Any]:
    offered = load * 15
    return {
        "offered_events_per_second": load,
        "offered": offered,
        "observed": offered if observed is None else observed,
        "p50_ms": p50,
        "p99_ms": p99,
    }


def _result() -> dict[str, Any]:
    apps = _throughput(1234, 4000, 0.5, 20_000)
    apps["cpu_per_application"] = {
        "us_per_event": 612.4,
        "cpu_seconds": 11.9,
        "counted_events": 19_500,
        "target_max_us": 500,
        "met": False,
    }
    transactions = _throughput(2700, 3000, 0.8, 30_000)
    transactions["passthrough_runs_events_per_second"] = [3100, 2900]
    transactions["consume_only"] = {"counter_events_per_second": 5400}
    transactions["pipeline_vs_consume_only"] = 0.5
    return {
        "applications": apps,
        "transactions": transactions,
        "device_signals": _throughput(2000, 3200, 0.8, 30_000),
        "latency": {
            "pipeline": [_point(500, 21.0, 44.0), _point(1000, 300.0, 900.0, observed=14_000)],
            "passthrough": [_point(500, 12.0, 30.0), _point(1000, 20.0, 60.0)],
            "target_p99_ms_at_500": 50,
            "met": True,
        },
        "scaling": {
            "events": 10_000,
            "runs": [{"decisions_per_second": 800}, {"decisions_per_second": 1100}],
            "ratio_2_vs_1": 1.375,
        },
        "machine": {"date": "2026-12-07T14:00:00+00:00", "cpu": "Test CPU", "cores": 2},
    }


def test_every_must_show_figure_has_a_row_with_its_numbers() -> None:
    table = {what: (target, measured, met) for what, target, measured, met in rows(_result())}
    apps = table["applications, pipeline / passthrough (20,000 pre-loaded)"]
    assert apps == ("≥ 0.5", "1,234 vs 4,000 applications/s: **0.31x**", "**no**")
    cpu = table["worker CPU per application, end to end incl. loan opening"]
    assert cpu[0] == "≤ 500 µs" and "**612 µs**" in cpu[1] and cpu[2] == "**no**"
    transactions = table["transactions, pipeline / passthrough (30,000)"]
    assert transactions[2] == "yes"
    # The consume-only floor is context next to the target's figure, not instead of it.
    assert transactions[1] == (
        "2,700 vs 3,000 transactions/s: **0.90x** (passthrough before / after: 3,100 / 2,900)"
        " (bare Faust consuming only: 5,400/s, pipeline 0.50x of it)"
    )
    assert "0.62x" in table["device signals, pipeline / passthrough (30,000)"][1]
    at_500 = table["application latency at 500/s offered"]
    assert at_500 == (
        "p99 ≤ 50 ms",
        "p50 21 ms, p99 44 ms; passthrough p50 12 ms, p99 30 ms",
        "yes",
    )
    # An offered load not fully decided says so: its percentiles cover only what came out.
    assert "(14,000 of 15,000 decided)" in table["application latency at 1,000/s offered"][1]
    assert "800 vs 1,100 decisions/s: **1.38x**" in table["1 vs 2 workers (10,000 applications)"][1]


def test_table_names_the_run() -> None:
    text = render_table(_result())
    assert text.startswith("| figure | target | measured | met |")
    assert "2026-12-07T14:00:00+00:00: Test CPU, 2 cores" in text


def test_replace_block_keeps_what_surrounds_the_markers() -> None:
    text = f"intro\n{START}\nold table\n{END}\noutro\n"
    assert replace_block(text, "new") == f"intro\n{START}\nnew\n{END}\noutro\n"
    with pytest.raises(ValueError, match="markers"):
        replace_block("no markers here", "new")


def test_committed_readme_shows_the_committed_results() -> None:
    # Fails when a run's JSON is committed without its table (python -m bench.report --write).
    result = json.loads(Path(RESULTS).read_text())
    readme = Path(README).read_text()
    block = readme.split(START, 1)[1].split(END, 1)[0]
    assert block.strip() == render_table(result).strip()
