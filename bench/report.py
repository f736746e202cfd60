"""The README's table of the stream benchmark, rendered from bench/results/streams.json.

`python -m bench.report` prints it; `--write` puts it between the README's markers. The
stream benchmark writes it after every run, and a unit test checks that the committed
README shows the committed JSON, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["END", "README", "START", "render_table", "replace_block", "update_readme"]

README = Path(__file__).resolve().parent.parent / "README.md"
RESULTS = Path(__file__).resolve().parent / "results" / "streams.json"
START = "<!-- bench streams table: start (python -m bench.report --write) -->"
END = "<!-- bench streams table: end -->"


def _met(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _pair(section: dict[str, Any], unit: str) -> str:
    text = (
        f"{section['pipeline_events_per_second']:,} vs {section['passthrough_events_per_second']:,}"
        f" {unit}/s: **{section['ratio']:.2f}x**"
    )
    runs = section.get("passthrough_runs_events_per_second")
    if runs:
        text += f" (passthrough before / after: {' / '.join(f'{r:,}' for r in runs)})"
    return text


def _floor(section: dict[str, Any]) -> str:
    consume = section.get("consume_only")
    if not consume:
        return ""
    return (
        f" (bare Faust consuming only: {consume['counter_events_per_second']:,}/s,"
        f" pipeline {section['pipeline_vs_consume_only']:.2f}x of it)"
    )


def _loans(cpu: dict[str, Any]) -> str:
    if "disbursements_emitted" not in cpu:
        return ""
    idle = "idle" if cpu.get("idle_detected", True) else "no idle seen, counted until"
    return (
        f"; {idle} {cpu['idle_after_last_decision_s']:.1f} s after the last decision,"
        f" {cpu['disbursements_consumed_by_worker']:,} of {cpu['disbursements_emitted']:,}"
        " disbursements consumed back"
    )


def _latency_point(latency: dict[str, Any], stage: str, load: int) -> dict[str, Any] | None:
    return next((p for p in latency[stage] if p["offered_events_per_second"] == load), None)


def _latency_text(point: dict[str, Any] | None) -> str:
    if point is None:
        return "not measured"
    if not point.get("observed"):
        return "no outputs"
    text = f"p50 {point['p50_ms']:,.0f} ms, p99 {point['p99_ms']:,.0f} ms"
    if point["observed"] < point["offered"]:
        text += f" ({point['observed']:,} of {point['offered']:,} decided)"
    return text


def _latency_rows(latency: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for point in latency["pipeline"]:
        load = point["offered_events_per_second"]
        at_target = load == 500
        passthrough = _latency_text(_latency_point(latency, "passthrough", load))
        rows.append(
            (
                f"application latency at {load:,}/s offered",
                f"p99 ≤ {latency['target_p99_ms_at_500']} ms" if at_target else "(report)",
                f"{_latency_text(point)}; passthrough {passthrough}",
                _met(latency["met"]) if at_target else "",
            )
        )
    return rows


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, target, measured, met) per figure of a streams.json result."""
    apps, cpu = result["applications"], result["applications"]["cpu_per_application"]
    table = [
        (
            f"applications, pipeline / passthrough ({apps['events']:,} pre-loaded)",
            f"≥ {apps['target_min']}",
            _pair(apps, "applications"),
            _met(apps["met"]),
        ),
        (
            "worker CPU per application, end to end incl. loan opening",
            f"≤ {cpu['target_max_us']} µs",
            f"**{cpu['us_per_event']:,.0f} µs** ({cpu['cpu_seconds']:.1f} s CPU"
            f" / {cpu['counted_events']:,} decisions{_loans(cpu)})",
            _met(cpu["met"]),
        ),
    ]
    for key, unit in (("transactions", "transactions"), ("device_signals", "signals")):
        section = result[key]
        table.append(
            (
                f"{key.replace('_', ' ')}, pipeline / passthrough ({section['events']:,})",
                f"≥ {section['target_min']}",
                _pair(section, unit) + _floor(section),
                _met(section["met"]),
            )
        )
    table += _latency_rows(result["latency"])
    scaling = result["scaling"]
    one, two = (r["decisions_per_second"] for r in scaling["runs"])
    table.append(
        (
            f"1 vs 2 workers ({scaling['events']:,} applications)",
            "(report)",
            f"{one:,} vs {two:,} decisions/s: **{scaling['ratio_2_vs_1']:.2f}x**",
            "",
        )
    )
    return table


def render_table(result: dict[str, Any]) -> str:
    """The Markdown table, with the run's date and machine under it."""
    lines = ["| figure | target | measured | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(result)]
    machine = result.get("machine") or {}
    lines += [
        "",
        f"Run of {machine.get('date', '?')}: {machine.get('cpu', '?')}, {machine.get('cores', '?')}"
        f" cores, Python {machine.get('python', '?')}, load average before"
        f" {machine.get('load_average_1_5_15_min_before', '?')}.",
    ]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    """`text` with what lies between START and END replaced by `block`."""
    head, found, rest = text.partition(START)
    if not found or END not in rest:
        raise ValueError("the README has no stream benchmark markers")
    tail = rest.split(END, 1)[1]
    return f"{head}{START}\n{block}\n{END}{tail}"


def update_readme(result: dict[str, Any], readme: Path = README) -> None:
    """Write the table into the README (between its markers)."""
    readme.write_text(replace_block(readme.read_text(), render_table(result)))


def main(argv: list[str]) -> int:
    result = json.loads(RESULTS.read_text())
    if "--write" in argv:
        update_readme(result)
    else:
        print(render_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
