"""Long transactions elsewhere on Postgres: a statement sleeping in one, another idle in one.

Neither may hold up claims, enqueues or completions of other jobs; the sleeper
is cancelled at the end with ``pg_cancel_backend``. Calls that must not wait
run under a timeout so that one which does wait fails instead of hanging.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest
import sqlalchemy as sa

from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.schema import jobs
from sidequest_sql.testing.waiting import promptly, started

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
    running = backend.create_new_job(NewJobData("default", "s.js", "S", args=["running"]))
    [_] = backend.claim_pending_job("default")
    backend.update_job(running.id, state="running", attempted_at=datetime.now(UTC))
    new_jobs = [NewJobData("default", "s.js", "S", args=[i]) for i in range(6)]
    waiting = [job.id for job in backend.create_new_jobs(new_jobs)]

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

            def work() -> None:
                claimed = backend.claim_pending_job("default", 3)
                assert [job.id for job in claimed] == waiting[1:4]
                new = backend.create_new_job(NewJobData("default", "s.js", "S", args=["new"]))
                backend.create_new_jobs([NewJobData("other", "s.js", "S"), NewJobData("other", "s.js", "S")])
                for job in claimed:
                    backend.update_job(job.id, state="completed", completed_at=datetime.now(UTC))
                rest = backend.claim_pending_job("default", 10)
                assert [job.id for job in rest] == [*waiting[4:], new.id]
                assert backend.count_jobs().completed == 3
                assert backend.get_job(running.id).result is None  # type: ignore[union-attr]

            promptly(started(work), "claiming, enqueueing and completing", seconds=CALL_S)
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
