"""The shipped contract suite, unchanged, against the async backend of PostgreSQL (psycopg's AsyncConnection)."""

import pytest

from sidequest_sql.testing.suite import *  # noqa: F403

pytestmark = pytest.mark.postgres


@pytest.fixture
def sidequest_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def sidequest_async() -> bool:
    return True
