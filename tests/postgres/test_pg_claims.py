"""Claims on Postgres: one locking statement, SKIP LOCKED, many claimers, an index that serves them."""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from sidequest_sql import DuplicatedJobError, NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.schema import CLAIM_INDEX

pytestmark = pytest.mark.postgres

CLAIM_SHAPE = re.compile(
    r"WITH claimable AS MATERIALIZED \(SELECT .+ FOR UPDATE SKIP LOCKED\)\s*"
    r"UPDATE \S*sidequest_jobs SET .+ FROM claimable WHERE .+ RETURNING .+",
    re.DOTALL,
)


@dataclass
class Sent:
    statement: str
    parameters: Any


@contextmanager
def statements_sent(backend: SQLBackend) -> Iterator[list[Sent]]:
    """Every statement the backend hands its driver while the block runs."""
    sent: list[Sent] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        sent.append(Sent(statement, parameters))

    sa.event.listen(backend.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(backend.engine, "before_cursor_execute", record)


def enqueue(backend: SQLBackend, count: int, queue: str = "default") -> list[int]:
    """``count`` jobs available a minute ago, each enqueued after the one before."""
    ago = datetime.now(UTC) - timedelta(minutes=1)
    jobs = backend.create_new_jobs(
        NewJobData(queue, "s.js", "S", args=[i], available_at=ago) for i in range(count)
    )
    return [job.id for job in jobs]


def jobs_table(backend: SQLBackend) -> str:
    """The jobs table's qualified name, for SQL written by hand."""
    return f'"{backend.schema}".sidequest_jobs'


# -- the statement -------------------------------------------------------------------------


def test_a_claim_is_one_locking_update_returning_statement(pg_backend: SQLBackend) -> None:
    ids = enqueue(pg_backend, 5)

    for quantity, expected in [(3, ids[:3]), (10, ids[3:]), (1, [])]:
        with statements_sent(pg_backend) as sent:
            claimed = pg_backend.claim_pending_job("default", quantity)
        assert [job.id for job in claimed] == expected
        assert len(sent) == 1, [s.statement for s in sent]
        statement = " ".join(sent[0].statement.split())
        assert CLAIM_SHAPE.fullmatch(statement), statement
        assert f"{pg_backend.schema}.sidequest_jobs" in statement.replace('"', "")


# -- row locks --------------------------------------------------------------------------


def test_a_claim_skips_rows_another_transaction_has_locked(pg_backend: SQLBackend, pg_engine: sa.Engine) -> None:
    ids = enqueue(pg_backend, 10)

    with pg_engine.connect() as other, other.begin() as locking:
        locked = other.execute(
            sa.text(f"SELECT id FROM {jobs_table(pg_backend)} WHERE id IN :ids ORDER BY id FOR UPDATE")
            .bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": ids[:3]},
        ).scalars().all()
        assert locked == ids[:3]

        # The backend's lock_timeout turns a claim that waits on those rows into an error.
        assert [job.id for job in pg_backend.claim_pending_job("default", 5)] == ids[3:8]
        assert [job.id for job in pg_backend.claim_pending_job("default", 5)] == ids[8:]
        assert pg_backend.claim_pending_job("default", 5) == []
        locking.rollback()

    assert [job.id for job in pg_backend.claim_pending_job("default", 5)] == ids[:3]


def test_an_open_claim_does_not_block_nor_share_with_another(pg_backend: SQLBackend, pg_engine: sa.Engine) -> None:
    ids = enqueue(pg_backend, 9)
    with statements_sent(pg_backend) as sent:
        assert [job.id for job in pg_backend.claim_pending_job("default", 3)] == ids[:3]
    (claim,) = sent

    # The very statement the backend sends, held open in another transaction.
    with pg_engine.connect() as other, other.begin() as open_claim:
        held = [row.id for row in other.exec_driver_sql(claim.statement, claim.parameters)]
        assert held == ids[3:6]

        assert [job.id for job in pg_backend.claim_pending_job("default", 3)] == ids[6:]
        assert pg_backend.claim_pending_job("default", 3) == []
        open_claim.rollback()

    assert [job.id for job in pg_backend.claim_pending_job("default", 3)] == ids[3:6]


# -- many claimers ------------------------------------------------------------------------


def test_concurrent_claimers_take_every_job_exactly_once(
    pg_backend: SQLBackend, make_backend: Callable[..., SQLBackend]
) -> None:
    workers, total = 8, 2000
    ids = enqueue(pg_backend, total, queue="bulk")
    claimers = [make_backend(pg_backend.schema, worker_name=f"claimer-{n}") for n in range(workers)]
    start = threading.Barrier(workers, timeout=30)

    def claim_until_empty(n: int) -> list[tuple[int, str | None]]:
        rng = random.Random(n)
        claimer = claimers[n]
        taken: list[tuple[int, str | None]] = []
        start.wait()
        while batch := claimer.claim_pending_job("bulk", rng.randint(1, 10)):
            assert all(job.state == "claimed" for job in batch)
            taken += [(job.id, job.claimed_by) for job in batch]
        return taken

    with ThreadPoolExecutor(workers) as pool:
        results = [future.result(timeout=120) for future in [pool.submit(claim_until_empty, n) for n in range(workers)]]

    claimed = [job_id for taken in results for job_id, _ in taken]
    duplicates = [job_id for job_id, times in Counter(claimed).items() if times > 1]
    assert duplicates == []
    assert sorted(claimed) == sorted(ids)
    for n, taken in enumerate(results):
        assert {by for _, by in taken} <= {f"claimer-{n}"}
    counts = pg_backend.count_jobs()
    assert (counts.waiting, counts.claimed) == (0, total)
    stored = {job.id: job.claimed_by for job in pg_backend.list_jobs(queue="bulk", limit=total)}
    assert stored == {job_id: by for taken in results for job_id, by in taken}


# -- the index ----------------------------------------------------------------------------


def test_the_claim_uses_the_claim_index_among_many_finished_jobs(
    pg_backend: SQLBackend, pg_engine: sa.Engine
) -> None:
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO {jobs_table(pg_backend)} (queue, state, script, class, args, constructor_args, attempt, "
            "max_attempts, inserted_at, available_at, completed_at) "
            "SELECT 'default', 'completed', 's.js', 'S', '[]', '[]', 1, 5, "
            "now() - make_interval(secs => g), now() - make_interval(secs => g), now() "
            "FROM generate_series(1, 20000) AS g"
        )
    enqueue(pg_backend, 50)
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(f"ANALYZE {jobs_table(pg_backend)}")

    with statements_sent(pg_backend) as sent:
        assert len(pg_backend.claim_pending_job("default", 5)) == 5
    (claim,) = sent

    with pg_engine.connect() as conn:
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + claim.statement, claim.parameters).scalars())
    assert CLAIM_INDEX in plan, plan
    assert "Seq Scan on sidequest_jobs" not in plan, plan


