"""One database, two migrators: Node Sidequest's own ``migrate()`` and ours, in either order.

Node Sidequest runs for real (``node_sidequest``: the pinned
``@sidequest/postgres-backend`` in ``tests/node``). Its tables are ours
column for column; its ``migrate()`` after ours finds its migrations recorded
in knex's tables and changes nothing; ours after its adopts its tables and
rows, and records what Node has not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from node_sidequest import NodeFailed, NodeSidequest, sidequest_migrations
from pg_relations import relations

from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.migrations import revisions
from sidequest_sql.schema import (
    CLAIM_INDEX,
    COUNTED_AT_INDEX,
    KNEX_LOCK_TABLE,
    KNEX_MIGRATIONS_TABLE,
    KNEX_RECORDS_TABLE,
    QUEUE_STATE_INDEX,
    UNIQUE_DIGEST_INDEX,
    VERSION_TABLE,
)

pytestmark = pytest.mark.postgres

# Node Sidequest's tables: its own two and knex's two.
NODE_TABLES = ("sidequest_queues", "sidequest_jobs", KNEX_MIGRATIONS_TABLE, KNEX_LOCK_TABLE)
# The indexes this library adds to Node's tables.
OUR_INDEXES = {CLAIM_INDEX, QUEUE_STATE_INDEX, COUNTED_AT_INDEX}
# Columns Node Sidequest does not have: a Node process inserting rows leaves them to their defaults.
OUR_COLUMNS = {("sidequest_jobs", "priority", "integer", "NO", None, 32, "NO", "0")}


def columns(conn: sa.Connection, schema: str, tables: tuple[str, ...] | None = None) -> set[tuple[object, ...]]:
    """The columns of ``tables`` (every table if None) in ``schema``, their schema left out of defaults."""
    rows = conn.execute(
        sa.text(
            "SELECT table_name, column_name, data_type, is_nullable, character_maximum_length, "
            "numeric_precision, is_identity, replace(column_default, :prefix, '') "
            "FROM information_schema.columns WHERE table_schema = :schema"
        ),
        {"schema": schema, "prefix": f"{schema}."},
    )
    return {tuple(row) for row in rows if tables is None or row[0] in tables}


def indexes(conn: sa.Connection, schema: str, tables: tuple[str, ...] | None = None) -> dict[str, str]:
    rows = conn.execute(
        sa.text("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = :schema"),
        {"schema": schema},
    )
    return {name: definition.replace(f" {schema}.", " ") for table, name, definition in rows if tables is None or table in tables}


def constraints(conn: sa.Connection, schema: str, tables: tuple[str, ...] | None = None) -> set[tuple[str, str, str]]:
    rows = conn.execute(
        sa.text(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = :schema"
        ),
        {"schema": schema},
    )
    found = {(table.removeprefix(f"{schema}."), name, definition) for table, name, definition in rows}
    return {c for c in found if tables is None or c[0] in tables}


def table_rows(conn: sa.Connection, schema: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table in ``schema``."""
    names = conn.scalars(
        sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :schema"), {"schema": schema}
    ).all()
    return {name: sorted(map(tuple, conn.exec_driver_sql(f'SELECT * FROM "{schema}"."{name}"')), key=repr) for name in names}


def everything(engine: sa.Engine, schema: str) -> dict[str, Any]:
    """What ``schema`` holds: each relation (and its oid), column, index, constraint and row."""
    with engine.connect() as conn:
        return {
            "relations": relations(conn, schema),
            "columns": columns(conn, schema),
            "indexes": indexes(conn, schema),
            "constraints": constraints(conn, schema),
            "rows": table_rows(conn, schema),
        }


