"""One fresh, empty database per test, on SQLite and on Postgres.

On Postgres "empty" is a schema of its own with a unique name, dropped
afterwards, so these tests never touch what other suites keep in ``public``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from migration_database import Database

import sidequest_sql as sq


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    url = str(request.getfixturevalue(f"{request.param}_url"))
    schema = None
    if request.param == "postgres":
        schema = f"sq_migr_{uuid.uuid4().hex[:12]}"
    db = Database(url, schema)
    try:
        yield db
    finally:
        db.close()
        if schema is not None:
            engine = sa.create_engine(sq.create_backend(url).url)
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                engine.dispose()
