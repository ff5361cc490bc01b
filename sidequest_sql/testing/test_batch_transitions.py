"""Checked transitions of many jobs at once: ``transition_jobs`` changes each job only while it is as the caller expects."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from sidequest_sql import JobTransition, NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.testing.clock import ManualClock
from sidequest_sql.testing.fixtures import backend  # noqa: F401  (the suite's fixture)

WORKER = "contract-worker"


def new_job(**fields: Any) -> NewJobData:
    return NewJobData(queue="default", script="jobs.py", job_class="Echo", **fields)


def running(backend: SQLBackend, count: int) -> list[Any]:
    """``count`` jobs claimed by the suite's worker and started (attempt 1)."""
    backend.create_new_jobs([new_job(args=[i]) for i in range(count)])
    claimed = backend.claim_pending_job("default", count)
    now = backend.clock()
    return [
        backend.update_job(job.id, state="running", attempt=1, attempted_at=now) for job in claimed
    ]


class TestTransitionJobs:
    def test_applies_each_change_and_returns_the_jobs_in_input_order(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        jobs = running(backend, 3)
        now = sidequest_clock.advance(seconds=1)
        results = [{"n": 1}, [1, 2], "three"]
        batch = [
            JobTransition(job.id, "running", {"state": "completed", "result": result, "completed_at": now},
                          expect_claimed_by=WORKER, expect_attempt=1)
            for job, result in zip(reversed(jobs), results)
        ]  # fmt: skip
        done = backend.transition_jobs(batch)
        assert [job.id for job in done] == [job.id for job in reversed(jobs)]  # type: ignore[union-attr]
        for job, result in zip(done, results):
            assert job is not None and job.state == "completed" and job.result == result and job.completed_at == now
            assert backend.get_job(job.id) == job

    def test_a_precondition_that_no_longer_holds_writes_nothing_for_that_job(self, backend: SQLBackend) -> None:
        jobs = running(backend, 4)
        backend.update_job(jobs[1].id, state="canceled")
        now = backend.clock()
        change = {"state": "completed", "completed_at": now}
        batch = [
            JobTransition(jobs[0].id, "running", change, expect_claimed_by=WORKER, expect_attempt=1),
            JobTransition(jobs[1].id, "running", change, expect_claimed_by=WORKER, expect_attempt=1),
            JobTransition(jobs[2].id, "running", change, expect_claimed_by="someone-else"),
            JobTransition(jobs[3].id, "running", change, expect_attempt=2),
        ]
        done = backend.transition_jobs(batch)
        assert done[0] is not None and done[0].state == "completed"
        assert done[1:] == [None, None, None]
        assert backend.get_job(jobs[1].id).state == "canceled"  # type: ignore[union-attr]
        assert [backend.get_job(job.id) for job in jobs[2:]] == jobs[2:]

    def test_a_missing_job_is_none(self, backend: SQLBackend) -> None:
        assert backend.transition_jobs([JobTransition(2**40, "waiting", {"state": "claimed"})]) == [None]

    def test_no_changes_reads_the_job_where_it_holds(self, backend: SQLBackend) -> None:
        [job] = running(backend, 1)
        assert backend.transition_jobs([JobTransition(job.id, "running")]) == [job]
        assert backend.transition_jobs([JobTransition(job.id, "waiting")]) == [None]

    def test_nothing_to_do(self, backend: SQLBackend) -> None:
        assert backend.transition_jobs([]) == []

    def test_many_jobs_in_groups_and_beyond_one_statement(self, backend: SQLBackend) -> None:
        jobs = running(backend, 600)
        now = backend.clock()
        batch = [
            JobTransition(job.id, "running",
                          {"state": "completed", "completed_at": now, "result": i}
                          if i % 3 else {"state": "failed", "failed_at": now, "errors": [{"message": str(i)}]})
            for i, job in enumerate(jobs)
        ]  # fmt: skip
        done = backend.transition_jobs(batch)
        assert [job.state for job in done] == ["failed" if i % 3 == 0 else "completed" for i in range(600)]  # type: ignore[union-attr]
        assert backend.count_jobs().completed == 400

    @pytest.mark.parametrize(
        ("bad", "error"),
        [
            ("not a list", TypeError),
            ([{"job_id": 1}], TypeError),
            ([JobTransition(1, "done", {})], ValueError),  # type: ignore[arg-type]
            ([JobTransition("1", "waiting", {})], TypeError),  # type: ignore[arg-type]
            ([JobTransition(1, "waiting", {"class": "X"})], ValueError),
            ([JobTransition(1, "waiting", {"id": 2})], ValueError),
            ([JobTransition(1, "waiting", {"state": "done"})], ValueError),
            ([JobTransition(1, "waiting", ["state"])], TypeError),  # type: ignore[arg-type]
            ([JobTransition(1, "waiting", {}, expect_attempt="1")], TypeError),  # type: ignore[arg-type]
            ([JobTransition(1, "waiting", {}, expect_claimed_by=5)], TypeError),  # type: ignore[arg-type]
        ],
    )
    def test_bad_input_is_refused_before_anything_is_written(
        self, backend: SQLBackend, bad: Any, error: type[Exception]
    ) -> None:
        [job] = running(backend, 1)
        good = JobTransition(job.id, "running", {"state": "completed"})
        with pytest.raises(error):
            backend.transition_jobs([good, *bad] if isinstance(bad, list) else bad)
        assert backend.get_job(job.id) == job

    def test_a_job_twice_is_refused(self, backend: SQLBackend) -> None:
        [job] = running(backend, 1)
        twice = [JobTransition(job.id, "running", {"state": "completed"})] * 2
        with pytest.raises(ValueError, match="twice"):
            backend.transition_jobs(twice)
        assert backend.get_job(job.id) == job

    def test_in_a_caller_transaction_that_rolls_back(self, backend: SQLBackend, sidequest_backends: Any) -> None:
        [job] = running(backend, 1)
        transaction = sidequest_backends.begin(backend)
        done = backend.transition_jobs(
            [JobTransition(job.id, "running", {"state": "completed"})], connection=transaction.connection
        )
        assert done[0] is not None and done[0].state == "completed"
        transaction.rollback()
        assert backend.get_job(job.id) == job

    def test_racing_writers_each_change_a_job_once(self, backend: SQLBackend) -> None:
        """Workers racing to finish the same jobs: every job ends once, by one of them."""
        jobs = running(backend, 60)
        now = backend.clock()
        won: Counter[int] = Counter()
        lock = threading.Lock()
        errors: list[BaseException] = []

        def finish(name: str) -> None:
            try:
                for start in range(0, len(jobs), 7):
                    chunk = jobs[start : start + 7]
                    done = backend.transition_jobs(
                        [JobTransition(job.id, "running", {"state": "completed", "completed_at": now,
                                                           "result": name}) for job in chunk]  # fmt: skip
                    )
                    with lock:
                        won.update(job.id for job in done if job is not None)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=finish, args=(f"w{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert won == Counter(job.id for job in jobs)
        assert backend.count_jobs().completed == 60
