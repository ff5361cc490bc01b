"""One-statement operations keep their pooled connection between calls (``IdleConnections``)
without starving the pool, skipping what the pool must do, or keeping a bad connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from sidequest_sql import DuplicatedJobError, NewJobData, SQLBackend, create_backend
from sidequest_sql.idle import lendable


def job(queue: str = "q", digest: str | None = None) -> NewJobData:
    return NewJobData(queue=queue, script="s.py", job_class="Job", unique_digest=digest)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SQLBackend]:
    with create_backend(f"sqlite:///{tmp_path / 'idle.sqlite'}") as backend:
        backend.migrate()
        yield backend


def test_a_plain_pool_lends_one_connection_for_a_run_of_calls(backend: SQLBackend) -> None:
    pool = backend.engine.pool
    created = backend.create_new_job(job())
    assert len(backend.execution.idle) == 1 and pool.checkedout() == 1
    for _ in range(20):
        backend.claim_pending_job("q")
        backend.update_job(created.id, state="completed")
        backend.get_job(created.id)
    assert len(backend.execution.idle) == 1 and pool.checkedout() == 1
    backend.close()
    assert len(backend.execution.idle) == 0 and pool.checkedout() == 0


def test_pool_listeners_added_later_see_every_checkout_and_checkin(backend: SQLBackend) -> None:
    backend.create_new_job(job())
    assert len(backend.execution.idle) == 1
    checkouts: list[Any] = []
    checkins: list[Any] = []
    event.listen(backend.engine.pool, "checkout", lambda *args: checkouts.append(args))
    event.listen(backend.engine.pool, "checkin", lambda *args: checkins.append(args))
    for _ in range(3):
        backend.create_new_job(job())
    assert len(checkouts) == 3
    # The connection kept before the listeners came, then each call's own.
    assert len(checkins) == 4
    assert len(backend.execution.idle) == 0


def test_a_failed_statement_returns_its_connection_to_the_pool(backend: SQLBackend) -> None:
    backend.create_new_job(job(digest="once"))
    kept = backend.execution.idle._idle[-1]
    with pytest.raises(DuplicatedJobError):
        backend.create_new_job(job(digest="once"))
    assert len(backend.execution.idle) == 0
    assert not kept.is_valid or backend.engine.pool.checkedout() == 0


def test_a_forked_child_does_not_use_the_parents_connections(backend: SQLBackend) -> None:
    backend.create_new_job(job())
    parents = list(backend.execution.idle._idle)
    backend.execution.idle._pid = -1  # as in a child process, whose pid differs
    backend.create_new_job(job())
    assert all(fairy not in backend.execution.idle._idle for fairy in parents)
    assert len(backend.execution.idle) == 1


@pytest.mark.parametrize(
    ("options", "limit"),
    [
        ({}, 5),
        ({"pool_size": 2, "max_overflow": 0}, 1),
        ({"pool_size": 1, "max_overflow": 0}, 0),
        ({"pool_size": 3, "max_overflow": -1}, 3),
        ({"pool_pre_ping": True}, 0),
        ({"pool_recycle": 3600}, 0),
    ],
)
def test_how_many_connections_a_pool_lends(tmp_path: Path, options: dict[str, Any], limit: int) -> None:
    with create_backend(f"sqlite:///{tmp_path / 'limit.sqlite'}", **options) as backend:
        assert lendable(backend.engine.pool) == limit == backend.execution.idle.limit


def test_an_in_memory_database_lends_nothing() -> None:
    with create_backend("sqlite://") as backend:
        backend.migrate()
        backend.create_new_job(job())
        assert backend.execution.idle.limit == 0 and len(backend.execution.idle) == 0


def test_a_small_pool_serves_every_kind_of_operation_from_many_threads(tmp_path: Path) -> None:
    """Connections lent between one-statement calls never leave the pooled
    operations (several statements, listings) waiting for one."""
    url = f"sqlite:///{tmp_path / 'small.sqlite'}"
    with create_backend(url, pool_size=2, max_overflow=0, pool_timeout=5) as backend:
        backend.migrate()
        errors: list[BaseException] = []
        start = threading.Barrier(6)

        def work(n: int) -> None:
            try:
                start.wait()
                for i in range(40):
                    created = backend.create_new_job(job(f"q{n}"))
                    backend.claim_pending_job(f"q{n}")
                    backend.update_job(created.id, state="completed")
                    backend.count_jobs_by_queues()  # two statements: through the pool
                    backend.list_jobs(queue=f"q{n}", limit=5)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert backend.count_jobs().completed == 6 * 40
        assert len(backend.execution.idle) <= backend.execution.idle.limit == 1
