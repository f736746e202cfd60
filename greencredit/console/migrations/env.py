"""Alembic environment: migrations run on the connection the caller hands over.

``greencredit.console.db.migrate`` opens it (async engine, ``run_sync``), so the console and
``greencredit users migrate`` use the same URL resolution and no alembic.ini is needed.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `greencredit users migrate` (or start the console)")
context.configure(connection=connection, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
