"""Console schema: users, sessions, cases, timeline, labels, proposals, audit.

Users and their sign-in attempts and sessions; cases, their timeline and feedback labels;
lender policy proposals; the audit.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of the console."""
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("roles", ARRAY(sa.Text), nullable=False),
        sa.Column("lenders", ARRAY(sa.Text), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("password_changed_at", TS, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("csrf_token", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
    )
    op.create_index("login_attempts_user", "login_attempts", ["username", "at"])
    op.create_index("login_attempts_address", "login_attempts", ["address", "at"])
    op.create_table(
        "cases",
        sa.Column("case_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False, unique=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("typologies", ARRAY(sa.Text), nullable=False),
        sa.Column("subject_event_id", sa.Text, nullable=False),
        sa.Column("subject_type", sa.Text),
        sa.Column("reasons", JSONB, nullable=False),
        sa.Column("record", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("resolution", sa.Text),
        sa.Column("owner", sa.Text),
        sa.Column("label", sa.Text),
        sa.Column("label_event_id", sa.Text),
        sa.Column("labelled_by", sa.Text),
        sa.Column("labelled_at", TS),
        sa.Column("ingested_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('open', 'in_progress', 'closed')", name="case_status"),
    )
    op.create_index("cases_tenant_time", "cases", ["tenant_id", "occurred_at"])
    op.create_index("cases_subject", "cases", ["subject_event_id"])
    op.create_table(
        "case_events",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("case_id", sa.Text, sa.ForeignKey("cases.case_id"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("detail", JSONB, nullable=False),
    )
    op.create_index("case_events_case", "case_events", ["case_id", "id"])
    op.create_table(
        "feedback",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("case_key", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("analyst_id", sa.Text, nullable=False),
        sa.Column("labelled_at", TS),
    )
    op.create_index("feedback_case_key", "feedback", ["case_key"])
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("base_version", sa.Integer, nullable=False),
        sa.Column("event", JSONB, nullable=False),
        sa.Column("cr_total", sa.Float, nullable=False),
        sa.Column("report", JSONB, nullable=False),
        sa.Column("proposed_by", sa.Text, nullable=False),
        sa.Column("proposed_at", TS, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("decided_by", sa.Text),
        sa.Column("decided_at", TS),
        sa.Column("published_version", sa.Integer),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="proposal_status"),
    )
    op.create_index("proposals_tenant", "proposals", ["tenant_id", "id"])
    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("tenant_id", sa.Text),
        sa.Column("target", sa.Text),
        sa.Column("address", sa.Text),
        sa.Column("detail", JSONB, nullable=False),
    )


def downgrade() -> None:
    """Drop the console's tables."""
    for table in (
        "audit",
        "proposals",
        "feedback",
        "case_events",
        "cases",
        "login_attempts",
        "sessions",
        "users",
    ):
        op.drop_table(table)