def knex_migrations(engine: sa.Engine, schema: str) -> list[tuple[str, int]]:
    """What knex has recorded as run, in order: each migration and its batch."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f'SELECT name, batch FROM "{schema}".{KNEX_MIGRATIONS_TABLE} ORDER BY id')
        return [(name, batch) for name, batch in rows]


def relations_of(engine: sa.Engine, schema: str) -> dict[str, int]:
    with engine.connect() as conn:
        return relations(conn, schema)


def roll_back_the_bookkeeping(backend: SQLBackend, engine: sa.Engine, schema: str) -> list[str]:
    """Roll back revisions until the one that keeps knex's bookkeeping is undone; those rolled back."""
    undone = []
    while KNEX_RECORDS_TABLE in relations_of(engine, schema):
        revision = backend.rollback_migration()
        assert revision is not None
        undone.append(revision)
    return undone


# -- column for column ------------------------------------------------------------------


def test_the_tables_equal_node_sidequests(
    pg_engine: sa.Engine,
    new_schema: Callable[..., str],
    make_backend: Callable[..., SQLBackend],
    node_sidequest: NodeSidequest,
) -> None:
    node_ref, ours = new_schema(), new_schema()
    assert node_sidequest.migrate(node_ref) == {"completed": sidequest_migrations(), "pending": []}
    make_backend(ours).migrate()

    with pg_engine.connect() as conn:
        node_columns, our_columns = columns(conn, node_ref, NODE_TABLES), columns(conn, ours, NODE_TABLES)
        node_indexes, our_indexes = indexes(conn, node_ref, NODE_TABLES), indexes(conn, ours, NODE_TABLES)
        node_constraints = constraints(conn, node_ref, NODE_TABLES)
        our_constraints = constraints(conn, ours, NODE_TABLES)

    # Node's tables are these four (knex's two under the names schema.py gives them).
    assert {row[0] for row in node_columns} == set(NODE_TABLES)
    assert len(node_columns) == 5 + 24 + 4 + 2
    # Every column of Node's is there, the same; ours adds only columns with a default.
    assert our_columns - OUR_COLUMNS == node_columns
    assert OUR_COLUMNS <= our_columns
    assert our_indexes[UNIQUE_DIGEST_INDEX] == node_indexes[UNIQUE_DIGEST_INDEX]
    assert "WHERE (unique_digest IS NOT NULL)" in our_indexes[UNIQUE_DIGEST_INDEX]
    # Every index of Node's is there, the same; ours adds only its own indexes.
    assert {name: our_indexes[name] for name in node_indexes} == node_indexes
    assert set(our_indexes) - set(node_indexes) == OUR_INDEXES
    assert our_constraints == node_constraints


# -- Node's migrate() on our tables -----------------------------------------------------


def test_node_migrate_after_ours_changes_nothing(
    pg_engine: sa.Engine,
    new_schema: Callable[..., str],
    make_backend: Callable[..., SQLBackend],
    node_sidequest: NodeSidequest,
) -> None:
    schema = new_schema()
    backend = make_backend(schema)
    backend.migrate()
    backend.create_new_queue("mail", concurrency=2, priority=5)
    done = backend.create_new_job(NewJobData("mail", "m.py", "Mail", args=[{"to": "a@b"}], unique_digest="d"))
    backend.update_job(done.id, state="completed", result={"ok": True}, completed_at=datetime.now(UTC))
    backend.create_new_job(NewJobData("mail", "m.py", "Mail", retry_delay=10, backoff_strategy="fixed", priority=3))
    before = everything(pg_engine, schema)
    assert knex_migrations(pg_engine, schema) == [(name, 1) for name in sidequest_migrations()]

    assert node_sidequest.migrate(schema) == {"completed": sidequest_migrations(), "pending": []}

    assert everything(pg_engine, schema) == before
    assert backend.migrate() == []


