"""Checked transitions (``transition_job``): a write that applies only while the job is as it was read.

``update_job`` writes blindly, so a sweeper releasing a job as stale and a
slow worker completing it could both win. ``transition_job`` applies its
changes in one statement only while the job is still in ``expect_state``
(and, where given, claimed by ``expect_claimed_by`` at ``expect_attempt``);
otherwise it returns None and writes nothing. Here: each rule by example,
then the race itself, in threads with their own backends and in processes,
where exactly one of the racers wins every job.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
from collections import Counter
from datetime import datetime
from functools import partial
from typing import Any

import pytest

from sidequest_sql import DuplicatedJobError, JobData, JobNotFoundError, NewJobData
from sidequest_sql.base import SQLBackend

from .backends import BackendFactory
from .clock import ManualClock
from .fixtures import backend  # noqa: F401  (the suite's fixture)
from .statements import job_queries
from .test_bad_input import snapshot
from .test_concurrency import WAIT_S, reports_of, require_shared_database, run_threads, work_in_process

QUEUE = "transitions"


def new_job(**fields: Any) -> NewJobData:
    return NewJobData(queue=QUEUE, script="jobs/step.js", job_class="Step", **fields)


def running(backend: SQLBackend, clock: ManualClock, count: int = 1) -> list[JobData]:
    """``count`` jobs claimed by the backend and started (attempt 1), as a worker leaves them."""
    backend.create_new_jobs([new_job(args=[n]) for n in range(count)])
    claimed = backend.claim_pending_job(QUEUE, count)
    assert len(claimed) == count
    return [backend.update_job(job.id, state="running", attempt=1, attempted_at=clock()) for job in claimed]


def as_read(job: JobData) -> dict[str, Any]:
    """The precondition of a writer that read ``job``: its state, owner and attempt."""
    return {"expect_state": job.state, "expect_claimed_by": job.claimed_by, "expect_attempt": job.attempt}


class TestTransitionJob:
    def test_applies_exactly_the_changes_while_the_precondition_holds(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        [job] = running(backend, sidequest_clock)
        done_at = sidequest_clock.advance(seconds=3)
        done = backend.transition_job(job.id, **as_read(job), state="completed", completed_at=done_at, result=[1])
        assert done == dataclasses.replace(job, state="completed", completed_at=done_at, result=[1])
        assert backend.get_job(job.id) == done

    @pytest.mark.parametrize(
        "wrong",
        [{"expect_state": "claimed"}, {"expect_claimed_by": "another-worker"}, {"expect_attempt": 2}],
        ids=["state", "claimed_by", "attempt"],
    )
    def test_returns_none_and_writes_nothing_once_any_part_no_longer_holds(
        self, backend: SQLBackend, sidequest_clock: ManualClock, wrong: dict[str, Any]
    ) -> None:
        [job, other] = running(backend, sidequest_clock, 2)
        before = snapshot(backend)
        precondition = {**as_read(job), **wrong}
        assert backend.transition_job(job.id, **precondition, state="completed", result="late") is None
        assert backend.transition_job(job.id, **precondition) is None
        assert snapshot(backend) == before
        assert backend.get_job(other.id) == other

    def test_claimed_by_and_attempt_are_compared_only_when_given(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job())
        # A waiting job is claimed by nobody: any claimed_by it is expected to have is wrong.
        assert backend.transition_job(job.id, expect_state="waiting", expect_claimed_by="w", priority=1) is None
        moved = backend.transition_job(job.id, expect_state="waiting", priority=2)
        assert moved is not None and moved.priority == 2
        moved = backend.transition_job(job.id, expect_state="waiting", expect_attempt=0, priority=3)
        assert moved is not None and moved.priority == 3
        assert backend.transition_job(job.id, expect_state="waiting", expect_attempt=1, priority=4) is None
        assert backend.get_job(job.id) == moved

    def test_none_nullifies_as_in_update_job(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        [job] = running(backend, sidequest_clock)
        released = backend.transition_job(
            job.id, **as_read(job), state="waiting", claimed_by=None, claimed_at=None, attempted_at=None
        )
        assert released == dataclasses.replace(
            job, state="waiting", claimed_by=None, claimed_at=None, attempted_at=None
        )
        assert backend.get_job(job.id) == released

    def test_of_a_worker_and_a_sweeper_that_read_the_job_alike_only_the_first_applies(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        first, second = running(backend, sidequest_clock, 2)
        now = sidequest_clock.advance(minutes=20)
        release = {"state": "waiting", "claimed_by": None, "claimed_at": None, "errors": ["stale"]}
        complete = {"state": "completed", "completed_at": now, "result": "done"}
        # The sweeper first: the worker's completion finds the job released.
        released = backend.transition_job(first.id, **as_read(first), **release)
        assert released is not None
        assert backend.transition_job(first.id, **as_read(first), **complete) is None
        assert backend.get_job(first.id) == released
        # The worker first: the sweeper's release finds the job completed.
        completed = backend.transition_job(second.id, **as_read(second), **complete)
        assert completed is not None
        assert backend.transition_job(second.id, **as_read(second), **release) is None
        assert backend.get_job(second.id) == completed

    def test_no_changes_is_a_checked_read(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        [job] = running(backend, sidequest_clock)
        before = snapshot(backend)
        assert backend.transition_job(job.id, **as_read(job)) == job
        assert backend.transition_job(job.id, expect_state="running") == job
        assert backend.transition_job(job.id, expect_state="completed") is None
        assert backend.transition_job(job.id, expect_state="running", expect_claimed_by="nobody") is None
        assert snapshot(backend) == before
        with pytest.raises(JobNotFoundError):
            backend.transition_job(job.id + 1000, expect_state="running")

    def test_a_missing_job_raises_job_not_found_whatever_it_expects(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job())
        before = snapshot(backend)
        for missing in (job.id + 1000, 0, -1, 2**63 - 1):
            for state in ("waiting", "completed"):
                with pytest.raises(JobNotFoundError, match=str(missing)):
                    backend.transition_job(missing, expect_state=state, state="running")
        assert snapshot(backend) == before

    def test_a_digest_held_by_another_job_raises_only_if_the_precondition_holds(self, backend: SQLBackend) -> None:
        holder, job = backend.create_new_jobs([new_job(unique_digest="held"), new_job(unique_digest="mine")])
        before = snapshot(backend)
        with pytest.raises(DuplicatedJobError, match="held"):
            backend.transition_job(job.id, expect_state="waiting", unique_digest="held", state="claimed")
        assert snapshot(backend) == before
        # Nothing is written, so nothing conflicts.
        assert backend.transition_job(job.id, expect_state="running", unique_digest="held") is None
        assert backend.get_job(holder.id) == holder

    @pytest.mark.parametrize(
        ("arguments", "error", "named"),
        [
            ({"expect_state": "done"}, ValueError, "expect_state"),
            ({"expect_state": "Waiting"}, ValueError, "expect_state"),
            ({"expect_state": None}, ValueError, "expect_state"),
            ({"expect_state": 1}, TypeError, "expect_state"),
            ({"expect_state": b"waiting"}, TypeError, "expect_state"),
            ({"expect_state": "waiting", "expect_claimed_by": 5}, TypeError, "expect_claimed_by"),
            ({"expect_state": "waiting", "expect_claimed_by": "w" * 256}, ValueError, "expect_claimed_by"),
            ({"expect_state": "waiting", "expect_claimed_by": "w\x00"}, ValueError, "expect_claimed_by"),
            ({"expect_state": "waiting", "expect_attempt": "0"}, TypeError, "expect_attempt"),
            ({"expect_state": "waiting", "expect_attempt": True}, TypeError, "expect_attempt"),
            ({"expect_state": "waiting", "expect_attempt": 0.0}, TypeError, "expect_attempt"),
            ({"expect_state": "waiting", "expect_attempt": 2**31}, ValueError, "expect_attempt"),
            ({"expect_state": "waiting", "state": "done"}, ValueError, "state"),
            ({"expect_state": "waiting", "class": "Other"}, ValueError, "job_class"),
            ({"expect_state": "waiting", "id": 7}, ValueError, "id"),
            ({"expect_state": "waiting", "attempted_at": datetime(2030, 1, 1)}, ValueError, "attempted_at"),
        ],
    )
    def test_bad_arguments_are_refused_before_anything_is_sent(
        self, backend: SQLBackend, arguments: dict[str, Any], error: type[Exception], named: str
    ) -> None:
        job = backend.create_new_job(new_job())
        for job_id in (job.id, job.id + 1000):
            with job_queries(backend) as sent, pytest.raises(error, match=named):
                backend.transition_job(job_id, **arguments)
            assert sent == []
        assert backend.get_job(job.id) == job

    def test_a_hit_is_one_statement_and_only_a_miss_reads_again(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        """Where the database has ``UPDATE … RETURNING``; elsewhere a hit is the
        row locked, updated and read back, in one transaction."""
        [job] = running(backend, sidequest_clock)
        returning = backend.engine.dialect.update_returning
        with job_queries(backend) as hit:
            assert backend.transition_job(job.id, **as_read(job), state="completed") is not None
        assert len(hit) == (1 if returning else 3), hit
        with job_queries(backend) as miss:
            assert backend.transition_job(job.id, **as_read(job), state="failed") is None
        assert len(miss) == 2, miss
        with job_queries(backend) as read:
            assert backend.transition_job(job.id, expect_state="completed") is not None
        assert len(read) == 1, read

    def test_joins_the_callers_transaction(
        self, backend: SQLBackend, sidequest_clock: ManualClock, sidequest_backends: BackendFactory
    ) -> None:
        [job] = running(backend, sidequest_clock)
        transaction = sidequest_backends.begin(backend)
        connection = transaction.connection
        done = backend.transition_job(job.id, **as_read(job), state="completed", connection=connection)
        assert done is not None and done.state == "completed"
        # The transaction sees its own write; a second writer in it finds the job moved on.
        assert backend.transition_job(job.id, **as_read(job), state="failed", connection=connection) is None
        assert backend.transition_job(job.id, expect_state="completed", connection=connection) == done
        with pytest.raises(JobNotFoundError):
            backend.transition_job(job.id + 1000, expect_state="running", state="failed", connection=connection)
        transaction.rollback()
        assert backend.get_job(job.id) == job
        transaction = sidequest_backends.begin(backend)
        backend.transition_job(job.id, **as_read(job), state="completed", connection=transaction.connection)
        transaction.commit()
        assert backend.get_job(job.id).state == "completed"  # type: ignore[union-attr]


# -- the race --------------------------------------------------------------------------------

RACED = 200
"""Jobs each race is run on."""
RACERS = ("completer-0", "releaser-0", "completer-1", "releaser-1")
"""The first two take the jobs in id order, the others in reverse: a completer
and a releaser collide at each end, and all four in the middle."""


def race(backend: SQLBackend, racer: str, ids: list[int], owner: str) -> list[int]:
    """One racer's pass over every job, each expected running at attempt 1,
    claimed by ``owner``: a completer completes them, a releaser (a sweeper)
    puts them back to waiting. The ids whose transition it won."""
    ids = ids if RACERS.index(racer) < 2 else ids[::-1]
    now = backend.clock()
    if racer.startswith("completer"):
        changes: dict[str, Any] = {"state": "completed", "completed_at": now, "result": racer}
    else:
        changes = {"state": "waiting", "claimed_by": None, "claimed_at": None, "errors": [racer]}
    expected = {"expect_state": "running", "expect_claimed_by": owner, "expect_attempt": 1}
    return [job_id for job_id in ids if backend.transition_job(job_id, **expected, **changes) is not None]


def check_one_winner_each(backend: SQLBackend, ids: list[int], won: dict[str, list[int]]) -> None:
    """Each job won by exactly one racer, and stored as that racer left it."""
    wins = Counter(job_id for job_ids in won.values() for job_id in job_ids)
    twice = sorted(job_id for job_id, n in wins.items() if n > 1)
    assert not twice, f"{len(twice)} jobs transitioned by more than one racer, e.g. {twice[:10]}"
    assert set(wins) == set(ids), f"no racer won jobs {sorted(set(ids) - set(wins))[:10]}"
    rows = {job.id: job for job in backend.list_jobs(queue=[QUEUE], limit=len(ids) + 1)}
    for racer, job_ids in won.items():
        for job_id in job_ids:
            row = rows[job_id]
            if racer.startswith("completer"):
                assert (row.state, row.result, row.errors) == ("completed", racer, None), row
            else:
                assert (row.state, row.result, row.errors, row.claimed_by) == ("waiting", None, [racer], None), row
    counts = backend.count_jobs()
    assert counts.completed + counts.waiting == counts.total == len(ids), counts



class TestAStaleReleaseRacingACompletion:
    def test_threads_with_their_own_backends_leave_each_job_to_one_of_them(
        self,
        backend: SQLBackend,
        sidequest_url: str,
        sidequest_clock: ManualClock,
        sidequest_engine_options: dict[str, Any],
        sidequest_backends: BackendFactory,
    ) -> None:
        require_shared_database(backend, sidequest_url, sidequest_engine_options)
        ids = [job.id for job in running(backend, sidequest_clock, RACED)]

        def racer(i: int, start: threading.Barrier) -> list[int]:
            options = sidequest_engine_options
            with sidequest_backends(sidequest_url, clock=sidequest_clock, worker_name=RACERS[i], **options) as own:
                own.get_queue(QUEUE)
                start.wait(WAIT_S)
                return race(own, RACERS[i], ids, backend.worker_name)

        won = run_threads(len(RACERS), racer)
        check_one_winner_each(backend, ids, dict(zip(RACERS, won, strict=True)))

    def test_processes_leave_each_job_to_one_of_them(
        self,
        backend: SQLBackend,
        sidequest_url: str,
        sidequest_clock: ManualClock,
        sidequest_engine_options: dict[str, Any],
        sidequest_backends: BackendFactory,
    ) -> None:
        require_shared_database(backend, sidequest_url, sidequest_engine_options)
        ids = [job.id for job in running(backend, sidequest_clock, RACED)]
        context = multiprocessing.get_context("spawn")
        start, results = context.Barrier(len(RACERS)), context.Queue()
        common = (sidequest_backends, sidequest_url, sidequest_engine_options, sidequest_clock())
        owner = backend.worker_name
        workers = [
            context.Process(
                target=work_in_process,
                args=(*common, racer, partial(race, racer=racer, ids=ids, owner=owner), start, results),
            )
            for racer in RACERS
        ]
        reports = reports_of(workers, results, "a racer process")
        check_one_winner_each(backend, ids, {racer: won for racer, won, _ in reports})

    def test_racing_in_one_backend_shared_by_threads(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        """Also where separate backends cannot share the database (SQLite in memory)."""
        ids = [job.id for job in running(backend, sidequest_clock, RACED // 3)]

        def racer(i: int, start: threading.Barrier) -> list[int]:
            start.wait(WAIT_S)
            return race(backend, RACERS[i], ids, backend.worker_name)

        won = run_threads(len(RACERS), racer)
        check_one_winner_each(backend, ids, dict(zip(RACERS, won, strict=True)))
