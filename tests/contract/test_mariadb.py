"""The shipped contract suite, unchanged, against MariaDB."""

import pytest

from sidequest_sql.testing.suite import *  # noqa: F403

pytestmark = pytest.mark.mariadb


@pytest.fixture
def sidequest_url(mariadb_url: str) -> str:
    return mariadb_url
