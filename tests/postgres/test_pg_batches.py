"""A batch enqueue on Postgres: one ``INSERT … SELECT … FROM unnest(arrays)``
that stores what one-row INSERTs store, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from sidequest_sql import NewJobData, jsonvalues
from sidequest_sql.base import SQLBackend
from sidequest_sql.schema import jobs
from sidequest_sql.testing.batches import mixed_jobs
from sidequest_sql.testing.clock import START

pytestmark = pytest.mark.postgres


def stored(pg_engine: sa.Engine, schema: str, ids: list[int]) -> list[tuple[Any, ...]]:
    """Every column but id of these rows, as the server prints them (jsonb as its
    text, SQL NULL as None, times in UTC), in the order of ``ids``."""
    columns = ", ".join(f'"{column.name}"::text' for column in jobs.c if column.name != "id")
    with pg_engine.connect() as conn:
        conn.exec_driver_sql("SET TIME ZONE 'UTC'")
        rows = conn.exec_driver_sql(
            f'SELECT id, {columns} FROM "{schema}".sidequest_jobs WHERE id = ANY(%(ids)s)', {"ids": ids}
        ).all()
    by_id = {row[0]: tuple(row[1:]) for row in rows}
    return [by_id[i] for i in ids]


def without_digest(row: tuple[Any, ...]) -> tuple[Any, ...]:
    digest = [column.name for column in jobs.c if column.name != "id"].index("unique_digest")
    return row[:digest] + row[digest + 1 :]


@pytest.mark.parametrize("serializer", [None, "custom"])
def test_a_batch_stores_what_one_row_inserts_store(
    pg_engine: sa.Engine,
    new_schema: Callable[..., str],
    make_backend: Callable[..., SQLBackend],
    serializer: str | None,
) -> None:
    options: dict[str, Any] = {}
    if serializer == "custom":
        # A caller's json_serializer reaches both paths alike.
        options["json_serializer"] = lambda value: json.dumps({"wrapped": jsonvalues.dumps(value)})
    schema = new_schema()
    backend = make_backend(schema, clock=lambda: START, **options)
    backend.migrate()
    batch = mixed_jobs(300, START, digest_prefix="batch-")
    one_by_one = mixed_jobs(300, START, digest_prefix="single-")

    batched = backend.create_new_jobs(batch)
    singles = [backend.create_new_job(job) for job in one_by_one]

    batch_rows = stored(pg_engine, schema, [job.id for job in batched])
    single_rows = stored(pg_engine, schema, [job.id for job in singles])
    assert [without_digest(row) for row in batch_rows] == [without_digest(row) for row in single_rows]
    assert [(b.unique_digest or "").replace("batch-", "") for b in batched] == [
        (s.unique_digest or "").replace("single-", "") for s in singles
    ]
    # A missing document is SQL NULL, JSON null inside one stays JSON.
    nullable = [column.name for column in jobs.c if column.name != "id"].index("uniqueness_config")
    configs = [row[nullable] for row in batch_rows]
    assert None in configs and "null" not in configs
    if serializer is None:
        assert [job.args for job in batched] == [job.args for job in batch]


def test_a_batch_with_a_column_entirely_null_or_entirely_set(
    new_schema: Callable[..., str], make_backend: Callable[..., SQLBackend]
) -> None:
    backend = make_backend(new_schema(), clock=lambda: START)
    backend.migrate()
    # Arrays with no element to tell psycopg their type, and arrays with no NULL.
    bare = [NewJobData(queue="q", script="s.js", job_class="C", args=[i]) for i in range(3)]
    full = [
        NewJobData(
            queue="q", script="s.js", job_class="C", args=[i], constructor_args={"c": i}, max_attempts=i,
            available_at=START, timeout=i, unique_digest=f"d{i}", uniqueness_config={"u": None}, retry_delay=i,
            backoff_strategy="fixed",
        )
        for i in range(3)
    ]
    for batch in (bare, full):
        created = backend.create_new_jobs(batch)
        assert [backend.get_job(job.id) for job in created] == created
        assert [job.args for job in created] == [job.args for job in batch]
