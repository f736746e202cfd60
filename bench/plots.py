"""PNG figures of the benchmark results (matplotlib, from the `bench` extra).

Each function takes a result dict as written to JSON, saves one figure and returns its file
name, or None when matplotlib is not installed (the JSON is the result; a plot is a view).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_latency", "plot_memory", "plot_stream_latency", "plot_stream_ratios"]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is missing (pip install -e '.[bench]'): no plot")
        return None
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_stream_ratios(result: dict[str, Any], path: Path) -> str | None:
    """Bars: pipeline / passthrough per input topic, with each topic's target."""
    plt = _pyplot()
    if plt is None:
        return None
    sections = [("applications", "applications"), ("transactions", "transactions")]
    sections.append(("device_signals", "device signals"))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for x, (key, _) in enumerate(sections):
        section = result[key]
        bar = ax.bar(x, section["ratio"], color="#4c78a8" if section["met"] else "#e45756")[0]
        ax.hlines(section["target_min"], x - 0.4, x + 0.4, colors="black", linestyles="--")
        ax.annotate(
            f"{section['ratio']:.2f}x\n{section['pipeline_events_per_second']:,}"
            f" / {section['passthrough_events_per_second']:,}/s",
            (bar.get_x() + bar.get_width() / 2, section["ratio"]),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(range(len(sections)), [label for _, label in sections])
    ax.set_ylabel("pipeline / bare Faust passthrough")
    ax.set_ylim(0, max(1.0, *(result[k]["ratio"] for k, _ in sections)) * 1.3)
    ax.set_title("Throughput against the passthrough, one run (dashed: target)")
    return _save(plt, fig, path)


def plot_stream_latency(result: dict[str, Any], path: Path) -> str | None:
    """Bars: p50 and p99 per offered load, worker and passthrough, with the p99 target."""
    plt = _pyplot()
    if plt is None:
        return None
    latency = result["latency"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    series = [
        ("pipeline", "p50_ms", "#9ecae9"),
        ("pipeline", "p99_ms", "#4c78a8"),
        ("passthrough", "p50_ms", "#d9d9d9"),
        ("passthrough", "p99_ms", "#888888"),
    ]
    loads = [p["offered_events_per_second"] for p in latency["pipeline"]]
    width = 0.8 / len(series)
    for i, (stage, key, color) in enumerate(series):
        by_load = {p["offered_events_per_second"]: p.get(key) or 0 for p in latency[stage]}
        xs = [x + (i - 1.5) * width for x in range(len(loads))]
        ax.bar(
            xs, [by_load.get(n, 0) for n in loads], width, color=color, label=f"{stage} {key[:-3]}"
        )
    ax.axhline(
        latency["target_p99_ms_at_500"],
        color="#e45756",
        linestyle="--",
        label="p99 target at 500/s",
    )
    ax.set_xticks(range(len(loads)), [f"{n:,}/s" for n in loads])
    ax.set_yscale("log")
    ax.set_ylabel("event timestamp -> output record (ms, log)")
    ax.set_title("Application latency at offered loads")
    ax.legend(fontsize=7)
    return _save(plt, fig, path)


def plot_latency(result: dict[str, Any], path: Path) -> str | None:
    """Lines: p50/p99/max event-to-output latency vs offered load, log y, per stage."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"pipeline": "-", "passthrough": ":"}
    colors = {"p50_ms": "#4c78a8", "p99_ms": "#e45756", "max_ms": "#72b7b2"}
    for stage, style in styles.items():
        points = [p for p in result[stage] if p.get("observed")]
        loads = [p["offered_events_per_second"] for p in points]
        for key, color in colors.items():
            ax.plot(
                loads,
                [p[key] for p in points],
                style,
                marker="o",
                color=color,
                label=f"{stage} {key[:-3]}",
            )
    ax.axhline(35, color="grey", linestyle="--", linewidth=1, label="target p99 35 ms @ 500/s")
    ax.axhline(100, color="black", linestyle="-.", linewidth=1, label="100 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.set_xticks(sorted({p["offered_events_per_second"] for p in result["pipeline"]}))
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(plain)
    ax.set_xlabel("offered load (applications per second)")
    ax.set_ylabel("event timestamp -> output record (ms, log)")
    ax.set_title("Latency vs offered load")
    ax.legend(fontsize=7, ncol=2)
    return _save(plt, fig, path)


def plot_memory(result: dict[str, Any], path: Path) -> str | None:
    """Worker RSS vs events processed, with the second-half trend line."""
    plt = _pyplot()
    if plt is None:
        return None
    samples = result["samples"]
    xs = [s["events"] for s in samples]
    ys = [s["rss_mb"] for s in samples]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(xs, ys, color="#4c78a8", label="worker RSS")
    trend = result["second_half_trend"]
    if trend is not None:
        x0, x1 = trend["from_events"], xs[-1]
        ax.plot(
            [x0, x1],
            [trend["intercept_mb"] + trend["mb_per_event"] * x for x in (x0, x1)],
            "--",
            color="#e45756",
            label=f"trend {trend['mb_per_100k_events']:+.1f} MB / 100k events",
        )
    ax.axhline(400, color="grey", linestyle="--", linewidth=1, label="target 400 MB")
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.set_xlabel("events processed")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(0, max([*ys, 400]) * 1.15)
    ax.set_title("Worker memory under a long mixed stream")
    ax.legend(loc="lower right")
    return _save(plt, fig, path)
