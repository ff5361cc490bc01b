"""Claiming: which waiting jobs a worker takes, in what order, and what it records."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.testing.clock import ManualClock
from sidequest_sql.testing.fixtures import backend  # noqa: F401  (the suite's fixture)

WORKER = "contract-worker"


def new_job(queue: str = "default", **fields: Any) -> NewJobData:
    return NewJobData(queue=queue, script="jobs.js", job_class="Echo", **fields)


class TestClaimPendingJob:
    def test_enqueue_claim_and_read_back(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job(args=[1]))
        [claimed] = backend.claim_pending_job("default")
        assert claimed.id == job.id and claimed.state == "claimed"
        assert backend.claim_pending_job("default") == []
        assert backend.get_job(job.id) == claimed

    def test_records_claimed_at_now_and_the_worker_name_and_nothing_else(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        job = backend.create_new_job(new_job(args={"a": 1}, timeout=100, unique_digest="d"))
        now = sidequest_clock.advance(seconds=42, microseconds=17)
        [claimed] = backend.claim_pending_job("default")
        assert claimed == dataclasses.replace(job, state="claimed", claimed_at=now, claimed_by=WORKER)
        assert backend.get_job(job.id) == claimed

    def test_nothing_to_claim_returns_empty_list(self, backend: SQLBackend) -> None:
        assert backend.claim_pending_job("default") == []
        assert backend.claim_pending_job("default", quantity=10) == []

    def test_oldest_inserted_first(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        first = backend.create_new_job(new_job(args=["first"]))
        sidequest_clock.advance(seconds=1)
        second = backend.create_new_job(new_job(args=["second"]))
        sidequest_clock.advance(seconds=1)
        third = backend.create_new_job(new_job(args=["third"]))
        sidequest_clock.advance(seconds=1)
        assert [job.id for job in backend.claim_pending_job("default")] == [first.id]
        assert [job.id for job in backend.claim_pending_job("default")] == [second.id]
        assert [job.id for job in backend.claim_pending_job("default")] == [third.id]

    def test_order_is_inserted_at_not_id(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        early = backend.create_new_job(new_job(args=["early"]))
        sidequest_clock.advance(seconds=10)
        late = backend.create_new_job(new_job(args=["late"]))
        backdated = backend.create_new_job(new_job(args=["backdated"]))
        backend.update_job(backdated.id, inserted_at=early.inserted_at - timedelta(seconds=1))
        claimed = backend.claim_pending_job("default", quantity=2)
        assert [job.id for job in claimed] == [backdated.id, early.id]
        assert backend.get_job(late.id).state == "waiting"  # type: ignore[union-attr]

    def test_not_the_order_of_available_at(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        now = sidequest_clock()
        older = backend.create_new_job(new_job(available_at=now - timedelta(seconds=1)))
        sidequest_clock.advance(seconds=1)
        newer = backend.create_new_job(new_job(available_at=now - timedelta(days=1)))
        assert [job.id for job in backend.claim_pending_job("default")] == [older.id]
        assert [job.id for job in backend.claim_pending_job("default")] == [newer.id]

    def test_quantity_bounds_how_many_are_claimed(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        created = []
        for i in range(5):
            created.append(backend.create_new_job(new_job(args=[i])))
            sidequest_clock.advance(seconds=1)
        two = backend.claim_pending_job("default", quantity=2)
        assert [job.id for job in two] == [created[0].id, created[1].id]
        rest = backend.claim_pending_job("default", quantity=10)
        assert [job.id for job in rest] == [job.id for job in created[2:]]
        assert backend.claim_pending_job("default", quantity=10) == []
        assert {job.state for job in backend.list_jobs()} == {"claimed"}

    def test_quantity_of_one_is_the_default(self, backend: SQLBackend) -> None:
        backend.create_new_jobs([new_job(), new_job(), new_job()])
        assert len(backend.claim_pending_job("default")) == 1
        assert backend.count_jobs().waiting == 2

    def test_available_at_now_is_claimable_and_a_microsecond_later_is_not(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        now = sidequest_clock()
        due = backend.create_new_job(new_job(available_at=now))
        later = backend.create_new_job(new_job(available_at=now + timedelta(microseconds=1)))
        assert [job.id for job in backend.claim_pending_job("default", quantity=5)] == [due.id]
        sidequest_clock.advance(microseconds=1)
        assert [job.id for job in backend.claim_pending_job("default", quantity=5)] == [later.id]

    def test_future_jobs_wait_until_the_clock_reaches_them(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        now = sidequest_clock()
        past = backend.create_new_job(new_job(available_at=now - timedelta(hours=1)))
        future = backend.create_new_job(new_job(available_at=now + timedelta(minutes=5)))
        assert [job.id for job in backend.claim_pending_job("default", quantity=5)] == [past.id]
        assert backend.get_job(future.id) == future
        sidequest_clock.advance(minutes=4, seconds=59)
        assert backend.claim_pending_job("default", quantity=5) == []
        claim_time = sidequest_clock.advance(seconds=1)
        [claimed] = backend.claim_pending_job("default", quantity=5)
        assert (claimed.id, claimed.claimed_at) == (future.id, claim_time)

    @pytest.mark.parametrize("state", ["claimed", "running", "completed", "failed", "canceled"])
    def test_only_waiting_jobs_are_claimed(self, backend: SQLBackend, state: str) -> None:
        job = backend.create_new_job(new_job())
        job = backend.update_job(job.id, state=state)
        assert backend.claim_pending_job("default", quantity=5) == []
        assert backend.get_job(job.id) == job

    def test_other_queues_are_untouched(self, backend: SQLBackend) -> None:
        mine = backend.create_new_job(new_job("mine"))
        others = backend.create_new_jobs([new_job("other"), new_job("Mine"), new_job("mine2"), new_job("min_")])
        assert [job.id for job in backend.claim_pending_job("mine", quantity=10)] == [mine.id]
        for job in others:
            assert backend.get_job(job.id) == job

    def test_queue_name_is_not_a_pattern(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job("emails"))
        assert backend.claim_pending_job("email%", quantity=10) == []
        assert backend.claim_pending_job("email_", quantity=10) == []
        assert backend.get_job(job.id) == job

    def test_claim_does_not_need_a_configured_queue(self, backend: SQLBackend) -> None:
        backend.create_new_job(new_job("unconfigured"))
        assert backend.get_queue("unconfigured") is None
        assert len(backend.claim_pending_job("unconfigured")) == 1

    def test_a_reset_job_can_be_claimed_again(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        job = backend.create_new_job(new_job())
        backend.claim_pending_job("default")
        backend.update_job(job.id, state="waiting", claimed_at=None, claimed_by=None)
        again = sidequest_clock.advance(minutes=1)
        [claimed] = backend.claim_pending_job("default")
        assert (claimed.id, claimed.claimed_at, claimed.claimed_by) == (job.id, again, WORKER)

    @pytest.mark.parametrize("quantity", [0, -1])
    def test_quantity_below_one_is_refused(self, backend: SQLBackend, quantity: int) -> None:
        job = backend.create_new_job(new_job())
        with pytest.raises(ValueError, match="quantity"):
            backend.claim_pending_job("default", quantity=quantity)
        assert backend.get_job(job.id) == job
