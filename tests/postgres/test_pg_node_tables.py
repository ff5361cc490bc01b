"""The Postgres tables equal Node Sidequest's, and Node's tables are adopted, not rebuilt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pg_relations import relations
from sidequest_node_schema import MIGRATION_NAMES, create_node_tables

from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.migrations import revisions
from sidequest_sql.schema import CLAIM_INDEX, COUNTED_AT_INDEX, QUEUE_STATE_INDEX, UNIQUE_DIGEST_INDEX, VERSION_TABLE

pytestmark = pytest.mark.postgres

TABLES = ("sidequest_queues", "sidequest_jobs")
# The indexes this library adds to Node's tables.
OUR_INDEXES = {CLAIM_INDEX, QUEUE_STATE_INDEX, COUNTED_AT_INDEX}
# Columns Node Sidequest does not have: a Node process inserting rows leaves them to their defaults.
OUR_COLUMNS = {("sidequest_jobs", "priority", "integer", "NO", None, 32, "NO", "0")}


def columns(conn: sa.Connection, schema: str) -> set[tuple[object, ...]]:
    rows = conn.execute(
        sa.text(
            "SELECT table_name, column_name, data_type, is_nullable, character_maximum_length, "
            "numeric_precision, is_identity, replace(column_default, :prefix, '') "
            "FROM information_schema.columns WHERE table_schema = :schema AND table_name IN :tables"
        ).bindparams(sa.bindparam("tables", expanding=True)),
        {"schema": schema, "prefix": f"{schema}.", "tables": list(TABLES)},
    )
    return {tuple(row) for row in rows}


def indexes(conn: sa.Connection, schema: str) -> dict[str, str]:
    rows = conn.execute(
        sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :schema AND tablename IN :tables")
        .bindparams(sa.bindparam("tables", expanding=True)),
        {"schema": schema, "tables": list(TABLES)},
    )
    return {name: definition.replace(f" {schema}.", " ") for name, definition in rows}


def constraints(conn: sa.Connection, schema: str) -> set[tuple[str, str, str]]:
    rows = conn.execute(
        sa.text(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = :schema"
        ),
        {"schema": schema},
    )
    return {(table.removeprefix(f"{schema}."), name, definition) for table, name, definition in rows}


# -- column for column ------------------------------------------------------------------


@pytest.fixture
def node_and_ours(
    pg_engine: sa.Engine, new_schema: Callable[..., str], make_backend: Callable[..., SQLBackend]
) -> tuple[str, str]:
    node_ref, ours = new_schema(), new_schema()
    with pg_engine.begin() as conn:
        create_node_tables(conn, node_ref)
    make_backend(ours).migrate()
    return node_ref, ours


def test_the_columns_equal_node_sidequests(pg_engine: sa.Engine, node_and_ours: tuple[str, str]) -> None:
    node_ref, ours = node_and_ours
    with pg_engine.connect() as conn:
        node_columns, our_columns = columns(conn, node_ref), columns(conn, ours)

    assert len(node_columns) == 5 + 24
    # Every column of Node's is there, the same; ours adds only columns with a default.
    assert our_columns - OUR_COLUMNS == node_columns
    assert OUR_COLUMNS <= our_columns


def test_the_unique_index_and_constraints_equal_node_sidequests(
    pg_engine: sa.Engine, node_and_ours: tuple[str, str]
) -> None:
    node_ref, ours = node_and_ours
    with pg_engine.connect() as conn:
        node_indexes, our_indexes = indexes(conn, node_ref), indexes(conn, ours)
        node_constraints, our_constraints = constraints(conn, node_ref), constraints(conn, ours)

    assert our_indexes[UNIQUE_DIGEST_INDEX] == node_indexes[UNIQUE_DIGEST_INDEX]
    assert "WHERE (unique_digest IS NOT NULL)" in our_indexes[UNIQUE_DIGEST_INDEX]
    # Every index of Node's is there, the same; ours adds only its own indexes.
    assert {name: our_indexes[name] for name in node_indexes} == node_indexes
    assert set(our_indexes) - set(node_indexes) == OUR_INDEXES
    node_tables = {c for c in node_constraints if c[0] in TABLES}
    assert {c for c in our_constraints if c[0] in TABLES} == node_tables


# -- adoption -----------------------------------------------------------------------------


def seed_node_rows(conn: sa.Connection, schema: str, *, backoff_columns: bool) -> None:
    """Rows as a Node process writes them: two queues, and jobs in several states."""
    conn.exec_driver_sql(
        f'INSERT INTO "{schema}".sidequest_queues (name, state, concurrency, priority) '
        "VALUES ('default', 'active', 10, 0), ('mail', 'paused', 2, 5)"
    )
    extra_columns, extra_values = (", retry_delay, backoff_strategy", ", 250, 'fixed'") if backoff_columns else ("", "")
    conn.exec_driver_sql(
        f'INSERT INTO "{schema}".sidequest_jobs (queue, state, script, class, args, constructor_args, '
        f"attempt, max_attempts, inserted_at, available_at, completed_at, unique_digest{extra_columns}) VALUES "
        "('default', 'waiting', 'a.js', 'A', '[1, {\"k\": true}]', '[]', 0, 5, "
        f"  '2024-01-01T00:00:01Z', '2024-01-01T00:00:01Z', NULL, 'digest-a'{extra_values}), "
        "('default', 'waiting', 'b.js', 'B', '[]', '[\"x\"]', 0, 5, "
        f"  '2024-01-01T00:00:02Z', '2024-01-01T00:00:02Z', NULL, NULL{extra_values}), "
        "('default', 'completed', 'c.js', 'C', '[]', '[]', 1, 5, "
        f"  '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z', '2024-01-01T00:01:00Z', NULL{extra_values}), "
        "('mail', 'waiting', 'm.js', 'M', '{\"to\": \"x@y\"}', '[]', 0, 3, "
        f"  '2024-01-01T00:00:03Z', '2099-01-01T00:00:00Z', NULL, NULL{extra_values})"
    )


def rows(conn: sa.Connection, schema: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the Node tables, in Node's own columns."""
    return {
        "queues": list(conn.exec_driver_sql(f'SELECT * FROM "{schema}".sidequest_queues ORDER BY id')),
        "jobs": list(
            conn.exec_driver_sql(
                "SELECT id, queue, state, script, class, args, constructor_args, timeout, attempt, "
                "max_attempts, result, errors, inserted_at, attempted_at, available_at, completed_at, "
                "failed_at, canceled_at, claimed_by, claimed_at, unique_digest, uniqueness_config "
                f'FROM "{schema}".sidequest_jobs ORDER BY id'
            )
        ),
        "knex": list(conn.exec_driver_sql(f'SELECT name FROM "{schema}".sidequest_migrations ORDER BY id')),
    }


