"""``schema=``: every table and the version table in that schema, none elsewhere."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from pg_relations import relations

from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.migrations import revisions
from sidequest_sql.schema import NODE_BOOKKEEPING_TABLES, VERSION_TABLE

pytestmark = pytest.mark.postgres

OUR_TABLES = {"sidequest_queues", "sidequest_jobs", VERSION_TABLE, *NODE_BOOKKEEPING_TABLES}


def schema_exists(conn: sa.Connection, schema: str) -> bool:
    return bool(
        conn.execute(sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": schema}).scalar_one()
    )


def exercise(backend: SQLBackend) -> None:
    """Every kind of statement the backend sends: DDL both ways, writes, claims, reads."""
    assert backend.migrate() == revisions()
    rolled_back = [backend.rollback_migration() for _ in revisions()[1:]]
    assert rolled_back == revisions()[1:][::-1]
    assert backend.migrate() == revisions()[1:]
    backend.create_new_queue("default")
    job = backend.create_new_job(NewJobData("default", "s.js", "S", unique_digest="d"))
    assert [claimed.id for claimed in backend.claim_pending_job("default")] == [job.id]
    backend.update_job(job.id, state="completed", completed_at=backend.clock())
    assert backend.count_jobs().completed == 1
    batch = backend.create_new_jobs([NewJobData("default", "s.js", "S", args=[i]) for i in range(3)])
    assert [backend.get_job(made.id) for made in batch] == batch
    assert backend.count_jobs().waiting == 3
    assert len(backend.count_jobs_over_time("2h")) == 2


def test_every_table_and_the_version_table_land_in_the_schema(
    pg_engine: sa.Engine,
    new_schema: Callable[..., str],
    make_backend: Callable[..., SQLBackend],
    hang_guard: str,
) -> None:
    schema, decoy = new_schema(), new_schema()
    with pg_engine.begin() as conn:
        # Whatever the backend named without its schema would land here, first on its search_path.
        conn.exec_driver_sql(f'CREATE SCHEMA "{decoy}"')
        public_before = relations(conn, "public")
    backend = make_backend(schema, connect_args={"options": f"{hang_guard} -c search_path={decoy},public"})

    exercise(backend)

    with pg_engine.connect() as conn:
        ours = relations(conn, schema)
        assert relations(conn, decoy) == {}
        public_after = relations(conn, "public")
    assert {name for name in ours if not name.endswith(("_pkey", "_pkc", "_seq", "_idx", "_index", "_unique"))} == OUR_TABLES
    assert "alembic_version" not in ours
    # Nothing new in public: whatever other suites keep there is theirs.
    new_in_public = {name for name, oid in public_after.items() if public_before.get(name) != oid}
    assert {name for name in new_in_public if name.startswith(("sidequest", "alembic"))} == set()


def test_migrate_creates_the_schema(
    pg_engine: sa.Engine, new_schema: Callable[..., str], make_backend: Callable[..., SQLBackend]
) -> None:
    schema = new_schema()
    backend = make_backend(schema)
    with pg_engine.connect() as conn:
        assert not schema_exists(conn, schema)

    backend.migrate()

    with pg_engine.connect() as conn:
        assert schema_exists(conn, schema)
        assert OUR_TABLES <= set(relations(conn, schema))


def test_a_schema_name_that_needs_quoting(
    pg_engine: sa.Engine, new_schema: Callable[..., str], make_backend: Callable[..., SQLBackend]
) -> None:
    schema = new_schema("Sidequest Jobs-")
    backend = make_backend(schema)

    exercise(backend)

    with pg_engine.connect() as conn:
        assert OUR_TABLES <= set(relations(conn, schema))
        assert not schema_exists(conn, schema.lower())


def test_two_schemas_in_one_database_are_independent(
    pg_engine: sa.Engine, new_schema: Callable[..., str], make_backend: Callable[..., SQLBackend]
) -> None:
    first, second = make_backend(new_schema()), make_backend(new_schema())
    assert first.migrate() == second.migrate() == revisions()

    # The same names and digests in both: no clash.
    assert first.create_new_queue("default").id == second.create_new_queue("default").id == 1
    a = first.create_new_job(NewJobData("default", "a.js", "A", unique_digest="same"))
    b = second.create_new_job(NewJobData("default", "b.js", "B", unique_digest="same"))
    assert a.id == b.id == 1

    assert [job.job_class for job in first.claim_pending_job("default", 5)] == ["A"]
    assert second.get_job(1).state == "waiting"
    first.truncate()
    assert first.list_jobs() == [] and first.list_queues() == []
    assert [job.job_class for job in second.list_jobs()] == ["B"]

    # Migrations too: rolling one back leaves the other at head.
    newest = revisions()[-1]
    assert first.rollback_migration() == newest
    assert second.migrate() == []
    assert second.rollback_migration() == newest
    assert first.migrate() == second.migrate() == [newest]
    assert [job.job_class for job in second.claim_pending_job("default", 5)] == ["B"]
