"""Fixtures for what only Postgres has: schemas, row locks, several real connections.

Every test works in schemas of its own with unique names, dropped afterwards,
so it neither sees nor disturbs other tests or suites sharing the database.
Every connection carries a lock and statement timeout, so that a claim that
blocks where it must not fails the test instead of hanging it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

import sidequest_sql as sq
from sidequest_sql.base import SQLBackend

HANG_GUARD = "-c lock_timeout=10s -c statement_timeout=60s"

pytestmark = pytest.mark.postgres


@pytest.fixture
def hang_guard() -> str:
    """libpq ``options`` that bound lock waits and statements, for connect_args of one's own."""
    return HANG_GUARD


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[sa.Engine]:
    """A plain SQLAlchemy engine on the test database, for looking and poking around."""
    engine = sa.create_engine(sq.create_backend(postgres_url).url, connect_args={"options": HANG_GUARD})
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def new_schema(pg_engine: sa.Engine) -> Iterator[Callable[..., str]]:
    """Hands out unique schema names (not created) and drops every one afterwards."""
    names: list[str] = []

    def make(prefix: str = "sq_pg_") -> str:
        names.append(f"{prefix}{uuid.uuid4().hex[:12]}")
        return names[-1]

    try:
        yield make
    finally:
        with pg_engine.begin() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def make_backend(postgres_url: str, new_schema: Callable[..., str]) -> Iterator[Callable[..., SQLBackend]]:
    """Backends on the test database, closed afterwards (before their schemas are dropped)."""
    backends: list[SQLBackend] = []

    def make(schema: str | None, **options: Any) -> SQLBackend:
        options.setdefault("connect_args", {"options": HANG_GUARD})
        backends.append(sq.create_backend(postgres_url, schema=schema, **options))
        return backends[-1]

    try:
        yield make
    finally:
        for backend in backends:
            backend.close()


@pytest.fixture
def pg_backend(make_backend: Callable[..., SQLBackend], new_schema: Callable[..., str]) -> SQLBackend:
    """A migrated backend in a schema of its own."""
    backend = make_backend(new_schema(), worker_name="pg-worker")
    backend.migrate()
    return backend
