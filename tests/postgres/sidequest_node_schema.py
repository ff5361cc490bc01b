"""The tables Node Sidequest's own knex migrations make on Postgres, as plain DDL.

This is the reference the Python tables must equal column for column, and
the database that ``migrate()`` must adopt without breaking. The statements
are what knex emits for Sidequest's migrations 1 to 3, plus knex's own
bookkeeping tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection

MIGRATION_1_CREATE_QUEUES = [
    """
    CREATE TABLE sidequest_queues (
        id bigserial PRIMARY KEY,
        name varchar(255) NOT NULL,
        state varchar(255) NOT NULL,
        concurrency integer NOT NULL,
        priority integer NOT NULL
    )
    """,
    "ALTER TABLE sidequest_queues ADD CONSTRAINT sidequest_queues_name_unique UNIQUE (name)",
]

MIGRATION_2_CREATE_JOBS = [
    """
    CREATE TABLE sidequest_jobs (
        id bigserial PRIMARY KEY,
        queue varchar(255) NOT NULL,
        state varchar(255) NOT NULL,
        script varchar(255) NOT NULL,
        class varchar(255) NOT NULL,
        args jsonb NOT NULL,
        constructor_args jsonb NOT NULL,
        timeout integer,
        attempt integer NOT NULL,
        max_attempts integer NOT NULL,
        result jsonb,
        errors jsonb,
        inserted_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
        attempted_at timestamptz,
        available_at timestamptz NOT NULL,
        completed_at timestamptz,
        failed_at timestamptz,
        canceled_at timestamptz,
        claimed_by varchar(255),
        claimed_at timestamptz,
        unique_digest varchar(255),
        uniqueness_config jsonb
    )
    """,
    "CREATE INDEX sidequest_jobs_queue_index ON sidequest_jobs (queue)",
    """
    CREATE UNIQUE INDEX sidequest_jobs_unique_digest_active_idx
        ON sidequest_jobs (unique_digest) WHERE unique_digest IS NOT NULL
    """,
]

MIGRATION_3_BACKOFF_COLUMNS = [
    """
    ALTER TABLE sidequest_jobs
        ADD COLUMN retry_delay integer,
        ADD COLUMN backoff_strategy text NOT NULL DEFAULT 'exponential'
    """,
]

KNEX_BOOKKEEPING = [
    """
    CREATE TABLE sidequest_migrations (
        id serial PRIMARY KEY,
        name varchar(255),
        batch integer,
        migration_time timestamptz
    )
    """,
    "CREATE TABLE sidequest_migrations_lock (index serial PRIMARY KEY, is_locked integer)",
    "INSERT INTO sidequest_migrations_lock (is_locked) VALUES (0)",
]

MIGRATION_NAMES = [
    "1_create_queues.cjs",
    "2_create_jobs_table.cjs",
    "3_create_exponential_backoff_column.cjs",
]


def create_node_tables(conn: Connection, schema: str, *, migrations: int = 3) -> None:
    """Run Node Sidequest's first ``migrations`` (2 or 3) migrations in ``schema``, as knex would.

    ``schema`` is created; the caller commits.
    """
    if migrations not in (2, 3):
        raise ValueError("Node Sidequest's tables exist from migration 2 on")
    conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    conn.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')
    statements = [*KNEX_BOOKKEEPING, *MIGRATION_1_CREATE_QUEUES, *MIGRATION_2_CREATE_JOBS]
    if migrations == 3:
        statements += MIGRATION_3_BACKOFF_COLUMNS
    for statement in statements:
        conn.exec_driver_sql(statement)
    for name in MIGRATION_NAMES[:migrations]:
        conn.exec_driver_sql(
            "INSERT INTO sidequest_migrations (name, batch, migration_time) VALUES (%(name)s, 1, now())",
            {"name": name},
        )
    conn.exec_driver_sql("SET LOCAL search_path TO DEFAULT")
