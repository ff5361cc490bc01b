"""Long transactions elsewhere on MariaDB: a statement sleeping in one, another idle in one.

Neither may hold up claims, enqueues or completions of other jobs; the sleeper
is cancelled at the end with ``KILL QUERY``. Calls that must not wait run
under a timeout so that one which does wait fails instead of hanging.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import sidequest_sql as sq
from sidequest_sql.base import SQLBackend
from sidequest_sql.schema import jobs
from sidequest_sql.testing.waiting import (
    promptly,
    running_and_waiting,
    started,
    work_around_held_rows,
)

pytestmark = pytest.mark.mariadb

CALL_S = 10
QUERY_INTERRUPTED = 1317


@pytest.fixture
def mariadb_backend(mariadb_url: str) -> Iterator[SQLBackend]:
    with sq.create_backend(mariadb_url, worker_name="mariadb-worker") as backend:
        backend.migrate()
        backend.truncate()
        yield backend


def session_command(engine: sa.Engine, connection_id: int) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT command, info FROM information_schema.processlist WHERE id = :id"), {"id": connection_id}
        ).one()
    return row.command, row.info


def test_a_sleeping_statement_and_an_idle_transaction_elsewhere_stall_nothing(mariadb_backend: SQLBackend) -> None:
    backend = mariadb_backend
    running, waiting = running_and_waiting(backend)

    with backend.engine.connect() as idle, backend.engine.connect() as sleeper:
        idle.begin()
        sleeper.begin()
        sleeper_id = sleeper.scalar(sa.text("SELECT CONNECTION_ID()"))
        idle.execute(sa.update(jobs).where(jobs.c.id == running.id).values(result={"progress": 50}))
        # The sleeper's transaction holds the oldest waiting job while it sleeps.
        sleeper.execute(sa.select(jobs.c.id).where(jobs.c.id == waiting[0]).with_for_update()).one()
        sleeping = started(lambda: sleeper.exec_driver_sql("SELECT SLEEP(30)").scalar())
        try:
            deadline = time.monotonic() + CALL_S
            while "SLEEP" not in (session_command(backend.engine, sleeper_id)[1] or ""):
                assert time.monotonic() < deadline, "the sleeper never started sleeping"
                time.sleep(0.02)

            promptly(
                started(lambda: work_around_held_rows(backend, running, waiting)),
                "claiming, enqueueing and completing",
                seconds=CALL_S,
            )
            assert "SLEEP" in (session_command(backend.engine, sleeper_id)[1] or ""), "the sleeper ended early"
        finally:
            with backend.engine.connect() as admin:
                admin.exec_driver_sql(f"KILL QUERY {int(sleeper_id)}")
        with pytest.raises(sa.exc.OperationalError) as interrupted:
            sleeping.result(timeout=CALL_S)
        assert interrupted.value.orig.args[0] == QUERY_INTERRUPTED  # type: ignore[union-attr]
        sleeper.rollback()
        idle.rollback()

    assert [job.id for job in backend.claim_pending_job("default")] == [waiting[0]]
