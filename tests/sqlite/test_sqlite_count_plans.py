"""On SQLite too the statistics read indexes, not the whole table: EXPLAIN QUERY PLAN says which.

Nothing runs ANALYZE on SQLite, so these are the plans its planner makes
without statistics, as a library user's database has them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

import sidequest_sql as sq
from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.schema import COUNTED_AT_INDEX, QUEUE_STATE_INDEX
from sidequest_sql.testing.statements import job_queries


# Half past an hour, so that the hourly buckets below hold whole hours of jobs.
NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SQLBackend]:
    backend = sq.create_backend(sqlite_url, clock=lambda: NOW)
    backend.migrate()
    now = NOW
    jobs = backend.create_new_jobs(NewJobData(f"q{i % 3}", "s.js", "S", args=[i]) for i in range(300))
    for i, job in enumerate(jobs[:250]):
        backend.update_job(job.id, state="completed", completed_at=now - timedelta(hours=i))
    try:
        yield backend
    finally:
        backend.close()


def plans(backend: SQLBackend, call: Callable[[], object]) -> list[str]:
    """The query plan of each statement on the jobs table that ``call()`` sends, one line per step."""
    with job_queries(backend) as sent:
        call()
    assert sent
    with backend.engine.connect() as conn:
        return [
            "\n".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
            for sql, params in sent
        ]


def test_counts_by_state_read_only_the_queue_state_index(store: SQLBackend) -> None:
    for call in (store.count_jobs, store.count_jobs_by_queues):
        for plan in plans(store, call):
            assert f"SCAN sidequest_jobs USING COVERING INDEX {QUEUE_STATE_INDEX}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan


def test_time_bounded_counts_read_only_their_window(store: SQLBackend) -> None:
    calls: list[Callable[[], object]] = [
        *(lambda r=time_range: store.count_jobs_over_time(r) for time_range in ("30m", "12h", "2d")),
        lambda: store.count_jobs(since=NOW - timedelta(hours=6)),
        lambda: store.count_jobs(until=NOW - timedelta(hours=200)),
        lambda: store.count_jobs(since=NOW - timedelta(hours=6), until=NOW),
    ]
    for call in calls:
        for plan in plans(store, call):
            assert f"SEARCH sidequest_jobs USING INDEX {COUNTED_AT_INDEX}" in plan, plan


def test_the_counts_are_right(store: SQLBackend) -> None:
    counts = store.count_jobs()
    assert (counts.total, counts.completed, counts.waiting) == (300, 250, 50)
    assert {name: c.total for name, c in store.count_jobs_by_queues().items()} == {"q0": 100, "q1": 100, "q2": 100}
    # Completed 0, 1, 2 … hours ago, one each: the 12 hourly buckets hold the last 12 and the waiting jobs.
    buckets = store.count_jobs_over_time("12h")
    assert [b.completed for b in buckets] == [1] * 12
    assert [b.waiting for b in buckets] == [0] * 11 + [50]
    assert store.count_jobs(since=NOW - timedelta(hours=6), until=NOW).completed == 7
