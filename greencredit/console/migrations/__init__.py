"""Alembic migrations of the console's PostgreSQL schema (run by the console and the CLI)."""
