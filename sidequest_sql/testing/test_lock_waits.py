"""Transactions left open elsewhere: what they may hold up, and what they must not.

Another connection, from a backend of its own on the same database as
another worker or an administrator's session would be, keeps a transaction
open while the backend under test works. Where a claim skips locked rows
(``supports_skip_locked``), a transaction holding row locks holds up only
those rows: claims return the other jobs at once and enqueues and completions
go on. Where it does not, a write transaction holds the whole database and
other writers wait for it, without failing. A transaction that only reads
holds up nothing anywhere. Every call that must not wait runs under a
timeout, so that one which does wait fails the test instead of hanging it.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from sidequest_sql import NewJobData, create_backend
from sidequest_sql.base import SQLBackend
from sidequest_sql.schema import jobs, queues

from .clock import ManualClock
from .fixtures import backend  # noqa: F401  (the suite's fixture)
from .test_concurrency import require_shared_database
from .waiting import promptly, started

QUEUE = "contended"
CALL_S = 5
"""How long a call that must not wait may take before the test fails."""
BLOCKED_S = 0.5
"""How long a call that must wait is watched still waiting."""


def new_job(n: int, queue: str = QUEUE) -> NewJobData:
    return NewJobData(queue=queue, script="jobs/work.js", job_class="Work", args=[n])


def enqueue_in_order(backend: SQLBackend, clock: ManualClock, count: int, queue: str = QUEUE) -> list[int]:
    """``count`` jobs, each enqueued a second after the one before: claims take them in this order."""
    ids = []
    for n in range(count):
        ids.append(backend.create_new_job(new_job(n, queue)).id)
        clock.advance(seconds=1)
    return ids


@contextmanager
def elsewhere(url: str, options: dict[str, Any]) -> Iterator[Connection]:
    """A connection of another backend on the same database; its open transaction is rolled back."""
    with create_backend(url, **options) as other:
        with other.engine.connect() as conn:
            transaction = conn.begin()
            try:
                yield conn
            finally:
                if transaction.is_active:
                    transaction.rollback()


def require_skip_locked(backend: SQLBackend) -> None:
    if not backend.supports_skip_locked:
        pytest.skip("claims here do not skip locked rows: a write transaction holds the whole database")


def require_whole_database_writes(backend: SQLBackend) -> None:
    if backend.supports_skip_locked:
        pytest.skip("claims here skip locked rows: a write transaction holds only its rows")


def test_a_claim_skips_jobs_locked_elsewhere_without_waiting(
    backend: SQLBackend,
    sidequest_url: str,
    sidequest_engine_options: dict[str, Any],
    sidequest_clock: ManualClock,
) -> None:
    require_skip_locked(backend)
    ids = enqueue_in_order(backend, sidequest_clock, 10)
    locked, free = ids[:4], ids[4:]
    with elsewhere(sidequest_url, sidequest_engine_options) as conn:
        # One row per statement: with an IN list, MariaDB may scan an index and lock every row it passes.
        held = [conn.scalar(select(jobs.c.id).where(jobs.c.id == job_id).with_for_update()) for job_id in locked]
        assert held == locked

        claimed = promptly(started(lambda: backend.claim_pending_job(QUEUE, 3)), "a claim", seconds=CALL_S)
        assert [job.id for job in claimed] == free[:3], "the oldest jobs it could lock, the locked ones skipped"
        claimed += promptly(started(lambda: backend.claim_pending_job(QUEUE, 10)), "a claim", seconds=CALL_S)
        assert [job.id for job in claimed] == free
        assert promptly(started(lambda: backend.claim_pending_job(QUEUE)), "a claim", seconds=CALL_S) == []
        seen = promptly(
            started(lambda: [backend.get_job(job_id) for job_id in locked]), "reading locked jobs", seconds=CALL_S
        )
        assert [(job.id, job.state) for job in seen] == [(job_id, "waiting") for job_id in locked]
        done = promptly(
            started(lambda: backend.update_job(free[0], state="completed", completed_at=sidequest_clock())),
            "completing a job",
            seconds=CALL_S,
        )
        assert done.state == "completed"

    assert [job.id for job in backend.claim_pending_job(QUEUE, 10)] == locked


def test_an_idle_transaction_holding_a_row_stalls_no_claim_enqueue_or_completion(
    backend: SQLBackend,
    sidequest_url: str,
    sidequest_engine_options: dict[str, Any],
    sidequest_clock: ManualClock,
) -> None:
    require_skip_locked(backend)
    running = backend.create_new_job(new_job(-1))
    [_] = backend.claim_pending_job(QUEUE)
    backend.update_job(running.id, state="running", attempted_at=sidequest_clock())
    backend.create_new_queue(QUEUE)
    waiting = enqueue_in_order(backend, sidequest_clock, 5)
    with elsewhere(sidequest_url, sidequest_engine_options) as conn:
        # Rows of the same queue and the queue itself, then the transaction sits idle.
        conn.execute(update(jobs).where(jobs.c.id == running.id).values(result={"progress": 50}))
        conn.execute(update(queues).where(queues.c.name == QUEUE).values(concurrency=3))

        def work() -> None:
            [one] = backend.claim_pending_job(QUEUE)
            assert one.id == waiting[0]
            more = backend.claim_pending_job(QUEUE, 2)
            assert [job.id for job in more] == waiting[1:3]
            new = backend.create_new_job(new_job(100))
            batch = backend.create_new_jobs([new_job(101), new_job(102, "elsewhere")])
            for job in [one, *more]:
                backend.update_job(job.id, state="completed", completed_at=sidequest_clock())
            rest = backend.claim_pending_job(QUEUE, 10)
            assert [job.id for job in rest] == [*waiting[3:], new.id, batch[0].id]
            assert backend.count_jobs().completed == 3
            assert backend.get_job(running.id).result is None  # type: ignore[union-attr]

        promptly(started(work), "claiming, enqueueing and completing", seconds=CALL_S)


def test_a_long_read_transaction_stalls_no_claim_enqueue_or_completion(
    backend: SQLBackend,
    sidequest_url: str,
    sidequest_engine_options: dict[str, Any],
    sidequest_clock: ManualClock,
) -> None:
    require_shared_database(backend, sidequest_url, sidequest_engine_options)
    waiting = enqueue_in_order(backend, sidequest_clock, 5)
    with elsewhere(sidequest_url, sidequest_engine_options) as conn:
        assert len(conn.execute(select(jobs)).all()) == 5
        conn.execute(select(queues)).all()

        def work() -> None:
            claimed = backend.claim_pending_job(QUEUE, 3)
            assert [job.id for job in claimed] == waiting[:3]
            new = backend.create_new_job(new_job(100))
            backend.create_new_jobs([new_job(101), new_job(102)])
            for job in claimed:
                backend.update_job(job.id, state="completed", completed_at=sidequest_clock())
            assert [job.id for job in backend.claim_pending_job(QUEUE, 3)] == [*waiting[3:], new.id]
            assert backend.count_jobs().completed == 3

        promptly(started(work), "claiming, enqueueing and completing", seconds=CALL_S)
        # The reader's transaction is still open and can go on reading.
        assert conn.execute(select(jobs.c.id)).all()


def test_a_write_transaction_elsewhere_makes_writers_wait_for_it_not_fail(
    backend: SQLBackend,
    sidequest_url: str,
    sidequest_engine_options: dict[str, Any],
    sidequest_clock: ManualClock,
) -> None:
    require_whole_database_writes(backend)
    require_shared_database(backend, sidequest_url, sidequest_engine_options)
    [updated, untouched] = enqueue_in_order(backend, sidequest_clock, 2)
    with elsewhere(sidequest_url, sidequest_engine_options) as conn:
        conn.execute(update(jobs).where(jobs.c.id == updated).values(result={"progress": 50}))
        claim = started(lambda: backend.claim_pending_job(QUEUE))
        with pytest.raises(FutureTimeout):
            claim.result(timeout=BLOCKED_S)
        # Reading never waits for a writer.
        read = promptly(started(lambda: backend.get_job(untouched)), "a read", seconds=CALL_S)
        assert read is not None and read.state == "waiting"
        conn.commit()
        [claimed] = promptly(claim, "a claim once the other transaction ended", seconds=CALL_S)
    assert claimed.id == updated
    assert backend.get_job(updated).result == {"progress": 50}  # type: ignore[union-attr]
