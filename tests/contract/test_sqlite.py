"""The shipped contract suite, unchanged, against a fresh SQLite file per test."""

import pytest

from sidequest_sql.testing.suite import *  # noqa: F403


@pytest.fixture
def sidequest_url(sqlite_url: str) -> str:
    return sqlite_url
