"""What Postgres's catalog holds in a schema, for tests that check where things land."""

from __future__ import annotations

import sqlalchemy as sa


def relations(conn: sa.Connection, schema: str) -> dict[str, int]:
    """Every table, index and sequence in ``schema``, by name, with its oid."""
    rows = conn.execute(
        sa.text(
            "SELECT c.relname, c.oid::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema"
        ),
        {"schema": schema},
    )
    return {name: oid for name, oid in rows}
