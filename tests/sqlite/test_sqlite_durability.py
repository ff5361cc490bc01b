"""SQLite's journal really is WAL, in the file itself, and the backend's connections sync as documented."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

import sidequest_sql as sq
from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend

SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


@pytest.fixture
def backends() -> Iterator[list[SQLBackend]]:
    made: list[SQLBackend] = []
    try:
        yield made
    finally:
        for backend in made:
            backend.close()


def plain_connection(url: str) -> sqlite3.Connection:
    """A connection of the bare driver, with none of the backend's settings."""
    return sqlite3.connect(str(make_url(url).database))


def test_after_migrate_the_file_is_in_wal_mode_for_any_connection(sqlite_url: str, backends: list[SQLBackend]) -> None:
    backend = sq.create_backend(sqlite_url)
    backends.append(backend)
    backend.migrate()

    with plain_connection(sqlite_url) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)

    backend.close()
    with plain_connection(sqlite_url) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_backends_connections_sync_normal_by_default(sqlite_url: str, backends: list[SQLBackend]) -> None:
    backend = sq.create_backend(sqlite_url)
    backends.append(backend)
    backend.migrate()
    backend.create_new_job(NewJobData("q", "s.js", "S"))

    with backend.engine.connect() as conn:
        assert SYNCHRONOUS[conn.exec_driver_sql("PRAGMA synchronous").scalar_one()] == "NORMAL"
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


@pytest.mark.parametrize("level", ["OFF", "NORMAL", "FULL", "EXTRA", "full"])
def test_sqlite_synchronous_chooses_the_level(sqlite_url: str, backends: list[SQLBackend], level: str) -> None:
    backend = sq.create_backend(sqlite_url, sqlite_synchronous=level)
    backends.append(backend)
    backend.migrate()

    with backend.engine.connect() as conn:
        assert SYNCHRONOUS[conn.exec_driver_sql("PRAGMA synchronous").scalar_one()] == level.upper()
