"""The shipped contract suite, unchanged, against the async backend of a fresh SQLite file per test."""

import pytest

from sidequest_sql.testing.suite import *  # noqa: F403


@pytest.fixture
def sidequest_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def sidequest_async() -> bool:
    return True
