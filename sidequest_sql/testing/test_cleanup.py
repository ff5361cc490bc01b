"""Housekeeping: finding stale jobs, deleting finished ones, emptying the store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from sidequest_sql import JobCounts, JobData, NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.testing.clock import ManualClock
from sidequest_sql.testing.fixtures import backend  # noqa: F401  (the suite's fixture)

MS = timedelta(milliseconds=1)


def new_job(queue: str = "default", **fields: Any) -> NewJobData:
    return NewJobData(queue=queue, script="jobs.js", job_class="Echo", **fields)


def make(backend: SQLBackend, state: str, timeout: int | None = None, **times: datetime) -> JobData:
    job = backend.create_new_job(new_job(timeout=timeout))
    return backend.update_job(job.id, state=state, **times)


def stale_ids(backend: SQLBackend, **thresholds: int) -> set[int]:
    return {job.id for job in backend.stale_jobs(**thresholds)}


class TestStaleJobs:
    def test_nothing_stale(self, backend: SQLBackend) -> None:
        assert backend.stale_jobs() == []

    def test_a_claimed_job_is_stale_once_claimed_longer_than_max_claimed_ms(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        backend.create_new_job(new_job())
        [claimed] = backend.claim_pending_job("default")
        sidequest_clock.advance(milliseconds=60_000)
        assert backend.stale_jobs() == []
        sidequest_clock.advance(milliseconds=1)
        assert backend.stale_jobs() == [claimed]

    def test_max_claimed_ms_is_a_parameter(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        now = sidequest_clock()
        recent = make(backend, "claimed", claimed_at=now - 500 * MS)
        older = make(backend, "claimed", claimed_at=now - 1500 * MS)
        assert stale_ids(backend, max_claimed_ms=1000) == {older.id}
        assert stale_ids(backend, max_claimed_ms=100) == {older.id, recent.id}
        assert stale_ids(backend, max_claimed_ms=2000) == set()

    def test_a_claimed_job_ignores_its_timeout(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        now = sidequest_clock()
        make(backend, "claimed", timeout=1, claimed_at=now - 10_000 * MS, attempted_at=now - 10_000 * MS)
        assert stale_ids(backend, max_claimed_ms=60_000) == set()

    def test_a_running_job_without_timeout_is_stale_after_max_stale_ms(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        job = make(backend, "running", attempted_at=sidequest_clock())
        sidequest_clock.advance(milliseconds=600_000)
        assert backend.stale_jobs() == []
        sidequest_clock.advance(milliseconds=1)
        assert backend.stale_jobs() == [job]
        assert stale_ids(backend, max_stale_ms=700_000) == set()

    def test_a_running_job_with_a_timeout_is_stale_after_its_own_timeout(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        now = sidequest_clock()
        short = make(backend, "running", timeout=1000, attempted_at=now)
        long = make(backend, "running", timeout=3_600_000, attempted_at=now)
        sidequest_clock.advance(milliseconds=1000)
        assert stale_ids(backend) == set()
        sidequest_clock.advance(milliseconds=1)
        assert stale_ids(backend) == {short.id}
        sidequest_clock.advance(minutes=30)
        assert stale_ids(backend, max_stale_ms=1) == {short.id}
        sidequest_clock.advance(minutes=30)
        assert stale_ids(backend) == {short.id, long.id}

    def test_a_running_job_counts_from_attempted_at_not_claimed_at(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        now = sidequest_clock()
        make(backend, "running", claimed_at=now - timedelta(days=1), attempted_at=now - 1000 * MS)
        assert stale_ids(backend, max_stale_ms=2000, max_claimed_ms=0) == set()

    def test_stale_and_fresh_together(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        now = sidequest_clock()
        old = now - timedelta(hours=1)
        stale_claimed = make(backend, "claimed", claimed_at=old)
        make(backend, "claimed", claimed_at=now)
        stale_running = make(backend, "running", attempted_at=old)
        make(backend, "running", attempted_at=now)
        found = backend.stale_jobs()
        assert {job.id for job in found} == {stale_claimed.id, stale_running.id}
        assert all(job == backend.get_job(job.id) for job in found)

    @pytest.mark.parametrize("state", ["waiting", "completed", "failed", "canceled"])
    def test_other_states_are_never_stale(self, backend: SQLBackend, sidequest_clock: ManualClock, state: str) -> None:
        old = sidequest_clock() - timedelta(days=30)
        make(backend, state, timeout=1, claimed_at=old, attempted_at=old, inserted_at=old)
        assert backend.stale_jobs() == []
        assert backend.stale_jobs(max_stale_ms=-1, max_claimed_ms=-1) == []

    def test_negative_thresholds_make_everything_claimed_or_running_stale(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        now = sidequest_clock()
        claimed = make(backend, "claimed", claimed_at=now)
        running = make(backend, "running", attempted_at=now)
        make(backend, "waiting")
        assert backend.stale_jobs() == []
        assert stale_ids(backend, max_stale_ms=-1, max_claimed_ms=-1) == {claimed.id, running.id}
        assert stale_ids(backend, max_claimed_ms=-1) == {claimed.id}
        assert stale_ids(backend, max_stale_ms=-1) == {running.id}

    def test_times_are_read_back_in_utc(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        claimed_at = (sidequest_clock() - timedelta(hours=2)).astimezone(timezone(timedelta(hours=-3)))
        make(backend, "claimed", claimed_at=claimed_at)
        [stale] = backend.stale_jobs()
        assert stale.claimed_at == claimed_at
        assert stale.claimed_at.utcoffset() == timedelta(0)  # type: ignore[union-attr]

    @pytest.mark.parametrize("thresholds", [{"max_stale_ms": 1.5}, {"max_claimed_ms": "60000"}])
    def test_non_int_thresholds_are_refused(self, backend: SQLBackend, thresholds: dict[str, Any]) -> None:
        with pytest.raises(TypeError, match=next(iter(thresholds))):
            backend.stale_jobs(**thresholds)


class TestDeleteFinishedJobs:
    def test_nothing_to_delete(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        assert backend.delete_finished_jobs(sidequest_clock()) == 0

    @pytest.mark.parametrize(
        ("state", "column"), [("completed", "completed_at"), ("failed", "failed_at"), ("canceled", "canceled_at")]
    )
    def test_deletes_finished_jobs_that_finished_before_cutoff(
        self, backend: SQLBackend, sidequest_clock: ManualClock, state: str, column: str
    ) -> None:
        cutoff = sidequest_clock() - timedelta(days=1)
        old = make(backend, state, **{column: cutoff - timedelta(microseconds=1)})
        at_cutoff = make(backend, state, **{column: cutoff})
        recent = make(backend, state, **{column: cutoff + timedelta(hours=1)})
        assert backend.delete_finished_jobs(cutoff) == 1
        assert backend.get_job(old.id) is None
        assert backend.get_job(at_cutoff.id) == at_cutoff
        assert backend.get_job(recent.id) == recent

    def test_returns_how_many_were_deleted(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        old = sidequest_clock() - timedelta(days=10)
        make(backend, "completed", completed_at=old)
        make(backend, "completed", completed_at=old)
        make(backend, "failed", failed_at=old)
        make(backend, "canceled", canceled_at=old)
        assert backend.delete_finished_jobs(sidequest_clock()) == 4
        assert backend.count_jobs() == JobCounts()
        assert backend.delete_finished_jobs(sidequest_clock()) == 0

    def test_a_limit_bounds_one_call_and_repeated_calls_delete_the_rest(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        old = sidequest_clock() - timedelta(days=10)
        for _ in range(5):
            make(backend, "completed", completed_at=old)
        keep = make(backend, "running", attempted_at=old)
        assert [backend.delete_finished_jobs(sidequest_clock(), limit=2) for _ in range(4)] == [2, 2, 1, 0]
        assert backend.count_jobs() == JobCounts(total=1, running=1)
        assert backend.get_job(keep.id) == keep

    def test_without_a_limit_every_batch_runs(
        self, backend: SQLBackend, sidequest_clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("sidequest_sql.base.DELETE_BATCH", 3)
        old = sidequest_clock() - timedelta(days=10)
        for _ in range(7):
            make(backend, "failed", failed_at=old)
        assert backend.delete_finished_jobs(sidequest_clock()) == 7
        assert backend.count_jobs() == JobCounts()

    @pytest.mark.parametrize(("limit", "error"), [(0, ValueError), (-1, ValueError), (True, TypeError), (2.0, TypeError)])
    def test_a_bad_limit_is_refused(
        self, backend: SQLBackend, sidequest_clock: ManualClock, limit: Any, error: type[Exception]
    ) -> None:
        done = make(backend, "completed", completed_at=sidequest_clock() - timedelta(days=1))
        with pytest.raises(error, match="limit"):
            backend.delete_finished_jobs(sidequest_clock(), limit=limit)
        assert backend.get_job(done.id) == done

    @pytest.mark.parametrize("state", ["waiting", "claimed", "running"])
    def test_never_deletes_unfinished_jobs_whatever_their_times(
        self, backend: SQLBackend, sidequest_clock: ManualClock, state: str
    ) -> None:
        old = sidequest_clock() - timedelta(days=365)
        job = make(
            backend,
            state,
            inserted_at=old,
            available_at=old,
            attempted_at=old,
            claimed_at=old,
            completed_at=old,
            failed_at=old,
            canceled_at=old,
        )
        assert backend.delete_finished_jobs(sidequest_clock() + timedelta(days=365)) == 0
        assert backend.get_job(job.id) == job

    def test_finished_jobs_without_finish_times_are_kept(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        old = sidequest_clock() - timedelta(days=365)
        job = make(backend, "completed", inserted_at=old, attempted_at=old, claimed_at=old)
        assert backend.delete_finished_jobs(sidequest_clock()) == 0
        assert backend.get_job(job.id) == job

    def test_cutoff_in_another_offset_is_the_same_instant(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        finished = sidequest_clock() - timedelta(hours=1)
        job = make(backend, "completed", completed_at=finished)
        far_east = timezone(timedelta(hours=14))
        assert backend.delete_finished_jobs(finished.astimezone(far_east)) == 0
        assert backend.delete_finished_jobs((finished + timedelta(microseconds=1)).astimezone(far_east)) == 1
        assert backend.get_job(job.id) is None

    def test_naive_or_non_datetime_cutoff_is_refused(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        job = make(backend, "completed", completed_at=sidequest_clock() - timedelta(days=1))
        with pytest.raises(ValueError, match="cutoff"):
            backend.delete_finished_jobs(sidequest_clock().replace(tzinfo=None))
        with pytest.raises(TypeError, match="cutoff"):
            backend.delete_finished_jobs(sidequest_clock().isoformat())  # type: ignore[arg-type]
        assert backend.get_job(job.id) == job


class TestTruncate:
    def test_removes_every_job_and_queue(self, backend: SQLBackend) -> None:
        backend.create_new_queue("emails")
        jobs = backend.create_new_jobs([new_job("emails", unique_digest="d"), new_job("other")])
        backend.truncate()
        assert backend.list_jobs() == []
        assert backend.list_queues() == []
        assert backend.count_jobs() == JobCounts()
        assert backend.count_jobs_by_queues() == {}
        assert backend.get_queues_from_jobs() == []
        assert all(backend.get_job(job.id) is None for job in jobs)

    def test_the_store_is_usable_afterwards(self, backend: SQLBackend) -> None:
        backend.create_new_queue("emails")
        backend.create_new_job(new_job("emails", unique_digest="d"))
        backend.truncate()
        assert backend.create_new_queue("emails").name == "emails"
        assert backend.create_new_job(new_job("emails", unique_digest="d")).unique_digest == "d"
        assert len(backend.claim_pending_job("emails")) == 1

    def test_on_an_empty_store(self, backend: SQLBackend) -> None:
        backend.truncate()
        assert backend.list_jobs() == [] and backend.list_queues() == []
