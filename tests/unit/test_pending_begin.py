"""Which transaction a caller's driver has yet to begin (``pending_begin``): SQLite's sqlite3."""

from __future__ import annotations

import sqlite3

import pytest

from sidequest_sql.dialects.mysql import MySQLBackend
from sidequest_sql.dialects.sqlite import SQLiteBackend


@pytest.mark.parametrize(
    ("isolation_level", "expected"),
    [("", "BEGIN"), ("DEFERRED", "BEGIN DEFERRED"), ("IMMEDIATE", "BEGIN IMMEDIATE"), (None, None)],
    ids=["default", "deferred", "immediate", "autocommit"],
)
def test_sqlite3_in_its_legacy_control_begins_at_the_first_write(isolation_level: str | None, expected: str | None) -> None:
    backend = SQLiteBackend("sqlite://")
    connection = sqlite3.connect(":memory:", isolation_level=isolation_level)
    try:
        assert backend.pending_begin(connection) == expected
    finally:
        connection.close()
        backend.close()


def test_nothing_is_pending_once_the_driver_began() -> None:
    backend = SQLiteBackend("sqlite://")
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("CREATE TABLE t (x)")
        connection.execute("INSERT INTO t VALUES (1)")  # sqlite3 begins here
        assert connection.in_transaction
        assert backend.pending_begin(connection) is None
    finally:
        connection.close()
        backend.close()


def test_other_drivers_have_nothing_pending() -> None:
    assert MySQLBackend("mysql://root@localhost/nothing").pending_begin(object()) is None
