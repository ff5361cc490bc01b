"""The shipped contract suite through PgBouncer in transaction pooling mode.

Every operation's own tests, with the engine options psycopg needs there.
The concurrency and state-machine modules are left out: they prove claims and
the model against the database itself, which ``tests/contract/test_postgres.py``
already does, and through three pooled server connections they would only
take minutes longer.
"""

from typing import Any

import pytest

from sidequest_sql.testing.suite import gather

pytestmark = [pytest.mark.postgres, pytest.mark.pgbouncer]

globals().update(
    gather(
        "test_queues",
        "test_jobs",
        "test_claims",
        "test_listing",
        "test_statistics",
        "test_cleanup",
        "test_times",
        "test_json_values",
        "test_bad_input",
        "test_wait_for_jobs",
    )
)


@pytest.fixture
def sidequest_url(pgbouncer_url: str) -> str:
    return pgbouncer_url


@pytest.fixture
def sidequest_engine_options(pgbouncer_engine_options: dict[str, Any]) -> dict[str, Any]:
    return pgbouncer_engine_options
