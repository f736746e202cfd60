"""The live terminal view: events in, decisions, alerts, money out, latency, learning."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .observer import Observer
from .summary import percentile

__all__ = ["LiveView"]


class LiveView:
    """Builds the renderable from the observer's counters; call `render()` on each refresh."""

    def __init__(self, days: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]simulated day"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        self.task = self.progress.add_task("days", total=days)
        self.learning: dict[str, Any] = {}  # latest sample of DemoRun.learning

    def advance(self) -> None:
        """One simulated day done."""
        self.progress.advance(self.task)

    def render(self, observed: Observer) -> Group:
        """Tables of the current counts."""
        with observed.lock:
            inputs = {t.removeprefix("greencredit."): len(ids) for t, ids in observed.seen.items()}
            decisions = Counter(d["decision"] for d in observed.decisions.values())
            alerts = Counter(a["source"] for a in observed.alerts.values())
            escalations = Counter(
                e["collection_mode"]
                for e in observed.escalations.values()
                if e["transition"] == "ESCALATED"
            )
            disbursed = len(observed.disbursements)
            letters = len(observed.dead_letters)
        latency = observed.latencies_ms(last=2000)
        flow = Table(title="records per topic", show_header=True, expand=True)
        flow.add_column("topic")
        flow.add_column("records", justify="right")
        for name, count in sorted(inputs.items()):
            flow.add_row(name, f"{count:,}")
        out = Table(title="engine output", show_header=True, expand=True)
        out.add_column("what")
        out.add_column("count", justify="right")
        for decision in ("APPROVE", "REVIEW", "DECLINE"):
            out.add_row(f"decision {decision.lower()}", f"{decisions.get(decision, 0):,}")
        for source, count in sorted(alerts.items()):
            out.add_row(f"fraud alert ({source.lower()})", f"{count:,}")
        out.add_row("disbursements", f"{disbursed:,}")
        for mode, count in sorted(escalations.items()):
            out.add_row(f"escalation {mode.lower()}", f"{count:,}")
        out.add_row("dead letters", f"{letters:,}")
        p50, p99 = percentile(latency, 50), percentile(latency, 99)
        out.add_row("latency p50 / p99 (recent)", f"{p50 or 0:.0f} / {p99 or 0:.0f} ms")
        for tenant, models in sorted(self.learning.items()):
            if isinstance(models, dict):
                out.add_row(
                    f"rolling AUC LR / BP ({tenant}, {models['labels']} labels)",
                    f"{models['online_lr_auc'] or '-'} / {models['bp_auc'] or '-'}",
                )
        grid = Table.grid(expand=True)
        grid.add_row(flow, out)
        return Group(self.progress, grid)
