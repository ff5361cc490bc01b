"""Fixtures for what only Postgres has: schemas, row locks, several real connections.

Every test works in schemas of its own with unique names, dropped afterwards,
so it neither sees nor disturbs other tests or suites sharing the database.
Every connection carries a lock and statement timeout, so that a claim that
blocks where it must not fails the test instead of hanging it.

``node_sidequest`` runs Node Sidequest's own code (``tests/node``) on the
same database.

What must not touch a shared server (restarting it, passwords, TLS) runs on
``spare_cluster``, a cluster the tests create and drop (``spare_cluster.py``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from node_sidequest import NodeSidequest
from node_sidequest import unavailable_reason as node_unavailable_reason
from spare_cluster import CREATED, SpareCluster, create_spare_cluster, drop_spare_cluster, unavailable_reason

import sidequest_sql as sq
from sidequest_sql.base import SQLBackend

HANG_GUARD = "-c lock_timeout=10s -c statement_timeout=60s"

pytestmark = pytest.mark.postgres


@pytest.fixture
def hang_guard() -> str:
    """libpq ``options`` that bound lock waits and statements, for connect_args of one's own."""
    return HANG_GUARD


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[sa.Engine]:
    """A plain SQLAlchemy engine on the test database, for looking and poking around."""
    engine = sa.create_engine(sq.create_backend(postgres_url).url, connect_args={"options": HANG_GUARD})
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def new_schema(pg_engine: sa.Engine) -> Iterator[Callable[..., str]]:
    """Hands out unique schema names (not created) and drops every one afterwards."""
    names: list[str] = []

    def make(prefix: str = "sq_pg_") -> str:
        names.append(f"{prefix}{uuid.uuid4().hex[:12]}")
        return names[-1]

    try:
        yield make
    finally:
        with pg_engine.begin() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def make_backend(postgres_url: str, new_schema: Callable[..., str]) -> Iterator[Callable[..., SQLBackend]]:
    """Backends on the test database, closed afterwards (before their schemas are dropped)."""
    backends: list[SQLBackend] = []

    def make(schema: str | None, **options: Any) -> SQLBackend:
        options.setdefault("connect_args", {"options": HANG_GUARD})
        backends.append(sq.create_backend(postgres_url, schema=schema, **options))
        return backends[-1]

    try:
        yield make
    finally:
        for backend in backends:
            backend.close()


@pytest.fixture
def pg_backend(make_backend: Callable[..., SQLBackend], new_schema: Callable[..., str]) -> SQLBackend:
    """A migrated backend in a schema of its own."""
    backend = make_backend(new_schema(), worker_name="pg-worker")
    backend.migrate()
    return backend


@pytest.fixture(scope="session")
def node_sidequest(postgres_url: str) -> NodeSidequest:
    """Node Sidequest's own code on the test database (``node_sidequest.py``); skipped, saying
    how to install it, where node or the pinned packages are missing (failed in CI)."""
    reason = node_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return NodeSidequest(postgres_url)


@pytest.fixture(scope="session")
def spare_cluster() -> Iterator[SpareCluster]:
    """A Postgres cluster of the tests' own (``spare_cluster.py``), to restart and to log in to
    with a password and TLS; dropped at the end. Skipped where it cannot be made (failed in CI)."""
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = create_spare_cluster()
    try:
        yield cluster
    finally:
        drop_spare_cluster(cluster)


@pytest.fixture
def spare_schema(spare_cluster: SpareCluster) -> Iterator[Callable[[], str]]:
    """Hands out unique schema names on the spare cluster (not created) and drops every one afterwards."""
    names: list[str] = []

    def make() -> str:
        names.append(f"sq_spare_{uuid.uuid4().hex[:12]}")
        return names[-1]

    try:
        yield make
    finally:
        with spare_cluster.admin() as conn:
            for name in names:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # ``-m node`` selects (and ``-m "not node"`` leaves out) exactly the tests that run Node.
    for item in items:
        if "node_sidequest" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.node)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for cluster in CREATED:
        restarts = ", ".join(f"{s:.1f}s" for s in cluster.restarts_s) or "none"
        terminalreporter.write_line(
            f"spare Postgres {cluster.version} cluster on port {cluster.port} ({cluster.certificate} certificate): "
            f"ready in {cluster.created_in_s:.1f}s; restarts: {restarts}"
        )
