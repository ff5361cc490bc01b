"""Where the project's own tests find their databases.

Postgres comes from ``$SIDEQUEST_TEST_POSTGRES_URL`` and MariaDB from
``$SIDEQUEST_TEST_MARIADB_URL``; else each from a testcontainers container
where a Docker engine answers; else their tests skip, saying how to point
them at a server. In CI (``CI=true``) a missing database fails the run instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

POSTGRES_VARIABLE = "SIDEQUEST_TEST_POSTGRES_URL"
MARIADB_VARIABLE = "SIDEQUEST_TEST_MARIADB_URL"


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return False
    return True


def _server_url(variable: str, example: str, container: Callable[[], Any]) -> Iterator[str]:
    """The URL in ``variable``; else a testcontainers server; else skip (fail in CI)."""
    url = os.environ.get(variable)
    if url:
        yield url
        return
    if _docker_answers():
        with container() as server:
            yield server.get_connection_url()
        return
    message = f"no server for these tests: set {variable}={example} or run a Docker engine for testcontainers"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    def container() -> Any:
        from testcontainers.postgres import PostgresContainer

        return PostgresContainer("postgres:16-alpine", driver="psycopg")

    yield from _server_url(POSTGRES_VARIABLE, "postgresql://user@host:5432/db", container)


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    def container() -> Any:
        from testcontainers.mysql import MySqlContainer

        return MySqlContainer("mariadb:11", dialect="pymysql")

    yield from _server_url(MARIADB_VARIABLE, "mysql://user@host:3306/db", container)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sidequest.sqlite'}"
