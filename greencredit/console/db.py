"""The console's PostgreSQL tables (SQLAlchemy Core), the async engine and the migrations.

The tables here describe the schema the Alembic migrations in ``migrations/versions`` build;
queries use them, migrations never import them (a migration is frozen history).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from greencredit.infra.embedded import EmbeddedStack, StackError
from greencredit.settings import Settings

__all__ = [
    "MIGRATIONS",
    "audit",
    "case_events",
    "cases",
    "connect",
    "database_url",
    "feedback",
    "login_attempts",
    "metadata",
    "migrate",
    "proposals",
    "sessions",
    "users",
]

MIGRATIONS = Path(__file__).with_name("migrations")

metadata = sa.MetaData()
_TS = sa.DateTime(timezone=True)
_TEXTS = ARRAY(sa.Text)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("roles", _TEXTS, nullable=False),
    sa.Column("lenders", _TEXTS, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("password_changed_at", _TS, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),  # SHA-256 of the cookie value
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.Text, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("last_seen_at", _TS, nullable=False),
    sa.Column("expires_at", _TS, nullable=False),
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("at", _TS, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
)

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("case_id", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False, unique=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("occurred_at", _TS, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("typologies", _TEXTS, nullable=False),
    sa.Column("subject_event_id", sa.Text, nullable=False),
    sa.Column("subject_type", sa.Text),
    sa.Column("reasons", JSONB, nullable=False),
    sa.Column("record", JSONB, nullable=False),  # the masked alert / decision, JSON form
    sa.Column("status", sa.Text, nullable=False),  # open | in_progress | closed
    sa.Column("resolution", sa.Text),
    sa.Column("owner", sa.Text),
    sa.Column("label", sa.Text),
    sa.Column("label_event_id", sa.Text),
    sa.Column("labelled_by", sa.Text),
    sa.Column("labelled_at", _TS),
    sa.Column("ingested_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
)

case_events = sa.Table(
    "case_events",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("case_id", sa.Text, sa.ForeignKey("cases.case_id"), nullable=False),
    sa.Column("at", _TS, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("detail", JSONB, nullable=False),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("case_key", sa.Text, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("analyst_id", sa.Text, nullable=False),
    sa.Column("labelled_at", _TS),
)

proposals = sa.Table(
    "proposals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("base_version", sa.Integer, nullable=False),
    sa.Column("event", JSONB, nullable=False),  # the candidate config, JSON form
    sa.Column("cr_total", sa.Float, nullable=False),
    sa.Column("report", JSONB, nullable=False),
    sa.Column("proposed_by", sa.Text, nullable=False),
    sa.Column("proposed_at", _TS, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # pending | approved | rejected
    sa.Column("decided_by", sa.Text),
    sa.Column("decided_at", _TS),
    sa.Column("published_version", sa.Integer),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("at", _TS, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("tenant_id", sa.Text),
    sa.Column("target", sa.Text),
    sa.Column("address", sa.Text),
    sa.Column("detail", JSONB, nullable=False),
)


def database_url(settings: Settings) -> str:
    """DATABASE_URL (as an asyncpg SQLAlchemy URL), else the running embedded PostgreSQL's."""
    url = settings.database_url
    if not url:
        state = EmbeddedStack(settings.state_dir).running()
        if state is None or not state.postgres:
            raise StackError(
                "DATABASE_URL is not set and no embedded PostgreSQL is running in "
                f"{settings.state_dir}: run `greencredit stack up` or set DATABASE_URL"
            )
        url = state.postgres
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def connect(url: str) -> AsyncEngine:
    """An async engine (asyncpg) on ``url``; connections are checked before use."""
    return create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


async def migrate(engine: AsyncEngine) -> None:
    """Bring the database to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    def upgrade(connection: sa.Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        # One console migrates at a time: others wait here, then find nothing to do.
        await connection.execute(sa.text("SELECT pg_advisory_xact_lock(7152150)"))
        await connection.run_sync(upgrade)
