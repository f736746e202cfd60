"""`greencredit demo`: the engine on simulated traffic, with a live view and a summary.

Starts the embedded broker, Redis and PostgreSQL (or uses KAFKA_BOOTSTRAP_SERVERS /
REDIS_URL / DATABASE_URL), the worker(s), the console with a demo analyst (printed) whose
session the simulated analysts label through, and the simulator; shows the live view; ends
with a summary table, the detection report against the simulator's ground truth and an
audit-chain check.
"""

from __future__ import annotations

import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from greencredit.console.db import database_url
from greencredit.demo.desk import (
    DEMO_USER,
    ConsoleDesk,
    DeskError,
    demo_user,
    start_console,
    stop_console,
)
from greencredit.demo.failover import WorkerKill
from greencredit.demo.live import LiveView
from greencredit.demo.observer import Observer
from greencredit.demo.runner import DemoRun, seed_blacklist
from greencredit.demo.summary import summary as build_summary
from greencredit.infra.audit_head import partitions_of, verify_partition
from greencredit.infra.embedded import EmbeddedStack
from greencredit.infra.endpoints import Endpoints
from greencredit.infra.topic_admin import ensure_topics
from greencredit.infra.worker_process import WorkerPool
from greencredit.settings import get_settings
from greencredit.streams.codec import AvroCodec
from greencredit.streams.simulation.scenario import TENANTS, Scenario

from ._output import fail, print_json

console = Console(stderr=True)


