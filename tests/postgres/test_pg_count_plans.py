"""The statistics read indexes, not the whole table: their plans, checked with EXPLAIN.

The table holds what a store holds after a while: many finished jobs, spread
over weeks, and a few waiting, claimed and running ones; vacuumed and
analyzed, as autovacuum leaves a table after a bulk insert.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from sidequest_sql.base import SQLBackend
from sidequest_sql.schema import COUNTED_AT_INDEX, QUEUE_STATE_INDEX
from sidequest_sql.testing.statements import job_queries

pytestmark = pytest.mark.postgres

FINISHED = 20_000
HISTORY = timedelta(days=60)


@pytest.fixture
def store(pg_backend: SQLBackend, pg_engine: sa.Engine) -> SQLBackend:
    table = f'"{pg_backend.schema}".sidequest_jobs'
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO {table} (queue, state, script, class, args, constructor_args, attempt, max_attempts, "
            "inserted_at, available_at, attempted_at, completed_at) "
            "SELECT 'q' || mod(g, 4), 'completed', 's.js', 'S', '[]', '[]', 1, 5, t, t, t, t "
            f"FROM (SELECT g, now() - interval '{HISTORY.days} days' * g / {FINISHED} AS t "
            f"FROM generate_series(1, {FINISHED}) AS g) AS s"
        )
        conn.exec_driver_sql(
            f"INSERT INTO {table} (queue, state, script, class, args, constructor_args, attempt, max_attempts, "
            "inserted_at, available_at, claimed_at, attempted_at) "
            "SELECT 'q0', (ARRAY['waiting', 'claimed', 'running'])[mod(g, 3) + 1], 's.js', 'S', '[]', '[]', 0, 5, "
            "now() - interval '1 minute', now() - interval '1 minute', "
            "CASE WHEN mod(g, 3) > 0 THEN now() END, CASE WHEN mod(g, 3) = 2 THEN now() END "
            "FROM generate_series(1, 60) AS g"
        )
    with pg_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    return pg_backend


def plans(engine: sa.Engine, call: Callable[[], object], backend: SQLBackend) -> list[str]:
    """The plan of each statement on the jobs table that ``call()`` sends."""
    with job_queries(backend) as sent:
        call()
    assert sent
    with engine.connect() as conn:
        return ["\n".join(conn.exec_driver_sql("EXPLAIN " + sql, params).scalars()) for sql, params in sent]


def test_counts_by_state_read_only_the_queue_state_index(store: SQLBackend, pg_engine: sa.Engine) -> None:
    for call in (store.count_jobs, store.count_jobs_by_queues):
        for plan in plans(pg_engine, call, store):
            assert f"Index Only Scan using {QUEUE_STATE_INDEX}" in plan, plan
            assert "Seq Scan" not in plan, plan


def test_time_bounded_counts_read_only_their_window(store: SQLBackend, pg_engine: sa.Engine) -> None:
    since = datetime.now(UTC) - timedelta(hours=6)
    calls: list[Callable[[], object]] = [
        *(lambda r=time_range: store.count_jobs_over_time(r) for time_range in ("30m", "12h", "2d")),
        lambda: store.count_jobs(since=since),
        lambda: store.count_jobs(until=datetime.now(UTC) - HISTORY + timedelta(hours=6)),
        lambda: store.count_jobs(since=since, until=datetime.now(UTC)),
    ]
    for call in calls:
        for plan in plans(pg_engine, call, store):
            assert COUNTED_AT_INDEX in plan, plan
            assert "Seq Scan" not in plan, plan


def test_the_counts_are_right(store: SQLBackend) -> None:
    # The same answers as without indexes: the plans changed, not the results.
    counts = store.count_jobs()
    assert (counts.total, counts.completed, counts.waiting, counts.claimed, counts.running) == (
        FINISHED + 60, FINISHED, 20, 20, 20,
    )
    assert {name: c.total for name, c in store.count_jobs_by_queues().items()} == {
        "q0": FINISHED // 4 + 60, "q1": FINISHED // 4, "q2": FINISHED // 4, "q3": FINISHED // 4,
    }
    buckets = store.count_jobs_over_time("2d")
    expected = FINISHED * (datetime.now(UTC) - buckets[0].timestamp) // HISTORY
    assert abs(sum(b.completed for b in buckets) - expected) <= 1
    assert sum(b.waiting + b.claimed + b.running for b in buckets) == 60
