"""Batch inserts (``sidequest_sql.batches``): each dialect's statements compiled
without a server, the encoding of values, and the check of what comes back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import sidequest_sql as sq
from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.batches import UnnestInsert, ValuesInsert, encode, in_input_order
from sidequest_sql.dialects.mysql import MySQLBackend
from sidequest_sql.rows import new_job_values
from sidequest_sql.schema import jobs

NOW = datetime(2030, 1, 15, 12, 30, 45, 123456, tzinfo=UTC)


@pytest.fixture
def postgres() -> Iterator[SQLBackend]:
    backend = sq.create_backend("postgresql://user:pw@127.0.0.1:1/db", schema="Jobs Schema")  # never connects
    yield backend
    backend.close()


@pytest.fixture
def sqlite() -> Iterator[SQLBackend]:
    backend = sq.create_backend("sqlite://")
    yield backend
    backend.close()


def job_rows(backend: SQLBackend, count: int) -> list[dict[str, Any]]:
    return [
        new_job_values(
            NewJobData("q", "s.js", "C", args=[i], unique_digest=f"d{i}"), NOW, "job",
            max_json_depth=backend.max_json_depth,
        )
        for i in range(count)
    ]


def compiled_sql(backend: SQLBackend, stmt: Any) -> str:
    schema = {None: backend.schema} if backend.schema else None
    compiled = stmt.compile(
        dialect=backend.engine.dialect, schema_translate_map=schema, render_schema_translate=bool(schema)
    )
    return " ".join(compiled.string.split())


def test_the_dialects_hooks() -> None:
    from sidequest_sql.dialects.postgres import PostgresBackend
    from sidequest_sql.dialects.sqlite import SQLiteBackend

    assert isinstance(PostgresBackend.batch_insert, UnnestInsert)
    assert isinstance(SQLiteBackend.batch_insert, ValuesInsert)
    assert MySQLBackend.batch_insert is None and SQLBackend.batch_insert is None


def test_postgres_batch_is_one_insert_select_from_unnest_of_one_array_per_column(postgres: SQLBackend) -> None:
    keys = tuple(job_rows(postgres, 1)[0])
    sql = compiled_sql(postgres, postgres.batch_insert.statement(jobs, keys, 10_000))  # type: ignore[union-attr]
    match = re.fullmatch(
        r'INSERT INTO "Jobs Schema"\.sidequest_jobs \((?P<columns>[^)]*)\) SELECT (?P<selected>.*?) '
        r"FROM unnest\((?P<arrays>.*)\) WITH ORDINALITY AS t\((?P<names>[^)]*)\) ORDER BY t\.ordinality "
        r'RETURNING (?P<returning>.*)',
        sql,
    )
    assert match, sql
    columns = [jobs.c[key].name for key in keys]
    assert match["columns"].split(", ") == columns
    assert match["selected"].split(", ") == [f"t.{key}" for key in keys]
    assert match["names"].split(", ") == [*keys, "ordinality"]
    # %(name)b: psycopg sends the arrays in binary.
    arrays = re.findall(r"CAST\(%\((\w+)\)b AS ([A-Z ]+)\[\]\)", match["arrays"])
    assert [name for name, _ in arrays] == list(keys)
    types = dict(arrays)
    assert types["queue"] == types["unique_digest"] == "VARCHAR"  # unbounded: no silent truncation
    assert types["args"] == types["uniqueness_config"] == "JSONB"
    assert types["inserted_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["max_attempts"] == "INTEGER"
    assert match["returning"].split(", ") == [f'"Jobs Schema".sidequest_jobs.{c.name}' for c in jobs.c]
    # The same text for any batch size: parsed and prepared once.
    assert postgres.batch_insert.split(1_000_000, len(keys)) == [1_000_000]  # type: ignore[union-attr]


def test_a_postgres_driver_other_than_psycopg_gets_plain_parameters(postgres: SQLBackend) -> None:
    from sqlalchemy.dialects.postgresql import psycopg2

    stmt = postgres.batch_insert.statement(jobs, ("queue", "args"), 2)  # type: ignore[union-attr]
    sql = stmt.compile(dialect=psycopg2.dialect()).string
    assert "unnest(CAST(%(queue)s AS VARCHAR[]), CAST(%(args)s AS JSONB[]))" in sql


def test_postgres_encodes_json_as_its_canonical_text_and_none_as_null(postgres: SQLBackend) -> None:
    rows = job_rows(postgres, 3)
    rows[1]["uniqueness_config"] = {"b": [1.0, None], "a": "é"}
    rows[2]["available_at"] = datetime(2030, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    encoders = postgres.batch_insert.encoders(jobs, tuple(rows[0]), postgres.engine.dialect)  # type: ignore[union-attr]
    columns = encode(rows, encoders)
    assert columns["args"] == ["[0]", "[1]", "[2]"]
    assert columns["uniqueness_config"] == [None, '{"a":"é","b":[1,null]}', None]
    assert columns["available_at"][2] == datetime(2030, 1, 1, tzinfo=UTC)
    assert columns["queue"] == ["q", "q", "q"]


def test_a_value_every_row_shares_is_encoded_once() -> None:
    calls: list[Any] = []

    def process(value: Any) -> Any:
        calls.append(value)
        return None if value is None else str(value)

    shared, twin = [1], [True]  # equal in Python, not as JSON: told apart by identity
    rows = [{"a": NOW, "b": shared}, {"a": NOW, "b": shared}, {"a": NOW, "b": twin}, {"a": None, "b": twin}]
    columns = encode(rows, {"a": process, "b": process})
    assert columns == {"a": [str(NOW)] * 3 + [None], "b": ["[1]", "[1]", "[True]", "[True]"]}
    assert calls == [NOW, None, shared, twin]


def test_sqlite_batch_is_multi_row_values_named_row_by_row(sqlite: SQLBackend) -> None:
    keys = ("queue", "args", "inserted_at")
    batch = sqlite.batch_insert
    stmt = batch.statement(jobs, keys, 3)  # type: ignore[union-attr]
    compiled = stmt.compile(dialect=sqlite.engine.dialect)
    sql = " ".join(compiled.string.split())
    assert sql.startswith("INSERT INTO sidequest_jobs (queue, args, inserted_at) VALUES (?, ?, ?), (?, ?, ?), (?, ?, ?) RETURNING id,")
    assert list(compiled.positiontup) == [f"{key}_{i}" for i in range(3) for key in keys]
    # Values were encoded already: no bind processor runs again, not even on the first row.
    assert compiled._bind_processors == {}
    columns = {"queue": ["a", "b", "c", "d"], "args": ["[1]", "[2]", "[3]", "[4]"], "inserted_at": ["t"] * 4}
    assert batch.parameters(keys, columns, 1, 3) == {  # type: ignore[union-attr]
        "queue_0": "b", "args_0": "[2]", "inserted_at_0": "t", "queue_1": "c", "args_1": "[3]", "inserted_at_1": "t",
    }


def test_values_statements_are_powers_of_two_under_the_limit() -> None:
    assert ValuesInsert(max_parameters=999).split(200, 15) == [64, 64, 64, 8]
    assert ValuesInsert(max_parameters=32_766).split(1_500, 15) == [128] * 11 + [64, 16, 8, 4]
    assert ValuesInsert(max_parameters=32_766).split(1, 15) == [1]
    with pytest.raises(ValueError, match="exceeds the limit"):
        ValuesInsert(max_parameters=10).split(5, 11)


def returned_row(job_id: int, values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(job_id if c.key == "id" else values.get(c.key) for c in jobs.c)


def test_returned_rows_are_sorted_by_id_into_input_order(sqlite: SQLBackend) -> None:
    rows = job_rows(sqlite, 4)
    returned = [returned_row(10 + i, row) for i, row in enumerate(rows)]
    assert in_input_order(jobs, rows, returned[::-1]) == returned
    assert in_input_order(jobs, rows, [returned[2], returned[0], returned[3], returned[1]]) == returned


def test_rows_that_do_not_line_up_are_an_error(sqlite: SQLBackend) -> None:
    rows = job_rows(sqlite, 3)
    # Ids that do not follow the input order: job 0 got the highest id.
    returned = [returned_row(30, rows[0]), returned_row(11, rows[1]), returned_row(12, rows[2])]
    with pytest.raises(RuntimeError, match="do not line up"):
        in_input_order(jobs, rows, returned)
    with pytest.raises(RuntimeError, match="returned 2 rows for 3"):
        in_input_order(jobs, rows, returned[1:])


def test_empty_lists_and_dicts_are_encoded_once_whatever_the_object() -> None:
    calls: list[Any] = []

    def process(value: Any) -> Any:
        calls.append(value)
        return repr(value)

    rows = [{"a": []}, {"a": {}}, {"a": []}, {"a": [0]}, {"a": {}}, {"a": 0}, {"a": ""}]
    assert encode(rows, {"a": process}) == {"a": ["[]", "{}", "[]", "[0]", "{}", "0", "''"]}
    assert calls == [[], {}, [0], 0, ""]
