"""`greencredit demo`: the engine end to end on the embedded stack, with a summary.

Starts the embedded broker and Redis (or uses KAFKA_BOOTSTRAP_SERVERS / REDIS_URL), a
worker process, publishes a simulated day of events (applications, device signals,
transactions, planted fraud, poison messages), then analyst labels for the reviews, waits
for the engine, prints what came out and verifies the audit chain.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from greencredit.infra.audit_head import partitions_of, verify_partition
from greencredit.infra.embedded import EmbeddedStack
from greencredit.infra.endpoints import Endpoints
from greencredit.infra.topic_admin import ensure_topics
from greencredit.infra.worker_process import WorkerProcess
from greencredit.models.scoring import GREEN_PURPOSES
from greencredit.settings import get_settings
from greencredit.streams.codec import AvroCodec
from greencredit.streams.publish import EventPublisher, ReadResult, read_topic
from greencredit.streams.simulator import Simulator

from ._output import fail, print_json
from .portfolio import read_portfolio

console = Console()
ESCALATIONS = "greencredit.delinquency-escalations"


def _read(config: dict[str, Any], topic: str, codec: AvroCodec) -> list[ReadResult]:
    return list(read_topic(config, topic, codec, idle_timeout=1.0))


def _wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    fail(f"demo: timed out waiting for {what}")


def _money(minor: int) -> str:
    return f"{minor // 100:,}.{minor % 100:02d}"


def demo_command(
    applications: int = typer.Option(200, help="Simulated applications."),
    keep: bool = typer.Option(False, help="Leave the stack running afterwards."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    seed: int = typer.Option(7),
) -> None:
    """Run the engine on a simulated stream and print what it decided."""
    settings = get_settings()
    stack = EmbeddedStack(settings.state_dir)
    state = stack.up(settings.kafka_bootstrap_servers, settings.redis_url)
    endpoints = Endpoints(str(state.kafka), str(state.redis))
    config = settings.kafka_client_config(endpoints.kafka)
    ensure_topics(config)
    codec = AvroCodec()
    work = Path(tempfile.mkdtemp(prefix="greencredit-demo-"))
    worker = WorkerProcess(endpoints, work, "demo-worker").start()
    try:
        if not json_output:
            console.print(
                f"[bold]greencredit demo[/] kafka={endpoints.kafka} "
                f"redis={endpoints.redis}  worker log: {worker.log_path}"
            )
        worker.wait_assigned(timeout=90)
        summary = _run(config, codec, Simulator(seed=seed), applications, worker)
    except RuntimeError as exc:
        fail(str(exc))
    finally:
        worker.stop()
        if not keep:
            stack.down()
    if json_output:
        print_json(summary)
    else:
        _print(summary)


def _run(
    config: dict[str, Any],
    codec: AvroCodec,
    sim: Simulator,
    applications: int,
    worker: WorkerProcess,
) -> dict[str, Any]:
    stream = sim.stream(applications=applications)
    started_ids = {e["event_id"] for t, e in stream.events if t == "greencredit.loan-applications"}
    publisher = EventPublisher(config, codec)
    t0 = time.monotonic()
    for topic, event in stream.events:
        publisher.publish(topic, event)
    for topic, raw in stream.poison:
        publisher.publish_raw(topic, raw, key=b"poison")
    publisher.flush()

    def decided() -> list[dict[str, Any]]:
        results = _read(config, "greencredit.decisions", codec)
        return [
            r.event.value
            for r in results
            if r.event and r.event.value["application_event_id"] in started_ids
        ]

    _wait_until(
        lambda: len({d["application_event_id"] for d in decided()}) >= len(started_ids),
        180,
        "all decisions",
    )
    elapsed = time.monotonic() - t0
    decisions = {d["application_event_id"]: d for d in decided()}.values()
    _label_reviews(publisher, sim, decisions)
    post_loan = _post_loan_month(config, codec, publisher, sim)
    time.sleep(2)  # let the learner take the labels
    summary = _summary(config, codec, stream, list(decisions), elapsed, worker)
    summary["post_loan"] = post_loan
    portfolio = read_portfolio(config, codec).get(sim.tenant_id, {})
    summary["green_portfolio"] = {
        "loans": portfolio.get("loans"),
        "green_loans": portfolio.get("green_loans"),
        "principal": _money(portfolio.get("principal_minor", 0)),
        "green_principal": _money(portfolio.get("green_principal_minor", 0)),
        # The taxonomy has no verified emission factors yet: say so rather than print 0.
        "co2e_avoided_kg": portfolio.get("co2e_avoided_kg") or "no verified factors yet",
    }
    return summary


def _post_loan_month(
    config: dict[str, Any], codec: AvroCodec, publisher: EventPublisher, sim: Simulator
) -> dict[str, Any]:
    """A month later: most borrowers pay instalment 1, some do not; the daily check runs."""
    loans = [r.event.value for r in _read(config, "greencredit.disbursements", codec) if r.event]
    if not loans:
        return {}
    missed = {loan["loan_id"] for n, loan in enumerate(loans) if n % 8 == 0}
    for n, loan in enumerate(loans):
        if loan["loan_id"] in missed:
            continue
        first = loan["schedule"][0]
        paid_at = datetime.combine(first["due_date"], datetime.min.time(), tzinfo=UTC)
        publisher.publish(
            "greencredit.repayments",
            {
                "event_id": sim._id("repayment", n),
                "tenant_id": loan["tenant_id"],
                "occurred_at": paid_at,
                "schema_version": 1,
                "loan_id": loan["loan_id"],
                "instalment_number": 1,
                "due_date": first["due_date"],
                "amount_due_minor": first["amount_due_minor"],
                "amount_paid_minor": first["amount_due_minor"],
                "currency": loan["currency"],
                "paid_at": paid_at,
            },
        )
    publisher.flush()
    time.sleep(2)  # repayments before the check, as in a real day
    as_of = max(loan["schedule"][0]["due_date"] for loan in loans) + timedelta(days=10)
    publisher.publish(
        "greencredit.loan-clock",
        {
            "event_id": sim._id("tick", 0),
            "tenant_id": "*",
            "occurred_at": sim.now,
            "schema_version": 1,
            "as_of": as_of,
        },
    )
    publisher.flush()

    def escalated() -> list[dict[str, Any]]:
        return [r.event.value for r in _read(config, ESCALATIONS, codec) if r.event]

    _wait_until(
        lambda: len({e["loan_id"] for e in escalated()}) >= len(missed),
        60,
        "delinquency escalations",
    )
    escalations = escalated()
    return {
        "daily_check_as_of": as_of.isoformat(),
        "loans_missing_instalment_1": len(missed),
        "escalations": dict(
            Counter(f"{e['level']} -> {e['collection_mode']}/{e['channel']}" for e in escalations)
        ),
    }


def _label_reviews(publisher: EventPublisher, sim: Simulator, decisions: Any) -> None:
    """Fraud ops label what they reviewed; the planted patterns are the bad ones."""
    for n, decision in enumerate(d for d in decisions if d["decision"] == "REVIEW"):
        bad = any(r["code"] in ("DEVICE_FARM", "RISKY_DEVICE") for r in decision["reasons"])
        publisher.publish(
            "greencredit.analyst-feedback",
            {
                "event_id": sim._id("feedback", n),
                "tenant_id": sim.tenant_id,
                "occurred_at": sim.now,
                "schema_version": 1,
                "subject_event_id": decision["application_event_id"],
                "subject_type": "APPLICATION",
                "label": "DEFAULTED" if bad else "REPAID",
                "analyst_id": "demo-analyst",
                "case_id": f"review-{decision['application_id']}",
            },
        )
    publisher.flush()


def _summary(
    config: dict[str, Any],
    codec: AvroCodec,
    stream: Any,
    decisions: list[dict],
    elapsed: float,
    worker: WorkerProcess,
) -> dict[str, Any]:
    disbursements = [
        r.event.value for r in _read(config, "greencredit.disbursements", codec) if r.event
    ]
    alerts = [r.event.value for r in _read(config, "greencredit.fraud-alerts", codec) if r.event]
    letters = [r.event.value for r in _read(config, "greencredit.dead-letter", codec) if r.event]
    by_app = {d["application_id"]: d for d in decisions}
    green = [d for d in disbursements if d["purpose"] in GREEN_PURPOSES]
    audit = {}
    for topic in ("greencredit.decisions", "greencredit.disbursements"):
        reports = [
            verify_partition(config, topic, p, codec).report for p in partitions_of(config, topic)
        ]
        audit[topic] = {
            "records": sum(r.count for r in reports),
            "intact": all(r.ok for r in reports),
        }
    health = worker.health() or {}
    return {
        "applications": len(decisions),
        "seconds_to_decide_all": round(elapsed, 1),
        "decisions": dict(Counter(d["decision"] for d in decisions)),
        "median_score": round(statistics.median(d["score"] for d in decisions), 3),
        "planted": {
            name: {app: by_app[app]["decision"] for app in apps if app in by_app}
            for name, apps in stream.planted.items()
            if name != "takeover"
        },
        "disbursements": {
            "count": len(disbursements),
            "principal": _money(sum(d["amount_minor"] for d in disbursements)),
            "green_count": len(green),
            "green_principal": _money(sum(d["amount_minor"] for d in green)),
            "mean_rate_bps": round(statistics.mean(d["annual_rate_bps"] for d in disbursements))
            if disbursements
            else None,
        },
        "fraud_alerts": dict(Counter(f"{a['source']}/{a['severity']}" for a in alerts)),
        "takeover_alerted": any(a["source_event_id"] in stream.planted["takeover"] for a in alerts),
        "dead_letters": dict(Counter(f"{d['source_topic']}: {d['error_type']}" for d in letters)),
        "audit_chain": audit,
        "worker": {k: health.get(k) for k in ("processed", "dead_lettered")},
    }


def _print(summary: dict[str, Any]) -> None:
    table = Table(title="greencredit demo summary", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for key, value in summary.items():
        table.add_row(key.replace("_", " "), _format(value))
    console.print(table)


def _format(value: Any) -> str:
    if isinstance(value, dict):
        return "\n".join(f"{k}: {_format(v)}" for k, v in value.items()) or "-"
    return str(value)
