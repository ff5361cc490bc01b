"""psycopg 3 serves every Postgres scheme, and URL query parameters reach libpq untouched."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
import sqlalchemy as sa

from sidequest_sql import create_backend
from sidequest_sql.dialects.postgres import PostgresBackend
from sidequest_sql.migrations import revisions

pytestmark = pytest.mark.postgres


def with_scheme(url: str, scheme: str, **query: str) -> str:
    parsed = sa.make_url(url).set(drivername=scheme)
    if query:
        parsed = parsed.update_query_dict(query)
    return parsed.render_as_string(hide_password=False)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_every_postgres_scheme_uses_psycopg_3(
    postgres_url: str, new_schema: Callable[..., str], scheme: str
) -> None:
    with create_backend(with_scheme(postgres_url, scheme), schema=new_schema()) as backend:
        assert isinstance(backend, PostgresBackend)
        assert backend.engine.dialect.driver == "psycopg"
        assert backend.engine.url.drivername == "postgresql+psycopg"

        assert backend.migrate() == revisions()
        assert backend.create_new_queue("default").name == "default"
        with backend.engine.connect() as conn:
            assert isinstance(conn.connection.dbapi_connection, psycopg.Connection)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_query_parameters_pass_through_to_libpq(postgres_url: str, scheme: str) -> None:
    url = with_scheme(postgres_url, scheme, sslmode="disable", application_name="sidequest_sql_test")
    with create_backend(url) as backend:
        assert backend.engine.url.query["sslmode"] == "disable"
        assert backend.engine.url.query["application_name"] == "sidequest_sql_test"
        with backend.engine.connect() as conn:
            parameters = conn.connection.dbapi_connection.info.get_parameters()
            assert parameters["sslmode"] == "disable"
            assert conn.exec_driver_sql("SHOW application_name").scalar_one() == "sidequest_sql_test"
            ssl = conn.exec_driver_sql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar_one()
            assert ssl is False
