"""What transaction pooling changes, and why the backend passes through it all the same.

- Consecutive transactions of one client land on different server connections
  (else the contract suite through PgBouncer would prove little).
- psycopg's prepared statements live on one server connection: without
  ``prepare_threshold=None`` an operation repeated a few times fails.
- Session settings: the dialect sets the UTC time zone once per connection,
  on whichever server connection that lands. PgBouncer tracks ``TimeZone``
  (one of the parameters the server reports) per client and sets it on every
  server connection it lends that client, so UTC follows the client; without
  it, a server east of UTC sends instants late in year 9999 as year 10000.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from pgbouncer_server import POOL_SIZE, SERVER_TIME_ZONE, on_every_server_connection
from sqlalchemy.engine import Engine

import sidequest_sql as sq
from sidequest_sql.base import SQLBackend
from sidequest_sql.dialects.postgres import PostgresBackend

pytestmark = [pytest.mark.postgres, pytest.mark.pgbouncer]

FAR_FUTURE = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
TRANSACTIONS = 3 * POOL_SIZE


class WithoutUtcSession(PostgresBackend):
    """The Postgres dialect without its per-connection ``SET TIME ZONE 'UTC'``."""

    def configure_engine(self, engine: Engine) -> None:
        pass


def new_job(**fields: Any) -> sq.NewJobData:
    return sq.NewJobData(queue="default", script="jobs.js", job_class="Echo", **fields)


def transactions_of_one_client(backend: SQLBackend, query: str) -> list[tuple[Any, ...]]:
    """``query`` run alone in each of ``TRANSACTIONS`` transactions, all on one client connection."""
    rows = []
    with backend.engine.connect() as conn:
        for _ in range(TRANSACTIONS):
            with conn.begin():
                rows.append(tuple(conn.exec_driver_sql(query).one()))
    return rows


def test_one_client_s_transactions_take_turns_among_the_server_connections(
    make_backend: Callable[..., SQLBackend], pgbouncer_engine_options: dict[str, Any]
) -> None:
    backend = make_backend(**pgbouncer_engine_options)
    pids = [pid for (pid,) in transactions_of_one_client(backend, "SELECT pg_backend_pid()")]
    assert len(set(pids)) == POOL_SIZE, pids


def test_without_prepare_threshold_none_a_repeated_operation_fails(
    make_backend: Callable[..., SQLBackend], pgbouncer_url: str
) -> None:
    backend = make_backend()
    job = backend.create_new_job(new_job())
    try:
        # psycopg prepares a statement on its fifth run, on one server connection;
        # the next transaction runs it on another, which has never heard of it.
        with pytest.raises(sa.exc.ProgrammingError, match=r'prepared statement "_pg3_\d+" does not exist'):
            for _ in range(10):
                backend.get_job(job.id)
    finally:
        backend.close()
        # Prepared statements outlive their client on the server connections.
        on_every_server_connection(pgbouncer_url, "DEALLOCATE ALL")


def test_with_prepare_threshold_none_the_same_operation_keeps_working(
    make_backend: Callable[..., SQLBackend], pgbouncer_engine_options: dict[str, Any]
) -> None:
    backend = make_backend(**pgbouncer_engine_options)
    job = backend.create_new_job(new_job())
    for _ in range(10):
        assert backend.get_job(job.id) == job


def test_server_connections_start_east_of_utc(
    make_backend: Callable[..., SQLBackend], pgbouncer_engine_options: dict[str, Any]
) -> None:
    # The dialect without its UTC session: what the time zone tests would meet.
    backend = make_backend(WithoutUtcSession, **pgbouncer_engine_options)
    zones = {zone for (zone,) in transactions_of_one_client(backend, "SHOW TimeZone")}
    assert zones == {SERVER_TIME_ZONE}
    with pytest.raises(sa.exc.DataError, match="after year 10K"):
        backend.create_new_job(new_job(available_at=FAR_FUTURE))


def test_the_utc_session_follows_the_client_to_every_server_connection(
    make_backend: Callable[..., SQLBackend], pgbouncer_engine_options: dict[str, Any]
) -> None:
    backend = make_backend(**pgbouncer_engine_options)
    rows = transactions_of_one_client(backend, "SELECT pg_backend_pid(), current_setting('TimeZone')")
    assert len({pid for pid, _ in rows}) == POOL_SIZE, rows
    assert {zone for _, zone in rows} == {"UTC"}, rows
    job = backend.create_new_job(new_job(available_at=FAR_FUTURE))
    for _ in range(TRANSACTIONS):
        assert backend.get_job(job.id).available_at == FAR_FUTURE  # type: ignore[union-attr]
