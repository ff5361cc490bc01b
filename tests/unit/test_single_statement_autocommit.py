"""Which dialects run single statements in autocommit (``single_statement_autocommit``)."""

from __future__ import annotations

import pytest

from sidequest_sql.base import SQLBackend
from sidequest_sql.dialects.mysql import MySQLBackend
from sidequest_sql.dialects.postgres import PostgresBackend
from sidequest_sql.dialects.sqlite import SQLiteBackend


@pytest.mark.parametrize(
    ("backend_class", "expected"),
    [
        (SQLBackend, False),
        (PostgresBackend, True),
        # BEGIN IMMEDIATE is what keeps claims of several processes apart.
        (SQLiteBackend, False),
        # Its claim is three statements, and a new row is read back after the INSERT.
        (MySQLBackend, False),
    ],
)
def test_the_flag(backend_class: type[SQLBackend], expected: bool) -> None:
    assert backend_class.single_statement_autocommit is expected


def test_sqlite_writes_always_take_a_transaction(tmp_path: object) -> None:
    backend = SQLiteBackend(f"sqlite:///{tmp_path}/flag.sqlite")
    assert backend.execution.autocommit is None


def test_postgres_autocommit_view_shares_the_pool() -> None:
    backend = PostgresBackend("postgresql://user@localhost/nothing", schema="s")
    assert backend.execution.autocommit is not None
    assert backend.execution.autocommit.pool is backend.engine.pool
    # The driver stays in autocommit; the view only tells the backend to send no BEGIN.
    options = backend.execution.autocommit.get_execution_options()
    assert options["sidequest_autocommit"] is True
    assert options["schema_translate_map"] == {None: "s"}
    assert backend.execution.one_statement_update() and backend.execution.one_statement_insert(1)
    # A batch of any size is one INSERT … SELECT FROM unnest(…).
    assert backend.execution.one_statement_insert(2, 15) and backend.execution.one_statement_insert(100_000, 15)


def test_a_sqlite_batch_beyond_one_statement_says_so(tmp_path: object) -> None:
    backend = SQLiteBackend(f"sqlite:///{tmp_path}/flag.sqlite")
    assert backend.execution.one_statement_insert(128, 15)
    assert not backend.execution.one_statement_insert(129, 15)
    assert not backend.execution.one_statement_insert(3, 15)  # 2 + 1


@pytest.mark.parametrize("level", ["AUTOCOMMIT", "serializable;", 3])
def test_postgres_refuses_an_isolation_level_it_cannot_begin_with(level: object) -> None:
    with pytest.raises(ValueError, match="isolation_level must be one of"):
        PostgresBackend("postgresql://user@localhost/nothing", isolation_level=level)
