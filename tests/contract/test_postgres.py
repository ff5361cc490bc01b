"""The shipped contract suite, unchanged, against PostgreSQL."""

import pytest

from sidequest_sql.testing.suite import *  # noqa: F403

pytestmark = pytest.mark.postgres


@pytest.fixture
def sidequest_url(postgres_url: str) -> str:
    return postgres_url
