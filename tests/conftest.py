"""Where the project's own tests find their databases.

Postgres comes from ``$SIDEQUEST_TEST_POSTGRES_URL``; else from a
testcontainers container where a Docker engine answers; else the Postgres
tests skip, saying how to point them at a server. In CI (``CI=true``) a
missing Postgres fails the run instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_VARIABLE = "SIDEQUEST_TEST_POSTGRES_URL"


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = os.environ.get(POSTGRES_VARIABLE)
    if url:
        yield url
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver="psycopg") as container:
            yield container.get_connection_url()
        return
    message = (
        f"no PostgreSQL server: set {POSTGRES_VARIABLE}=postgresql://user@host:5432/db "
        "or run a Docker engine for testcontainers"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sidequest.sqlite'}"