def test_without_knexs_records_node_migrate_fails_and_ours_then_fills_in_nodes_tables(
    pg_engine: sa.Engine,
    new_schema: Callable[..., str],
    make_backend: Callable[..., SQLBackend],
    node_sidequest: NodeSidequest,
) -> None:
    # Guards the test above: without the revision that fills knex's tables, Node's migrate() breaks.
    schema = new_schema()
    backend = make_backend(schema)
    backend.migrate()
    undone = roll_back_the_bookkeeping(backend, pg_engine, schema)
    assert {KNEX_MIGRATIONS_TABLE, KNEX_LOCK_TABLE}.isdisjoint(relations_of(pg_engine, schema))

    with pytest.raises(NodeFailed, match='relation "sidequest_queues" already exists'):
        node_sidequest.migrate(schema)
    # knex made its tables before the batch that failed, and kept them.
    nodes_tables = relations_of(pg_engine, schema)
    assert knex_migrations(pg_engine, schema) == []

    assert backend.migrate() == undone[::-1]
    # Node's tables are kept (the very same ones) and filled in: only the rows are ours.
    after = relations_of(pg_engine, schema)
    assert {name: after[name] for name in nodes_tables} == nodes_tables
    assert knex_migrations(pg_engine, schema) == [(name, 1) for name in sidequest_migrations()]
    with pg_engine.connect() as conn:
        wrote = conn.exec_driver_sql(f'SELECT kind, name FROM "{schema}".{KNEX_RECORDS_TABLE}').all()
    assert sorted(wrote) == [("migration", name) for name in sidequest_migrations()]

    # Rolled back, the rows go and Node's tables stay.
    roll_back_the_bookkeeping(backend, pg_engine, schema)
    after_rollback = relations_of(pg_engine, schema)
    assert {name: after_rollback[name] for name in nodes_tables} == nodes_tables
    assert knex_migrations(pg_engine, schema) == []


def test_rolled_back_the_knex_tables_it_made_are_gone(
    pg_engine: sa.Engine, new_schema: Callable[..., str], make_backend: Callable[..., SQLBackend]
) -> None:
    schema = new_schema()
    backend = make_backend(schema)
    backend.migrate()
    undone = roll_back_the_bookkeeping(backend, pg_engine, schema)
    below = relations_of(pg_engine, schema)
    backend.migrate()

    roll_back_the_bookkeeping(backend, pg_engine, schema)

    assert relations_of(pg_engine, schema) == below
    assert backend.migrate() == undone[::-1]


def test_without_a_schema_knexs_tables_are_where_node_looks(
    pg_engine: sa.Engine,
    new_schema: Callable[..., str],
    make_backend: Callable[..., SQLBackend],
    node_sidequest: NodeSidequest,
    hang_guard: str,
) -> None:
    # No schema=: both sides use the connection's current schema, here one a search_path names.
    schema = new_schema()
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    path = f"-c search_path={schema}"
    backend = make_backend(None, connect_args={"options": f"{hang_guard} {path}"})
    backend.migrate()
    assert {KNEX_MIGRATIONS_TABLE, KNEX_LOCK_TABLE, VERSION_TABLE} <= set(relations_of(pg_engine, schema))
    before = everything(pg_engine, schema)
    url = sa.make_url(node_sidequest.url).update_query_dict({"options": path})
    node = dataclasses.replace(node_sidequest, url=url.render_as_string(hide_password=False))

    assert node.migrate(None) == {"completed": sidequest_migrations(), "pending": []}

    assert everything(pg_engine, schema) == before


# -- our migrate() on Node's tables ----------------------------------------------------------


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


