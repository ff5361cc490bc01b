"""What reaches the Postgres server per operation: single statements in autocommit,
several statements in one transaction (``single_statement_autocommit``).

The frontend messages are read from libpq's own trace of each pooled
connection, so a BEGIN or COMMIT that psycopg sends on its own shows up too.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from sidequest_sql import DuplicatedJobError, NewJobData
from sidequest_sql.base import SQLBackend

pytestmark = pytest.mark.postgres

TRANSACTION_COMMANDS = ("BEGIN", "COMMIT", "ROLLBACK")
PREPARED_EARLIER = "<statement prepared before the trace>"
_QUOTED = re.compile(r'"((?:[^"]|"")*)"')
# One message the client sent; SQL text in it may span lines.
_FRONTEND = re.compile(r"^F\t\d+\t(?P<kind>\w+)(?P<body>.*?)(?=^[FB]\t\d+\t|\Z)", re.MULTILINE | re.DOTALL)


def executions(trace: str) -> list[str]:
    """The SQL of each statement executed in a libpq trace, in order.

    A simple ``Query`` is one; in the extended protocol each ``Bind`` is one,
    of the statement its ``Parse`` named (psycopg's prepared statements are
    parsed once per connection, perhaps before the trace began).
    """
    parsed: dict[str, str] = {}
    out: list[str] = []
    for message in _FRONTEND.finditer(trace):
        kind, quoted = message["kind"], [q.replace('""', '"') for q in _QUOTED.findall(message["body"])]
        if kind == "Query":
            out.append(" ".join(quoted[0].split()))
        elif kind == "Parse":
            parsed[quoted[0]] = " ".join(quoted[1].split())
        elif kind == "Bind":
            out.append(parsed.get(quoted[1], PREPARED_EARLIER))
    return out


@contextmanager
def server_messages(backend: SQLBackend) -> Iterator[list[str]]:
    """The SQL of every statement the server is sent while the block runs, in order."""
    traces: dict[int, Any] = {}
    sent: list[str] = []

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        trace = traces.setdefault(id(dbapi_connection), tempfile.TemporaryFile())
        dbapi_connection.pgconn.trace(trace.fileno())
        dbapi_connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    def checkin(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None and id(dbapi_connection) in traces:
            dbapi_connection.pgconn.untrace()
            trace = traces.pop(id(dbapi_connection))
            trace.seek(0)
            sent.extend(executions(trace.read().decode()))
            trace.close()

    pool = backend.engine.pool
    sa.event.listen(pool, "checkout", checkout)
    sa.event.listen(pool, "checkin", checkin)
    try:
        yield sent
    finally:
        sa.event.remove(pool, "checkout", checkout)
        sa.event.remove(pool, "checkin", checkin)


def transaction_commands(sent: list[str]) -> list[str]:
    return [sql for sql in sent if sql.upper().split(" ")[0] in TRANSACTION_COMMANDS]


def new_job(i: int, **fields: Any) -> NewJobData:
    return NewJobData("default", "s.js", "S", args=[i], available_at=datetime.now(UTC) - timedelta(minutes=1), **fields)


@pytest.fixture
def backend(make_backend: Callable[..., SQLBackend], new_schema: Callable[..., str]) -> SQLBackend:
    made = make_backend(new_schema())
    made.migrate()
    return made


def test_single_statement_operations_send_no_begin_or_commit(backend: SQLBackend) -> None:
    job = backend.create_new_job(new_job(0))
    operations: list[tuple[str, Callable[[], Any], str]] = [
        ("create_new_job", lambda: backend.create_new_job(new_job(1)), "INSERT INTO"),
        ("claim_pending_job", lambda: backend.claim_pending_job("default", 2), "WITH claimable AS MATERIALIZED"),
        ("update_job", lambda: backend.update_job(job.id, state="completed"), "UPDATE"),
        ("get_job", lambda: backend.get_job(job.id), "SELECT"),
        ("list_jobs", lambda: backend.list_jobs(queue="default"), "SELECT"),
        ("count_jobs", lambda: backend.count_jobs(), "SELECT"),
    ]
    for name, operation, starts in operations:
        for _ in range(3):  # again once the statement is cached and psycopg has seen it
            with server_messages(backend) as sent:
                operation()
            assert len(sent) == 1, (name, sent)
            assert sent[0] == PREPARED_EARLIER or sent[0].startswith(starts), (name, sent)


def test_a_claim_in_autocommit_still_takes_each_job_once(backend: SQLBackend) -> None:
    ids = [job.id for job in backend.create_new_jobs([new_job(i) for i in range(7)])]
    with server_messages(backend) as sent:
        got = [job.id for job in backend.claim_pending_job("default", 5)]
        got += [job.id for job in backend.claim_pending_job("default", 5)]
        assert backend.claim_pending_job("default", 5) == []
    assert got == ids
    assert transaction_commands(sent) == []


@pytest.mark.parametrize("size", [2, 3, 2_500])
def test_a_batch_is_one_insert_in_autocommit(backend: SQLBackend, size: int) -> None:
    for attempt in range(7):  # past psycopg's prepare threshold (5): prepared, still one statement
        with server_messages(backend) as sent:
            jobs = backend.create_new_jobs([new_job(i) for i in range(size)])
        assert [job.args for job in jobs] == [[i] for i in range(size)]
        # No BEGIN and no COMMIT: one statement is atomic on its own.
        assert len(sent) == 1, (attempt, sent)
        if sent[0] != PREPARED_EARLIER:
            assert sent[0].startswith("INSERT INTO"), sent
            assert "FROM unnest(" in sent[0] and "WITH ORDINALITY" in sent[0], sent
    assert backend.count_jobs().waiting == 7 * size


def test_a_failing_batch_leaves_nothing(backend: SQLBackend) -> None:
    backend.create_new_job(new_job(0, unique_digest="held"))
    batch = [new_job(i) for i in range(6)] + [new_job(6, unique_digest="held")]
    with pytest.raises(DuplicatedJobError):
        backend.create_new_jobs(batch)
    assert backend.count_jobs().waiting == 1


def test_a_read_of_two_statements_is_one_transaction(backend: SQLBackend) -> None:
    backend.create_new_job(new_job(0))
    with server_messages(backend) as sent:
        counts = backend.count_jobs_by_queues()
    assert counts["default"].waiting == 1
    assert sent[0].startswith("BEGIN") and sent[-1] == "ROLLBACK", sent
    assert len(sent) == 4 and len(transaction_commands(sent)) == 2, sent


def test_a_unique_violation_in_autocommit_is_translated_and_leaves_the_connection_usable(
    backend: SQLBackend,
) -> None:
    backend.create_new_job(new_job(0, unique_digest="d"))
    for _ in range(3):
        with server_messages(backend) as sent, pytest.raises(DuplicatedJobError):
            backend.create_new_job(new_job(1, unique_digest="d"))
        assert transaction_commands(sent) == []
    assert backend.create_new_job(new_job(2, unique_digest="e")).unique_digest == "e"
    assert backend.count_jobs().waiting == 2


def test_the_caller_isolation_level_is_kept_for_transactions(
    make_backend: Callable[..., SQLBackend], new_schema: Callable[..., str]
) -> None:
    backend = make_backend(new_schema(), isolation_level="REPEATABLE READ", pool_size=1, max_overflow=0)
    backend.migrate()
    backend.create_new_job(new_job(0))  # autocommit
    with backend.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == "repeatable read"
        # The driver stays in autocommit; the backend began this transaction itself.
        assert conn.connection.dbapi_connection.autocommit is True  # type: ignore[union-attr]
        assert conn.connection.dbapi_connection.info.transaction_status.name == "INTRANS"  # type: ignore[union-attr]

