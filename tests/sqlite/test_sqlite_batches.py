"""A batch enqueue on SQLite: multi-row ``INSERT … VALUES … RETURNING`` statements
under the bound-parameter limit, all in one ``BEGIN IMMEDIATE`` transaction,
storing what one-row INSERTs store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

import sidequest_sql as sq
from sidequest_sql import DuplicatedJobError, NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.batches import MAX_VALUES_ROWS
from sidequest_sql.dialects.sqlite import MAX_PARAMETERS
from sidequest_sql.schema import jobs
from sidequest_sql.testing.batches import mixed_jobs
from sidequest_sql.testing.clock import START


@pytest.fixture
def backend(sqlite_url: str) -> Iterator[SQLBackend]:
    made = sq.create_backend(sqlite_url, clock=lambda: START)
    made.migrate()
    try:
        yield made
    finally:
        made.close()


@contextmanager
def traced(backend: SQLBackend) -> Iterator[list[str]]:
    """Every statement SQLite runs on the backend's connections while the block runs,
    BEGIN and COMMIT included (SQLite's own trace)."""
    sent: list[str] = []
    traced_connections: list[Any] = []

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.set_trace_callback(sent.append)
        traced_connections.append(dbapi_connection)

    sa.event.listen(backend.engine.pool, "checkout", checkout)
    try:
        yield sent
    finally:
        sa.event.remove(backend.engine.pool, "checkout", checkout)
        for dbapi_connection in traced_connections:
            dbapi_connection.set_trace_callback(None)


def stored(url: str, ids: list[int]) -> list[tuple[Any, ...]]:
    """Every column but id of these rows, each as SQLite keeps it (its value and its type)."""
    columns = ", ".join(f'"{c.name}", typeof("{c.name}")' for c in jobs.c if c.name != "id")
    with sqlite3.connect(str(make_url(url).database)) as conn:
        rows = conn.execute(f"SELECT id, {columns} FROM sidequest_jobs").fetchall()
    by_id = {row[0]: row[1:] for row in rows}
    return [by_id[i] for i in ids]


def test_a_batch_beyond_one_statement_is_several_inserts_in_one_immediate_transaction(backend: SQLBackend) -> None:
    batch = mixed_jobs(2_500, START)
    sizes = backend.batch_insert.split(len(batch), 15)  # type: ignore[union-attr]
    assert sizes == [128] * 19 + [64, 4]
    with traced(backend) as sent:
        created = backend.create_new_jobs(batch)
    inserts = [sql for sql in sent if sql.startswith("INSERT INTO sidequest_jobs")]
    assert sent == ["BEGIN IMMEDIATE", *inserts, "COMMIT"], [sql[:40] for sql in sent]
    assert [sql.count("), (") + 1 for sql in inserts] == sizes
    assert all(sql.count("?") <= MAX_PARAMETERS for sql in inserts)
    assert [job.args for job in created] == [job.args for job in batch]
    assert [job.id for job in created] == sorted(job.id for job in created)
    assert [backend.get_job(job.id) for job in created] == created


def test_statements_stay_under_the_parameter_limit_and_sizes_are_few() -> None:
    backend = sq.create_backend("sqlite://")
    split = backend.batch_insert.split  # type: ignore[union-attr]
    seen: set[int] = set()
    for count in [*range(1, 1100), 2_500, 10_000, 100_001]:
        sizes = split(count, 15)
        assert sum(sizes) == count
        assert all(size * 15 <= MAX_PARAMETERS and size <= MAX_VALUES_ROWS for size in sizes)
        seen.update(sizes)
    # Powers of two: however batch sizes vary, a backend compiles few statements.
    assert seen == {2**k for k in range(8)}
    backend.close()


def test_a_batch_stores_what_one_row_inserts_store(backend: SQLBackend, sqlite_url: str) -> None:
    batched = backend.create_new_jobs(mixed_jobs(700, START, digest_prefix="batch-"))
    singles = [backend.create_new_job(job) for job in mixed_jobs(700, START, digest_prefix="single-")]
    digest = 2 * [c.name for c in jobs.c if c.name != "id"].index("unique_digest")

    def comparable(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return row[:digest] + row[digest + 2 :]

    batch_rows = stored(sqlite_url, [job.id for job in batched])
    single_rows = stored(sqlite_url, [job.id for job in singles])
    assert [comparable(row) for row in batch_rows] == [comparable(row) for row in single_rows]
    config = 2 * [c.name for c in jobs.c if c.name != "id"].index("uniqueness_config")
    # A missing document is SQL NULL, never the JSON text null.
    assert "null" in {row[config + 1] for row in batch_rows}
    assert "null" not in {row[config] for row in batch_rows}


def test_a_clash_in_the_last_statement_rolls_back_the_earlier_ones(backend: SQLBackend, sqlite_url: str) -> None:
    holder = backend.create_new_job(NewJobData("q", "s.js", "S", unique_digest="held"))
    batch = [NewJobData("q", "s.js", "S", args=[i]) for i in range(1_000)] + [
        NewJobData("q", "s.js", "S", unique_digest="held")
    ]
    with traced(backend) as sent, pytest.raises(DuplicatedJobError):
        backend.create_new_jobs(batch)
    assert sum(sql.startswith("INSERT") for sql in sent) == len(backend.batch_insert.split(1_001, 15))  # type: ignore[union-attr]
    assert sent[-1] == "ROLLBACK"
    assert backend.list_jobs(limit=5_000) == [holder]
    assert len(stored(sqlite_url, [holder.id])) == 1


def test_each_statement_size_is_compiled_once(backend: SQLBackend) -> None:
    for count in (700, 700, 3, 515):
        backend.create_new_jobs([NewJobData("q", "s.js", "S", args=[i]) for i in range(count)])
    compiled = [key for key in backend.execution.built() if key[0] == "driver" and key[1][0] == "insert_batch"]
    # 700 = 5 x 128 + 32 + 16 + 8 + 4; 3 = 2 + 1; 515 = 4 x 128 + 2 + 1
    assert sorted(key[1][-1] for key in compiled) == [1, 2, 4, 8, 16, 32, 128]
