"""The Faust app: one consumer group, raw-bytes topics, the agents registered on import.

Start it with ``greencredit worker`` or ``faust -A greencredit.agents.app worker``.
Agents register themselves through ``register(app, topics, runtime)`` in their modules.
Values are raw bytes on purpose: the project's codec decodes them inside the agents, so an
undecodable message becomes a dead letter instead of an error Faust logs and skips.
"""

from __future__ import annotations

import faust

from greencredit.agents import (
    applications,
    devices,
    feedback,
    health,
    lender_configs,
    loans,
    transactions,
)
from greencredit.agents.kafka_compat import QuietWorker, bound_fetch_wait
from greencredit.agents.runtime import Runtime
from greencredit.infra.endpoints import resolve_endpoints
from greencredit.settings import Settings, get_settings
from greencredit.streams.topics import TOPICS

__all__ = ["app", "build_app", "runtime", "topics"]


def _credentials(settings: Settings) -> faust.SASLCredentials | None:
    if not settings.kafka_sasl_mechanism:
        return None
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username or "",
        password=password.get_secret_value() if password else "",
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=None,
    )


def build_app(settings: Settings) -> faust.App:
    """A Faust app wired to the configured (or embedded) Kafka."""
    endpoints = resolve_endpoints(settings)
    bound_fetch_wait(settings.kafka_fetch_max_wait_ms)
    session = settings.kafka_session_timeout_s
    return faust.App(
        "greencredit",
        broker=[f"kafka://{server}" for server in endpoints.kafka.split(",")],
        broker_credentials=_credentials(settings),
        # State lives in Redis (shared by every worker), not in RocksDB tables.
        store="memory://",
        # Tansu makes a group's first join wait ~half the session timeout: keep it short.
        broker_session_timeout=session,
        broker_heartbeat_interval=min(1.0, session / 4),
        broker_rebalance_timeout=max(session * 2, 10.0),
        consumer_auto_offset_reset="earliest",
        # Topics come from the registry (`greencredit topics create`), never implicitly.
        topic_allow_declare=False,
        topic_disable_leader=True,
        producer_acks=-1,
        web_port=settings.worker_web_port,
        web_host=settings.worker_web_host,
        web_in_thread=False,
        # Commit acknowledged offsets often: a restarted worker replays little.
        broker_commit_interval=1.0,
        Worker=QuietWorker,
    )


app = build_app(get_settings())


def _raw_topic(name: str) -> faust.TopicT:
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


topics = {spec.name: _raw_topic(spec.name) for spec in TOPICS}
runtime = Runtime(get_settings())


async def _on_partitions_revoked(sender: object, *args: object, **kwargs: object) -> None:
    runtime.on_rebalance()


async def _on_partitions_assigned(sender: object, *args: object, **kwargs: object) -> None:
    runtime.on_assigned()


app.on_partitions_revoked.connect(_on_partitions_revoked)  # type: ignore[arg-type]
app.on_partitions_assigned.connect(_on_partitions_assigned)  # type: ignore[arg-type]


for _module in (applications, transactions, devices, feedback, lender_configs, loans, health):
    _module.register(app, topics, runtime)
