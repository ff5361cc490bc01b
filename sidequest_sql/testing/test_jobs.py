"""Jobs: enqueueing one or many, reading one back, and changing one."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sidequest_sql import (
    DuplicatedJobError,
    JobData,
    JobNotFoundError,
    NewJobData,
    SidequestError,
)
from sidequest_sql.base import SQLBackend
from sidequest_sql.testing.batches import mixed_jobs
from sidequest_sql.testing.clock import ManualClock
from sidequest_sql.testing.fixtures import backend  # noqa: F401  (the suite's fixture)

JOB_STATES = ("waiting", "claimed", "running", "completed", "failed", "canceled")


def new_job(queue: str = "default", **fields: Any) -> NewJobData:
    fields.setdefault("script", "jobs.js")
    fields.setdefault("job_class", "Echo")
    return NewJobData(queue=queue, **fields)


def every_job(backend: SQLBackend) -> list[JobData]:
    return backend.list_jobs(limit=10_000)


class TestNewJobData:
    def test_defaults(self) -> None:
        job = NewJobData(queue="q", script="s.js", job_class="C")
        assert job.args == []
        assert job.constructor_args == []
        assert job.max_attempts == 5
        assert job.available_at is None
        assert job.timeout is None
        assert job.unique_digest is None
        assert job.uniqueness_config is None
        assert job.retry_delay is None
        assert job.backoff_strategy == "exponential"

    def test_default_lists_are_not_shared(self) -> None:
        first = NewJobData(queue="q", script="s.js", job_class="C")
        second = NewJobData(queue="q", script="s.js", job_class="C")
        assert first.args is not second.args
        assert first.constructor_args is not second.constructor_args


class TestCreateNewJob:
    def test_a_new_job_starts_waiting_at_attempt_zero_available_now(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        now = sidequest_clock()
        job = backend.create_new_job(NewJobData(queue="default", script="s.js", job_class="Echo"))
        assert isinstance(job, JobData)
        assert isinstance(job.id, int)
        assert (job.queue, job.script, job.job_class) == ("default", "s.js", "Echo")
        assert (job.state, job.attempt, job.max_attempts) == ("waiting", 0, 5)
        assert (job.args, job.constructor_args) == ([], [])
        assert job.inserted_at == now
        assert job.available_at == now
        assert job.backoff_strategy == "exponential"
        for field in (
            "timeout", "result", "errors", "attempted_at", "completed_at", "failed_at",
            "canceled_at", "claimed_at", "claimed_by", "unique_digest", "uniqueness_config",
            "retry_delay",
        ):
            assert getattr(job, field) is None, field

    def test_inserted_at_follows_the_clock(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        later = sidequest_clock.advance(minutes=3, microseconds=7)
        job = backend.create_new_job(new_job())
        assert job.inserted_at == later
        assert job.available_at == later

    def test_every_field_given_is_stored(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        available_at = sidequest_clock() + timedelta(hours=1, microseconds=5)
        job = backend.create_new_job(
            NewJobData(
                queue="reports",
                script="reports/monthly.js",
                job_class="MonthlyReport",
                args=[{"month": 3}, "pdf"],
                constructor_args={"locale": "fr"},
                max_attempts=9,
                available_at=available_at,
                timeout=30_000,
                unique_digest="digest-1",
                uniqueness_config={"type": "alive"},
                retry_delay=1500,
                backoff_strategy="fixed",
            )
        )
        assert (job.queue, job.script, job.job_class) == ("reports", "reports/monthly.js", "MonthlyReport")
        assert job.args == [{"month": 3}, "pdf"]
        assert job.constructor_args == {"locale": "fr"}
        assert (job.max_attempts, job.timeout, job.retry_delay) == (9, 30_000, 1500)
        assert job.available_at == available_at
        assert (job.unique_digest, job.uniqueness_config) == ("digest-1", {"type": "alive"})
        assert job.backoff_strategy == "fixed"
        assert (job.state, job.attempt) == ("waiting", 0)

    def test_get_job_returns_what_create_returned(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job(args=[1, "two"], timeout=10))
        assert backend.get_job(job.id) == job

    def test_get_job_of_a_missing_id_returns_none(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job())
        assert backend.get_job(job.id + 1000) is None

    def test_each_job_gets_its_own_id(self, backend: SQLBackend) -> None:
        ids = {backend.create_new_job(new_job()).id for _ in range(5)}
        assert len(ids) == 5

    def test_digest_held_by_another_job_raises_and_writes_nothing(self, backend: SQLBackend) -> None:
        holder = backend.create_new_job(new_job(unique_digest="once"))
        with pytest.raises(DuplicatedJobError) as raised:
            backend.create_new_job(new_job(queue="elsewhere", unique_digest="once"))
        assert isinstance(raised.value, SidequestError)
        assert every_job(backend) == [holder]

    def test_jobs_without_digest_never_conflict(self, backend: SQLBackend) -> None:
        backend.create_new_job(new_job())
        backend.create_new_job(new_job())
        assert len(every_job(backend)) == 2

    @pytest.mark.parametrize(
        ("fields", "error", "argument"),
        [
            ({"queue": 7}, TypeError, "queue"),
            ({"queue": "x" * 256}, ValueError, "queue"),
            ({"queue": "a\x00b"}, ValueError, "queue"),
            ({"max_attempts": "5"}, TypeError, "max_attempts"),
            ({"timeout": 1.5}, TypeError, "timeout"),
            ({"args": {1, 2}}, TypeError, "args"),
            ({"args": None}, ValueError, "args"),
        ],
        ids=["queue-type", "queue-length", "queue-nul", "max_attempts", "timeout", "args-set", "args-none"],
    )
    def test_bad_values_are_refused_naming_the_argument_and_nothing_is_written(
        self, backend: SQLBackend, fields: dict[str, Any], error: type[Exception], argument: str
    ) -> None:
        with pytest.raises(error, match=argument):
            backend.create_new_job(new_job(**fields))
        assert every_job(backend) == []

    def test_something_other_than_new_job_data_is_refused(self, backend: SQLBackend) -> None:
        with pytest.raises(TypeError):
            backend.create_new_job({"queue": "q", "script": "s.js", "job_class": "C"})  # type: ignore[arg-type]
        assert every_job(backend) == []


class TestCreateNewJobs:
    def test_returns_the_jobs_in_input_order(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        batch = [new_job(queue=f"q{i % 3}", args=[i], unique_digest=f"d{i}") for i in (5, 3, 9, 1, 7)]
        created = backend.create_new_jobs(batch)
        assert [job.args for job in created] == [[5], [3], [9], [1], [7]]
        assert [job.queue for job in created] == ["q2", "q0", "q0", "q1", "q1"]
        assert [job.unique_digest for job in created] == ["d5", "d3", "d9", "d1", "d7"]
        assert all(job.state == "waiting" and job.attempt == 0 for job in created)
        assert all(job.inserted_at == sidequest_clock() for job in created)
        assert len({job.id for job in created}) == 5
        for job in created:
            assert backend.get_job(job.id) == job

    def test_a_large_batch_keeps_input_order(self, backend: SQLBackend) -> None:
        created = backend.create_new_jobs(new_job(args=[i], unique_digest=f"d{i}") for i in range(1500))
        assert [job.args for job in created] == [[i] for i in range(1500)]
        assert backend.count_jobs().total == 1500

    def test_a_large_mixed_batch_returns_what_get_job_reads_in_input_order(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        now = sidequest_clock()
        batch = mixed_jobs(2_500, now)
        created = backend.create_new_jobs(batch)
        assert len(created) == len(batch) and len({job.id for job in created}) == len(batch)
        for job, given in zip(created, batch, strict=True):
            expected = {
                **{field.name: getattr(given, field.name) for field in dataclasses.fields(NewJobData)},
                "available_at": now if given.available_at is None else given.available_at,
            }
            assert {name: getattr(job, name) for name in expected} == expected, given.args[0]
            assert (job.state, job.attempt, job.inserted_at) == ("waiting", 0, now)
            assert job.available_at.tzinfo == UTC
            assert job == backend.get_job(job.id)

    def test_a_clash_on_the_last_job_of_a_large_batch_writes_nothing(self, backend: SQLBackend) -> None:
        holder = backend.create_new_job(new_job(unique_digest="taken"))
        batch = [new_job(args=[i], unique_digest=f"d{i}") for i in range(2_499)] + [new_job(unique_digest="taken")]
        with pytest.raises(DuplicatedJobError):
            backend.create_new_jobs(batch)
        assert every_job(backend) == [holder]
        assert len(backend.create_new_jobs(batch[:-1])) == 2_499

    def test_accepts_any_iterable(self, backend: SQLBackend) -> None:
        def generate() -> Iterator[NewJobData]:
            yield new_job(args=["a"])
            yield new_job(args=["b"])

        assert [job.args for job in backend.create_new_jobs(generate())] == [["a"], ["b"]]
        assert [job.args for job in backend.create_new_jobs((new_job(args=["c"]),))] == [["c"]]

    def test_empty_batch_returns_empty_list_and_writes_nothing(self, backend: SQLBackend) -> None:
        assert backend.create_new_jobs([]) == []
        assert every_job(backend) == []

    def test_digest_held_by_another_job_writes_nothing(self, backend: SQLBackend) -> None:
        holder = backend.create_new_job(new_job(unique_digest="taken"))
        batch = [new_job(args=[1]), new_job(args=[2], unique_digest="taken"), new_job(args=[3])]
        with pytest.raises(DuplicatedJobError):
            backend.create_new_jobs(batch)
        assert every_job(backend) == [holder]

    def test_digest_repeated_inside_the_batch_writes_nothing(self, backend: SQLBackend) -> None:
        batch = [new_job(unique_digest="twice"), new_job(), new_job(unique_digest="twice")]
        with pytest.raises(DuplicatedJobError):
            backend.create_new_jobs(batch)
        assert every_job(backend) == []

    def test_several_jobs_without_digest_are_fine(self, backend: SQLBackend) -> None:
        assert len(backend.create_new_jobs([new_job(), new_job(), new_job(unique_digest="one")])) == 3

    def test_a_bad_job_anywhere_in_the_batch_writes_nothing(self, backend: SQLBackend) -> None:
        batch = [new_job(args=[1]), new_job(args=[2]), new_job(args=[float("nan")])]
        with pytest.raises(ValueError, match="args"):
            backend.create_new_jobs(batch)
        assert every_job(backend) == []

    @pytest.mark.parametrize("jobs", [None, "jobs", new_job()], ids=["none", "str", "single-job"])
    def test_something_other_than_an_iterable_of_jobs_is_refused(self, backend: SQLBackend, jobs: Any) -> None:
        with pytest.raises(TypeError):
            backend.create_new_jobs(jobs)
        assert every_job(backend) == []


class TestUpdateJob:
    def test_sets_exactly_the_given_fields(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        job = backend.create_new_job(new_job(args=[1], timeout=500))
        started = sidequest_clock.advance(seconds=2)
        updated = backend.update_job(job.id, state="running", attempt=1, attempted_at=started)
        assert updated == dataclasses.replace(job, state="running", attempt=1, attempted_at=started)
        assert backend.get_job(job.id) == updated

    def test_every_field_can_be_set(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        job = backend.create_new_job(new_job())
        at = sidequest_clock() + timedelta(days=1)
        changes: dict[str, Any] = {
            "queue": "other",
            "state": "completed",
            "script": "other.js",
            "job_class": "Other",
            "args": {"x": [1]},
            "constructor_args": ["c"],
            "timeout": 99,
            "attempt": 4,
            "max_attempts": 8,
            "result": {"ok": True},
            "errors": [{"message": "boom"}],
            "inserted_at": at - timedelta(seconds=6),
            "attempted_at": at - timedelta(seconds=5),
            "available_at": at - timedelta(seconds=4),
            "completed_at": at - timedelta(seconds=3),
            "failed_at": at - timedelta(seconds=2),
            "canceled_at": at - timedelta(seconds=1),
            "claimed_at": at,
            "claimed_by": "someone",
            "unique_digest": "dig",
            "uniqueness_config": {"type": "fixed-window"},
            "retry_delay": 12,
            "backoff_strategy": "fixed",
            "priority": -3,
        }
        assert set(changes) == {f.name for f in dataclasses.fields(JobData)} - {"id"}
        updated = backend.update_job(job.id, **changes)
        assert updated == JobData(id=job.id, **changes)
        assert backend.get_job(job.id) == updated

    def test_job_class_sets_the_class_column(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job(job_class="Before"))
        assert backend.update_job(job.id, job_class="After").job_class == "After"
        assert [j.id for j in backend.list_jobs(job_class="After")] == [job.id]
        assert backend.list_jobs(job_class="Before") == []

    def test_none_nullifies(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        job = backend.create_new_job(new_job(timeout=10, unique_digest="d", uniqueness_config={"a": 1}))
        job = backend.update_job(
            job.id, result={"r": 1}, errors=["e"], claimed_at=sidequest_clock(), claimed_by="w", retry_delay=5
        )
        cleared = backend.update_job(
            job.id,
            timeout=None,
            unique_digest=None,
            uniqueness_config=None,
            result=None,
            errors=None,
            claimed_at=None,
            claimed_by=None,
            retry_delay=None,
        )
        assert cleared == dataclasses.replace(
            job,
            timeout=None,
            unique_digest=None,
            uniqueness_config=None,
            result=None,
            errors=None,
            claimed_at=None,
            claimed_by=None,
            retry_delay=None,
        )
        assert backend.get_job(job.id) == cleared

    def test_a_freed_digest_can_be_taken_again(self, backend: SQLBackend) -> None:
        first = backend.create_new_job(new_job(unique_digest="d"))
        backend.update_job(first.id, unique_digest=None)
        assert backend.create_new_job(new_job(unique_digest="d")).unique_digest == "d"

    @pytest.mark.parametrize("field", ["queue", "state", "script", "job_class", "args", "attempt", "available_at"])
    def test_none_on_a_required_field_is_refused(self, backend: SQLBackend, field: str) -> None:
        job = backend.create_new_job(new_job())
        with pytest.raises(ValueError, match=field):
            backend.update_job(job.id, **{field: None})
        assert backend.get_job(job.id) == job

    @pytest.mark.parametrize("state", JOB_STATES)
    def test_each_of_the_six_states_can_be_set(self, backend: SQLBackend, state: str) -> None:
        job = backend.create_new_job(new_job())
        assert backend.update_job(job.id, state=state).state == state
        assert backend.get_job(job.id).state == state  # type: ignore[union-attr]

    def test_other_jobs_are_untouched(self, backend: SQLBackend) -> None:
        target, other = backend.create_new_jobs([new_job(), new_job()])
        backend.update_job(target.id, state="canceled", args=["changed"])
        assert backend.get_job(other.id) == other

    @pytest.mark.parametrize(
        "changes",
        [
            {"bogus": 1},
            {"class": "Other"},
            {"id": 12345},
            {"state": "paused"},
            {"state": "WAITING"},
            {"state": ""},
        ],
        ids=["unknown", "class", "id", "state-paused", "state-uppercase", "state-empty"],
    )
    def test_bad_changes_raise_value_error_and_nothing_is_written(
        self, backend: SQLBackend, changes: dict[str, Any]
    ) -> None:
        job = backend.create_new_job(new_job())
        with pytest.raises(ValueError):
            backend.update_job(job.id, attempt=3, **changes)
        assert backend.get_job(job.id) == job

    def test_class_is_refused_pointing_at_job_class(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job())
        with pytest.raises(ValueError, match="job_class"):
            backend.update_job(job.id, **{"class": "Other"})

    def test_missing_id_raises_job_not_found(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job())
        with pytest.raises(JobNotFoundError) as raised:
            backend.update_job(job.id + 1000, state="running")
        assert isinstance(raised.value, LookupError)
        assert isinstance(raised.value, SidequestError)
        with pytest.raises(JobNotFoundError):
            backend.update_job(job.id + 1000)
        assert backend.get_job(job.id) == job

    def test_digest_held_by_another_job_raises_and_writes_nothing(self, backend: SQLBackend) -> None:
        holder, job = backend.create_new_jobs([new_job(unique_digest="held"), new_job(unique_digest="mine")])
        with pytest.raises(DuplicatedJobError):
            backend.update_job(job.id, unique_digest="held", state="running")
        assert backend.get_job(job.id) == job
        assert backend.get_job(holder.id) == holder

    def test_setting_a_job_its_own_digest_is_no_conflict(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job(unique_digest="mine"))
        assert backend.update_job(job.id, unique_digest="mine", attempt=2).attempt == 2

    def test_no_changes_returns_the_job_as_it_is(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        job = backend.create_new_job(new_job(args={"k": "v"}))
        sidequest_clock.advance(hours=1)
        assert backend.update_job(job.id) == job
        assert backend.get_job(job.id) == job

    def test_changes_never_touch_timestamps_by_themselves(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        job = backend.create_new_job(new_job())
        sidequest_clock.advance(hours=1)
        updated = backend.update_job(job.id, state="completed")
        assert (updated.inserted_at, updated.available_at, updated.completed_at) == (
            job.inserted_at,
            job.available_at,
            None,
        )

    def test_inserted_at_can_move_back_in_time(self, backend: SQLBackend) -> None:
        job = backend.create_new_job(new_job())
        earlier = datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=UTC)
        assert backend.update_job(job.id, inserted_at=earlier).inserted_at == earlier
