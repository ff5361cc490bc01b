"""Fixtures of the worker tests: a store on each database (helpers: ``worker_threads``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import sidequest_sql as sq
from sidequest_sql.testing.clock import ManualClock

DIALECTS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


@pytest.fixture(params=DIALECTS)
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an emptied, migrated store on each database in turn."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    with sq.create_backend(url) as backend:
        backend.migrate()
        backend.truncate()
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(store_url: str, clock: ManualClock) -> Iterator[sq.SQLBackend]:
    with sq.create_backend(store_url, clock=clock, worker_name="test-worker") as backend:
        yield backend
