"""Postgres: a password in the URL never reaches a log line, and a schema name is only a name.

The test server trusts local connections, so a URL may carry any password;
where it asks for one, the URL's own password is the one that must not show.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from pg_relations import relations

import sidequest_sql as sq
from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend

pytestmark = pytest.mark.postgres

SECRET = "Pg-l0g-s3cret"


def test_migrate_and_every_operation_log_at_debug_without_the_password(
    postgres_url: str, new_schema: Callable[..., str], hang_guard: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = sa.make_url(postgres_url)
    if url.password is None:
        url = url.set(password=SECRET)
    secret = str(url.password)
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "alembic", "sidequest_sql", "psycopg"):
        caplog.set_level(logging.DEBUG, logger=name)

    backend = sq.create_backend(
        url, schema=new_schema(), echo="debug", echo_pool="debug", connect_args={"options": hang_guard}
    )
    try:
        assert backend.migrate()
        queue = backend.create_new_queue("default")
        job = backend.create_new_job(NewJobData("default", "jobs.js", "Echo", args=[secret[:3]]))
        backend.claim_pending_job("default")
        backend.update_job(job.id, state="completed", completed_at=backend.clock())
        with pytest.raises(sq.DuplicatedQueueError) as info:
            backend.create_new_queue("default")
        backend.update_queue(queue.id, priority=2)
        assert backend.rollback_migration()
        said = [repr(backend), str(info.value), repr(info.value.__cause__)]
    finally:
        backend.close()

    assert any("Running upgrade" in record.getMessage() for record in caplog.records), "alembic was silent"
    assert any("INSERT INTO" in record.getMessage() for record in caplog.records), "SQLAlchemy was silent"
    for text in [caplog.text, *said, *(record.getMessage() for record in caplog.records)]:
        assert secret not in text


HOSTILE_SCHEMA = "sq x'; DROP SCHEMA public CASCADE; -- "


def test_a_schema_name_full_of_sql_is_only_a_name(
    pg_engine: sa.Engine, new_schema: Callable[..., str], make_backend: Callable[..., SQLBackend]
) -> None:
    schema = new_schema(HOSTILE_SCHEMA)
    backend = make_backend(schema)
    assert backend.migrate()
    backend.create_new_queue(HOSTILE_SCHEMA)
    job = backend.create_new_job(NewJobData(HOSTILE_SCHEMA, "jobs.js", "Echo"))
    assert [claimed.id for claimed in backend.claim_pending_job(HOSTILE_SCHEMA)] == [job.id]
    with pg_engine.connect() as conn:
        names = set(conn.scalars(sa.text("SELECT nspname FROM pg_namespace")))
        assert {"public", schema} <= names
        assert {"sidequest_jobs", "sidequest_queues"} <= set(relations(conn, schema))


@pytest.mark.parametrize(
    ("schema", "error"),
    [("s" * 64, ValueError), ("a\x00b", ValueError), ("\ud800", ValueError), (5, TypeError), (b"s", TypeError)],
)
def test_a_schema_name_no_database_takes_is_refused_before_connecting(schema: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="schema"):
        sq.create_backend("postgresql://app@127.0.0.1:1/app", schema=schema)