def test_the_partial_unique_index_rejects_a_duplicate_digest_but_not_nulls(
    pg_backend: SQLBackend, pg_engine: sa.Engine
) -> None:
    first = pg_backend.create_new_job(NewJobData("default", "s.js", "S", unique_digest="once"))
    with pytest.raises(DuplicatedJobError):
        pg_backend.create_new_job(NewJobData("default", "s.js", "S", unique_digest="once"))
    pg_backend.update_job(first.id, state="completed")
    with pytest.raises(DuplicatedJobError):
        pg_backend.create_new_job(NewJobData("default", "s.js", "S", unique_digest="once"))

    undigested = pg_backend.create_new_jobs([NewJobData("default", "s.js", "S") for _ in range(50)])

    assert len(undigested) == 50
    with pg_engine.connect() as conn:
        counts = conn.exec_driver_sql(
            f"SELECT count(*), count(unique_digest) FROM {jobs_table(pg_backend)}"
        ).one()
        # A raw insert, as another process would make it, meets the same index.
        with pytest.raises(sa.exc.IntegrityError, match="sidequest_jobs_unique_digest_active_idx"):
            conn.exec_driver_sql(
                f"INSERT INTO {jobs_table(pg_backend)} (queue, state, script, class, args, constructor_args, "
                "attempt, max_attempts, available_at, unique_digest) "
                "VALUES ('default', 'waiting', 's.js', 'S', '[]', '[]', 0, 5, now(), 'once')"
            )
    assert tuple(counts) == (51, 1)
