"""The shipped contract suite, unchanged, against the async backend of MariaDB (aiomysql)."""

import pytest

from sidequest_sql.testing.suite import *  # noqa: F403

pytestmark = pytest.mark.mariadb


@pytest.fixture
def sidequest_url(mariadb_url: str) -> str:
    return mariadb_url


@pytest.fixture
def sidequest_async() -> bool:
    return True