def node_rows(conn: sa.Connection, schema: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of Node's two tables, in Node's own columns."""
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
    }


def node_made_tables(node: NodeSidequest, schema: str, migrations: int) -> None:
    """Node Sidequest's tables in ``schema``: made by its whole ``migrate()``, or by only
    its first ``migrations`` migrations, as an older release made them."""
    if migrations == len(sidequest_migrations()):
        outcome = node.migrate(schema)
    else:
        outcome = node.migrate_first(migrations, schema)
    assert outcome["completed"] == sidequest_migrations()[:migrations]


@pytest.mark.parametrize(
    ("node_migrations", "applied"),
    [(3, revisions()[2:]), (2, revisions()[1:])],
    ids=["with-backoff-columns", "without-backoff-columns"],
)
def test_node_tables_are_adopted_with_their_rows(
    pg_engine: sa.Engine,
    new_schema: Callable[..., str],
    make_backend: Callable[..., SQLBackend],
    node_sidequest: NodeSidequest,
    node_migrations: int,
    applied: list[str],
) -> None:
    schema = new_schema()
    node_made_tables(node_sidequest, schema, node_migrations)
    with pg_engine.begin() as conn:
        seed_node_rows(conn, schema, backoff_columns=node_migrations == 3)
    with pg_engine.connect() as conn:
        before, oids_before = node_rows(conn, schema), relations(conn, schema)
    recorded_by_node = knex_migrations(pg_engine, schema)

    backend = make_backend(schema, worker_name="python-worker", clock=lambda: datetime(2024, 6, 1, tzinfo=UTC))
    assert backend.migrate() == applied
    assert backend.migrate() == []

    with pg_engine.connect() as conn:
        assert node_rows(conn, schema) == before
        oids_after = relations(conn, schema)
        version = conn.exec_driver_sql(f'SELECT version_num FROM "{schema}".{VERSION_TABLE}').scalars().all()
        assert "alembic_version" not in oids_after
    # Nothing was dropped and made again: every relation Node made is the very same one.
    assert {name: oids_after[name] for name in oids_before} == oids_before
    assert set(oids_after) - set(oids_before) >= {VERSION_TABLE, *OUR_INDEXES}
    assert version == revisions()[-1:]
    # What Node recorded stays; the migration Node's release lacked is recorded, in a batch of its own.
    next_batch = max(batch for _, batch in recorded_by_node) + 1
    missing = sidequest_migrations()[node_migrations:]
    assert knex_migrations(pg_engine, schema) == recorded_by_node + [(name, next_batch) for name in missing]

    # The adopted rows are read and claimed like any other.
    assert [q.name for q in backend.list_queues()] == ["mail", "default"]
    assert backend.get_queue("mail").state == "paused"  # type: ignore[union-attr]
    first = backend.get_job(1)
    assert first is not None
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

    # Rolled back, exactly what was recorded for Node goes; Node's own records and tables stay.
    roll_back_the_bookkeeping(backend, pg_engine, schema)
    assert knex_migrations(pg_engine, schema) == recorded_by_node
    with pg_engine.connect() as conn:
        assert {name: oid for name, oid in relations(conn, schema).items() if name in oids_before} == oids_before


def test_node_migrate_after_ours_adopted_an_older_releases_tables(
    pg_engine: sa.Engine,
    new_schema: Callable[..., str],
    make_backend: Callable[..., SQLBackend],
    node_sidequest: NodeSidequest,
) -> None:
    # Ours added the backoff columns Node's migration 3 adds, and recorded it: Node must not run it.
    schema = new_schema()
    node_made_tables(node_sidequest, schema, 2)
    make_backend(schema).migrate()
    before = everything(pg_engine, schema)

    assert node_sidequest.migrate(schema) == {"completed": sidequest_migrations(), "pending": []}

    assert everything(pg_engine, schema) == before


def test_adopted_tables_accept_new_jobs_after_nodes_ids(
    pg_engine: sa.Engine,
    new_schema: Callable[..., str],
    make_backend: Callable[..., SQLBackend],
    node_sidequest: NodeSidequest,
) -> None:
    schema = new_schema()
    node_made_tables(node_sidequest, schema, 3)
    with pg_engine.begin() as conn:
        seed_node_rows(conn, schema, backoff_columns=True)
    backend = make_backend(schema)
    backend.migrate()

    job = backend.create_new_job(NewJobData("default", "p.py", "P", available_at=datetime.now(UTC) - timedelta(1)))

    assert job.id == 5
    assert backend.create_new_queue("python").id == 3
