"""Shared fixtures. Integration tests get a real embedded broker and Redis, once per session."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from greencredit.infra.embedded import EmbeddedStack, free_port
from greencredit.infra.endpoints import Endpoints
from greencredit.infra.topic_admin import ensure_topics
from greencredit.schemas import examples_dir, schema_dir
from greencredit.streams.topics import TOPICS

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration/ is marked `integration`."""
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """The embedded Tansu + redis-server (or external ones from the environment)."""
    external_kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    external_redis = os.environ.get("REDIS_URL")
    embedded = EmbeddedStack(tmp_path_factory.mktemp("stack"))
    state = embedded.up(external_kafka, external_redis)
    try:
        ensure_topics({"bootstrap.servers": state.kafka}, TOPICS)
        yield Endpoints(str(state.kafka), str(state.redis))
    finally:
        embedded.down()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One embedded PostgreSQL for the whole session; its admin URL (database ``postgres``).

    Tests make their own databases on it (``fresh_database``). Under root the server runs as
    the wheel's system user (infra/postgres.py).
    """
    from greencredit.infra.postgres import start_postgres, stop_postgres

    state = tmp_path_factory.mktemp("postgres")
    pid, url = start_postgres(state, free_port(), state / "postgres.log")
    try:
        yield url.rsplit("/", 1)[0] + "/postgres"
    finally:
        stop_postgres(pid)


def fresh_database(admin_url: str) -> str:
    """A new, empty database on the session's PostgreSQL; its SQLAlchemy URL."""
    import uuid

    from greencredit.infra.postgres import create_database

    name = f"test_{uuid.uuid4().hex[:12]}"
    create_database(admin_url, name)
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def example_events() -> list[tuple[str, str, dict[str, Any]]]:
    """(example name, topic, JSON-form event) for every shipped example."""
    out = []
    for path in sorted(examples_dir().glob("*.json")):
        raw = json.loads((schema_dir() / f"{path.stem}.avsc").read_text())
        full_name = f"{raw['namespace']}.{raw['name']}"
        spec = next(t for t in TOPICS if t.schema == full_name)
        out.append((path.stem, spec.name, json.loads(path.read_text())))
    return out