@pytest.mark.parametrize(
    ("node_migrations", "applied"),
    [(3, revisions()[2:]), (2, revisions()[1:])],
    ids=["with-backoff-columns", "without-backoff-columns"],
)
def test_node_tables_are_adopted_with_their_rows(
    pg_engine: sa.Engine,
    new_schema: Callable[..., str],
    make_backend: Callable[..., SQLBackend],
    node_migrations: int,
    applied: list[str],
) -> None:
    schema = new_schema()
    with pg_engine.begin() as conn:
        create_node_tables(conn, schema, migrations=node_migrations)
        seed_node_rows(conn, schema, backoff_columns=node_migrations == 3)
    with pg_engine.connect() as conn:
        before, oids_before = rows(conn, schema), relations(conn, schema)

    backend = make_backend(schema, worker_name="python-worker", clock=lambda: datetime(2024, 6, 1, tzinfo=UTC))
    assert backend.migrate() == applied
    assert backend.migrate() == []

    with pg_engine.connect() as conn:
        assert rows(conn, schema) == before
        assert before["knex"] == [(name,) for name in MIGRATION_NAMES[:node_migrations]]
        oids_after = relations(conn, schema)
        version = conn.exec_driver_sql(f'SELECT version_num FROM "{schema}".{VERSION_TABLE}').scalars().all()
        assert "alembic_version" not in oids_after
    # Nothing was dropped and made again: every relation Node made is the very same one.
    assert {name: oids_after[name] for name in oids_before} == oids_before
    assert set(oids_after) - set(oids_before) >= {VERSION_TABLE, *OUR_INDEXES}
    assert version == revisions()[-1:]

    # The adopted rows are read and claimed like any other.
    assert [q.name for q in backend.list_queues()] == ["mail", "default"]
    assert backend.get_queue("mail").state == "paused"
    first = backend.get_job(1)
    assert (first.job_class, first.args, first.unique_digest) == ("A", [1, {"k": True}], "digest-a")
    assert first.inserted_at == datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)
    expected_backoff = (250, "fixed") if node_migrations == 3 else (None, "exponential")
    assert (first.retry_delay, first.backoff_strategy) == expected_backoff
    assert backend.count_jobs().total == 4
    claimed = backend.claim_pending_job("default", quantity=10)
    assert [(job.id, job.state, job.claimed_by) for job in claimed] == [
        (1, "claimed", "python-worker"),
        (2, "claimed", "python-worker"),
    ]
    assert backend.claim_pending_job("mail") == []  # available only in 2099

    # A Node process, which knows only its own columns, still writes rows that Python reads.
    with pg_engine.begin() as conn:
        new_id = conn.exec_driver_sql(
            f'INSERT INTO "{schema}".sidequest_jobs (queue, state, script, class, args, constructor_args, '
            "attempt, max_attempts, available_at) VALUES ('default', 'waiting', 'n.js', 'N', '[]', '[]', 0, 5, "
            "'2024-01-02T00:00:00Z') RETURNING id"
        ).scalar_one()
    assert new_id == 5
    assert [job.id for job in backend.claim_pending_job("default")] == [new_id]


def test_adopted_tables_accept_new_jobs_after_nodes_ids(
    pg_engine: sa.Engine, new_schema: Callable[..., str], make_backend: Callable[..., SQLBackend]
) -> None:
    schema = new_schema()
    with pg_engine.begin() as conn:
        create_node_tables(conn, schema)
        seed_node_rows(conn, schema, backoff_columns=True)
    backend = make_backend(schema)
    backend.migrate()

    job = backend.create_new_job(NewJobData("default", "p.py", "P", available_at=datetime.now(UTC) - timedelta(1)))

    assert job.id == 5
    assert backend.create_new_queue("python").id == 3
