"""Long transactions elsewhere on Postgres: a statement sleeping in one, another idle in one.

Neither may hold up claims, enqueues or completions of other jobs; the sleeper
is cancelled at the end with ``pg_cancel_backend``. Calls that must not wait
run under a timeout so that one which does wait fails instead of hanging.
"""

from __future__ import annotations

import time

import psycopg
import pytest
import sqlalchemy as sa

from sidequest_sql.base import SQLBackend
from sidequest_sql.schema import jobs
from sidequest_sql.testing.waiting import (
    promptly,
    running_and_waiting,
    started,
    work_around_held_rows,
)

pytestmark = pytest.mark.postgres

CALL_S = 10


def session_state(pg_engine: sa.Engine, pid: int) -> tuple[str, str]:
    with pg_engine.connect() as conn:
        row = conn.execute(sa.text("SELECT state, query FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).one()
    return row.state, row.query


def wait_for_state(pg_engine: sa.Engine, pid: int, state: str) -> None:
    deadline = time.monotonic() + CALL_S
    while session_state(pg_engine, pid)[0] != state:
        assert time.monotonic() < deadline, f"session {pid} never became {state!r}"
        time.sleep(0.02)


def test_a_sleeping_statement_and_an_idle_transaction_elsewhere_stall_nothing(
    pg_backend: SQLBackend, pg_engine: sa.Engine
) -> None:
    backend = pg_backend
    running, waiting = running_and_waiting(backend)

    with backend.engine.connect() as idle, backend.engine.connect() as sleeper:
        idle.begin()
        sleeper.begin()
        idle_pid = idle.scalar(sa.text("SELECT pg_backend_pid()"))
        sleeper_pid = sleeper.scalar(sa.text("SELECT pg_backend_pid()"))
        idle.execute(sa.update(jobs).where(jobs.c.id == running.id).values(result={"progress": 50}))
        # The sleeper's transaction holds the oldest waiting job while it sleeps.
        sleeper.execute(sa.select(jobs.c.id).where(jobs.c.id == waiting[0]).with_for_update()).one()
        sleeping = started(lambda: sleeper.exec_driver_sql("SELECT pg_sleep(30)"))
        try:
            wait_for_state(pg_engine, sleeper_pid, "active")
            assert session_state(pg_engine, idle_pid)[0] == "idle in transaction"

            promptly(
                started(lambda: work_around_held_rows(backend, running, waiting)),
                "claiming, enqueueing and completing",
                seconds=CALL_S,
            )
            assert session_state(pg_engine, sleeper_pid)[0] == "active", "the sleeper ended early"
        finally:
            with pg_engine.connect() as admin:
                admin.execute(sa.text("SELECT pg_cancel_backend(:pid)"), {"pid": sleeper_pid})
        with pytest.raises(sa.exc.OperationalError) as cancelled:
            sleeping.result(timeout=CALL_S)
        assert isinstance(cancelled.value.orig, psycopg.errors.QueryCanceled)
        sleeper.rollback()
        idle.rollback()

    assert [job.id for job in backend.claim_pending_job("default")] == [waiting[0]]
