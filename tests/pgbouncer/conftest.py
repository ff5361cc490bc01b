"""PgBouncer in transaction pooling mode in front of the test Postgres database.

The tests here start their own PgBouncer (``pgbouncer_server``), once per run.
Without a ``pgbouncer`` executable they skip, saying how to install it; in CI
(``CI=true``) they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pgbouncer_server import INSTALL_HINT, pgbouncer_binary, running_pgbouncer

import sidequest_sql as sq
from sidequest_sql.base import SQLBackend


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


@pytest.fixture
def make_backend(postgres_url: str, pgbouncer_url: str) -> Iterator[Callable[..., SQLBackend]]:
    """Migrated backends through PgBouncer, each in a schema of its own, dropped afterwards."""
    made: list[SQLBackend] = []

    def make(dialect: type[SQLBackend] | None = None, **options: Any) -> SQLBackend:
        schema = f"sq_pgb_{uuid.uuid4().hex[:12]}"
        if dialect is None:
            backend = sq.create_backend(pgbouncer_url, schema=schema, **options)
        else:
            backend = dialect(pgbouncer_url, schema=schema, **options)
        made.append(backend)
        backend.migrate()
        return backend

    try:
        yield make
    finally:
        for backend in made:
            backend.close()
        direct = sa.create_engine(sq.create_backend(postgres_url).url)
        try:
            with direct.begin() as conn:
                for backend in made:
                    conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{backend.schema}" CASCADE')
        finally:
            direct.dispose()
