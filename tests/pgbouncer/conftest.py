"""PgBouncer in transaction pooling mode in front of the test Postgres database.

The tests here start their own PgBouncer (``pgbouncer_server``), once per run.
Without a ``pgbouncer`` executable they skip, saying how to install it; in CI
(``CI=true``) they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from pgbouncer_server import INSTALL_HINT, pgbouncer_binary, running_pgbouncer


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL that reaches the test database through PgBouncer in transaction pooling mode."""
    binary = pgbouncer_binary()
    if binary is None:
        message = f"these tests need PgBouncer: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with running_pgbouncer(binary, postgres_url, tmp_path_factory.mktemp("pgbouncer")) as url:
        yield url.render_as_string(hide_password=False)


@pytest.fixture
def pgbouncer_engine_options() -> dict[str, Any]:
    """What psycopg needs behind transaction pooling: no server-side prepared statements."""
    return {"connect_args": {"prepare_threshold": None}}