def demo_command(
    customers: int = typer.Option(400, min=20, help="Simulated honest customers."),
    days: int = typer.Option(90, min=45, help="Simulated days."),
    seed: int = typer.Option(7, help="Seed: the same seed gives the same traffic."),
    workers: int = typer.Option(
        1, min=1, max=8, help="Worker processes (one consumer group, under one supervisor)."
    ),
    kill_worker_at_day: int | None = typer.Option(
        None,
        min=0,
        help="SIGKILL one worker while day N's events flow (the supervisor restarts it); "
        "the summary reports how long until its partitions were decided on again.",
    ),
    summary_file: Path | None = typer.Option(
        None, "--summary", help="Write the summary JSON here."
    ),
    dump: Path | None = typer.Option(
        None, help="Write every topic, decoded and masked, to DIR/<topic>.jsonl."
    ),
    keep: bool = typer.Option(False, help="Leave the stack running afterwards."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Simulate customers, fraud and repayments for DAYS days and show what the engine did."""
    settings = get_settings()
    # Every resource is released on any exit (error, Ctrl-C), last started first: a demo
    # that fails half-way must not leave workers or servers running.
    with ExitStack() as cleanup:
        stack = EmbeddedStack(settings.state_dir)
        state = stack.up(
            settings.kafka_bootstrap_servers,
            settings.redis_url,
            with_postgres=True,
            external_postgres=settings.database_url,
        )
        if not keep:
            cleanup.callback(stack.down)
        endpoints = Endpoints(str(state.kafka), str(state.redis))
        config = settings.kafka_client_config(endpoints.kafka)
        ensure_topics(config)
        codec = AvroCodec()
        work = Path(tempfile.mkdtemp(prefix="greencredit-demo-"))
        console.print(
            f"[bold]greencredit demo[/] kafka={endpoints.kafka} redis={endpoints.redis} "
            f"logs: {work}"
        )
        scenario = Scenario(customers=customers, days=days, seed=seed)
        desk = _console_desk(endpoints.kafka, database_url(settings), work, cleanup)
        seed_blacklist(endpoints.redis, scenario.faces)
        # The simulator owns the clock: the workers must not tick on the wall-clock date.
        pool = WorkerPool(endpoints, work, workers, "demo-workers", DAILY_CHECK_ENABLED="false")
        pool.start()
        cleanup.callback(pool.stop)
        observer = Observer(config, codec, dump)
        observer.start()
        cleanup.callback(observer.join, 10)
        cleanup.callback(observer.stop)
        try:
            fault = WorkerKill(pool, workers - 1, kill_worker_at_day)
            result = _run(config, codec, scenario, observer, pool, json_output, fault, desk)
        except (RuntimeError, DeskError) as exc:
            fail(f"demo: {exc}")
    if summary_file is not None:
        summary_file.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    if json_output:
        print_json(result)
    else:
        _print(result)


def _console_desk(kafka: str, db_url: str, work: Path, cleanup: ExitStack) -> ConsoleDesk:
    """The console with the demo analyst signed in; says where and how to sign in too."""
    password = demo_user(db_url, TENANTS)
    proc, base = start_console(kafka, db_url, work)
    cleanup.callback(stop_console, proc)
    console.print(
        f"[bold]console[/] {base}/ · demo analyst [bold]{DEMO_USER}[/] password "
        f"[bold]{password}[/] (the simulated analysts label as this user)"
    )
    return ConsoleDesk(base, DEMO_USER, password)


def _run(
    config: dict[str, Any],
    codec: AvroCodec,
    scenario: Scenario,
    observer: Observer,
    pool: WorkerPool,
    json_output: bool,
    fault: WorkerKill,
    desk: ConsoleDesk,
) -> dict[str, Any]:
    """Drive the simulated days with the live view; the summary document."""
    pool.wait_assigned(timeout=90)
    view = LiveView(scenario.days)
    quiet = Console(stderr=True, quiet=True)  # --json: nothing but the JSON on stdout
    with Live(
        view.render(observer), console=quiet if json_output else console, refresh_per_second=4
    ) as live:

        def refresh() -> None:
            view.learning = run.learning[-1] if run.learning else {}
            view.advance()
            live.update(view.render(observer))

        run = DemoRun(
            config, codec, scenario, observer, refresh, pool.pages, fault.at_day, desk=desk
        )
        seconds = run.run()
        live.update(view.render(observer))
    health = pool.pages()
    return build_summary(
        observer,
        scenario,
        {
            "simulation": {
                "customers": len(scenario.customers),
                "days": scenario.days,
                "seed": scenario.seed,
                "workers": pool.processes,
                "start": scenario.start.isoformat(),
                "wall_seconds": round(seconds, 1),
            },
            "learning": {
                "rolling_auc_on_labels": run.learning,
                "online_lr_risk_auc_vs_truth": run.auc,
            },
            "console": {
                "url": desk.base,
                "user": DEMO_USER,
                "labels_published": desk.labelled,
            },
            "audit_chain": _audit(config, codec),
            "worker_processed": sum(h.get("processed", 0) for h in health),
            **({"failover": fault.report(observer)} if fault.day is not None else {}),
        },
    )


def _audit(config: dict[str, Any], codec: AvroCodec) -> dict[str, Any]:
    audit = {}
    for topic in ("greencredit.decisions", "greencredit.disbursements"):
        reports = [
            verify_partition(config, topic, p, codec).report for p in partitions_of(config, topic)
        ]
        audit[topic.removeprefix("greencredit.")] = {
            "records": sum(r.count for r in reports),
            "intact": all(r.ok for r in reports),
        }
    return audit


def _print(result: dict[str, Any]) -> None:
    # Piped to a file or CI log, rich would wrap at 80 columns and cut the typology names.
    out = Console() if sys.stdout.isatty() else Console(width=120)
    table = Table(title="greencredit demo summary", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for key, value in result.items():
        if key != "detection":
            table.add_row(key.replace("_", " "), _format(value))
    out.print(table)
    detection = Table(title="detection against the simulator's ground truth (per case)")
    for column in (
        "typology",
        "cases",
        "found",
        "false +",
        "precision",
        "recall",
        "event precision",
        "event recall",
    ):
        detection.add_column(column, justify="right" if column != "typology" else "left")
    for name, row in result["detection"].items():
        detection.add_row(
            name,
            str(row["cases"]),
            str(row["cases_found"]),
            str(row["false_positives"]),
            _num(row["precision"]),
            _num(row["recall"]),
            _num(row["event_precision"]),
            _num(row["event_recall"]),
        )
    out.print(detection)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _format(value: Any) -> str:
    if isinstance(value, dict):
        return "\n".join(f"{k}: {_format(v)}" for k, v in value.items()) or "-"
    return str(value)
