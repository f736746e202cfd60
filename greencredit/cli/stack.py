"""`greencredit stack up|down|status` and `greencredit topics create|list`."""

from __future__ import annotations

import typer

from greencredit.infra.embedded import EmbeddedStack, StackError
from greencredit.infra.endpoints import resolve_endpoints
from greencredit.infra.topic_admin import ensure_topics
from greencredit.settings import get_settings
from greencredit.streams.topics import TOPICS

from ._output import fail, print_json

stack_app = typer.Typer(help="The embedded Kafka (Tansu) + Redis stack for development.")
topics_app = typer.Typer(help="The topic registry.")


@stack_app.command("up")
def stack_up(
    json_output: bool = typer.Option(False, "--json", help="Print only the addresses as JSON."),
) -> None:
    """Start the broker, Redis and PostgreSQL on free loopback ports, create the topics."""
    settings = get_settings()
    stack = EmbeddedStack(settings.state_dir)
    try:
        state = stack.up(
            settings.kafka_bootstrap_servers,
            settings.redis_url,
            with_postgres=True,
            external_postgres=settings.database_url,
        )
        report = ensure_topics(
            settings.kafka_client_config(str(state.kafka)),
            replication_factor=settings.kafka_replication_factor,
        )
    except (StackError, Exception) as exc:
        fail(f"stack up failed: {exc}")
    addresses = {"kafka": state.kafka, "redis": state.redis, "postgres": state.postgres}
    if json_output:
        print_json(addresses)
        return
    print_json(
        {
            **addresses,
            "state": str(stack.state_path),
            "topics": report,
            "processes": [p.__dict__ for p in state.processes],
        }
    )


@stack_app.command("down")
def stack_down() -> None:
    """Stop what `stack up` started (SIGINT then SIGKILL for Tansu)."""
    settings = get_settings()
    stopped = EmbeddedStack(settings.state_dir).down()
    print_json({"stopped": stopped})


@stack_app.command("status")
def stack_status() -> None:
    """Say whether the embedded stack is running and where. Exit 1 when it is not."""
    settings = get_settings()
    stack = EmbeddedStack(settings.state_dir)
    state = stack.running()
    if state is None:
        print_json({"running": False, "state": str(stack.state_path)})
        raise typer.Exit(1)
    print_json(
        {
            "running": True,
            "kafka": state.kafka,
            "redis": state.redis,
            "processes": [p.__dict__ for p in state.processes],
        }
    )


@topics_app.command("create")
def topics_create() -> None:
    """Create every registered topic that does not exist yet (idempotent)."""
    settings = get_settings()
    try:
        endpoints = resolve_endpoints(settings)
        report = ensure_topics(
            settings.kafka_client_config(endpoints.kafka),
            replication_factor=settings.kafka_replication_factor,
        )
    except Exception as exc:
        fail(str(exc))
    print_json(report)


@topics_app.command("list")
def topics_list() -> None:
    """Print the topic registry."""
    print_json(
        [
            {
                "name": t.name,
                "schema": t.schema,
                "key": t.key_field,
                "partitions": t.partitions,
                "retention_ms": t.retention_ms,
                "compacted": t.compacted,
                "direction": t.direction,
                "doc": t.doc,
            }
            for t in TOPICS
        ]
    )
