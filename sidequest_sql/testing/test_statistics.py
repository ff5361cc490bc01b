"""Statistics: counts per state, per queue, and per time bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sidequest_sql import JobCounts, JobCountsAt, JobData, NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.testing.clock import ManualClock
from sidequest_sql.testing.fixtures import backend  # noqa: F401  (the suite's fixture)

HOUR = timedelta(hours=1)


def new_job(queue: str = "default") -> NewJobData:
    return NewJobData(queue=queue, script="jobs.js", job_class="Echo")


def job_at(backend: SQLBackend, moment: datetime, state: str = "waiting", queue: str = "default") -> JobData:
    """A job in ``state`` whose counting time is ``moment`` (only inserted_at is set)."""
    job = backend.create_new_job(new_job(queue))
    return backend.update_job(job.id, state=state, inserted_at=moment)


def counts(**by_state: int) -> JobCounts:
    return JobCounts(total=sum(by_state.values()), **by_state)


def bucket(timestamp: datetime, **by_state: int) -> JobCountsAt:
    return JobCountsAt(timestamp=timestamp, total=sum(by_state.values()), **by_state)


def assert_utc(moment: datetime) -> None:
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0), moment


class TestJobCounts:
    def test_total_is_the_sum(self) -> None:
        assert JobCounts.from_states({"waiting": 2, "failed": 3}) == JobCounts(total=5, waiting=2, failed=3)
        assert JobCounts() == JobCounts(0, 0, 0, 0, 0, 0, 0)


class TestCountJobs:
    def test_no_jobs_all_zero(self, backend: SQLBackend) -> None:
        assert backend.count_jobs() == JobCounts()

    def test_counts_each_state(self, backend: SQLBackend) -> None:
        states = ["waiting", "waiting", "claimed", "running", "running", "running", "completed", "failed", "canceled"]
        for job, state in zip(backend.create_new_jobs([new_job() for _ in states]), states, strict=True):
            backend.update_job(job.id, state=state)
        found = backend.count_jobs()
        assert found == JobCounts(total=9, waiting=2, claimed=1, running=3, completed=1, failed=1, canceled=1)
        assert all(isinstance(getattr(found, name), int) for name in JobCounts.__dataclass_fields__)

    def test_counts_every_queue(self, backend: SQLBackend) -> None:
        backend.create_new_jobs([new_job("a"), new_job("b"), new_job("b")])
        assert backend.count_jobs() == counts(waiting=3)

    @pytest.fixture
    def layered(self, backend: SQLBackend, sidequest_clock: ManualClock) -> datetime:
        """Six jobs, each counted at a different hour after T0 by a different column of the COALESCE.

        Every column later in the COALESCE holds a decoy time ten hours on,
        so a job counts at its decoy if the wrong column is used.
        """
        t0 = sidequest_clock()
        decoy = t0 + 10 * HOUR
        order = ["completed_at", "failed_at", "canceled_at", "attempted_at", "claimed_at", "inserted_at"]
        plan = [
            ("inserted_at", "waiting", 0),
            ("claimed_at", "claimed", 1),
            ("attempted_at", "running", 2),
            ("canceled_at", "canceled", 3),
            ("failed_at", "failed", 4),
            ("completed_at", "completed", 5),
        ]
        for column, state, hours in plan:
            job = backend.create_new_job(new_job())
            later = {name: decoy for name in order[order.index(column) + 1 :]}
            backend.update_job(job.id, state=state, **later, **{column: t0 + hours * HOUR})
        return t0

    def test_bounds_apply_to_the_first_time_set(self, backend: SQLBackend, layered: datetime) -> None:
        expected = ["waiting", "claimed", "running", "canceled", "failed", "completed"]
        for hours, state in enumerate(expected):
            moment = layered + hours * HOUR
            assert backend.count_jobs(since=moment, until=moment) == counts(**{state: 1}), state

    def test_decoys_are_never_counted(self, backend: SQLBackend, layered: datetime) -> None:
        assert backend.count_jobs(since=layered + 6 * HOUR) == JobCounts()
        assert backend.count_jobs() == counts(waiting=1, claimed=1, running=1, canceled=1, failed=1, completed=1)

    def test_bounds_are_inclusive(self, backend: SQLBackend, layered: datetime) -> None:
        assert backend.count_jobs(until=layered + 2 * HOUR) == counts(waiting=1, claimed=1, running=1)
        assert backend.count_jobs(since=layered + 2 * HOUR, until=layered + 4 * HOUR) == counts(
            running=1, canceled=1, failed=1
        )
        tick = timedelta(microseconds=1)
        assert backend.count_jobs(since=layered + 2 * HOUR + tick, until=layered + 4 * HOUR - tick) == counts(
            canceled=1
        )

    def test_bounds_in_another_offset(self, backend: SQLBackend, layered: datetime) -> None:
        east = timezone(timedelta(hours=5, minutes=45))
        moment = (layered + 3 * HOUR).astimezone(east)
        assert backend.count_jobs(since=moment, until=moment) == counts(canceled=1)

    @pytest.mark.parametrize("bound", ["since", "until"])
    def test_naive_or_non_datetime_bounds_are_refused(self, backend: SQLBackend, bound: str) -> None:
        with pytest.raises(ValueError, match=bound):
            backend.count_jobs(**{bound: datetime(2030, 1, 1)})
        with pytest.raises(TypeError, match=bound):
            backend.count_jobs(**{bound: 1_900_000_000})


class TestCountJobsByQueues:
    def test_nothing_at_all(self, backend: SQLBackend) -> None:
        assert backend.count_jobs_by_queues() == {}

    def test_every_queue_configured_or_used_zeros_included(self, backend: SQLBackend) -> None:
        backend.create_new_queue("configured-empty")
        backend.create_new_queue("configured-used")
        jobs = backend.create_new_jobs(
            [new_job("configured-used"), new_job("configured-used"), new_job("jobs-only"), new_job("configured-used")]
        )
        backend.update_job(jobs[1].id, state="failed")
        backend.update_job(jobs[3].id, state="completed")
        assert backend.count_jobs_by_queues() == {
            "configured-empty": JobCounts(),
            "configured-used": counts(waiting=1, failed=1, completed=1),
            "jobs-only": counts(waiting=1),
        }

    def test_a_queue_whose_jobs_are_gone_still_counts_zero(self, backend: SQLBackend) -> None:
        backend.create_new_queue("q")
        backend.create_new_job(new_job("other"))
        assert backend.count_jobs_by_queues()["q"] == JobCounts()
        assert set(backend.count_jobs_by_queues()) == {"q", "other"}

    def test_the_totals_add_up_to_count_jobs(self, backend: SQLBackend) -> None:
        for i, job in enumerate(backend.create_new_jobs([new_job(f"q{i % 3}") for i in range(9)])):
            backend.update_job(job.id, state=["waiting", "running", "canceled"][i % 3])
        by_queue = backend.count_jobs_by_queues()
        assert sum(c.total for c in by_queue.values()) == backend.count_jobs().total == 9
        assert sum(c.running for c in by_queue.values()) == backend.count_jobs().running == 3


class TestCountJobsOverTime:
    # The clock starts at 2030-01-15 12:30:45.123456 UTC.

    def test_exactly_n_buckets_oldest_first_newest_current(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        sidequest_clock.set(datetime(2030, 1, 15, 12, 30, 45, 123456, tzinfo=UTC))
        found = backend.count_jobs_over_time("3h")
        assert found == [
            bucket(datetime(2030, 1, 15, 10, tzinfo=UTC)),
            bucket(datetime(2030, 1, 15, 11, tzinfo=UTC)),
            bucket(datetime(2030, 1, 15, 12, tzinfo=UTC)),
        ]
        for each in found:
            assert_utc(each.timestamp)

    @pytest.mark.parametrize(
        ("time_range", "newest", "step"),
        [
            ("1m", datetime(2030, 1, 15, 12, 30, tzinfo=UTC), timedelta(minutes=1)),
            ("5m", datetime(2030, 1, 15, 12, 30, tzinfo=UTC), timedelta(minutes=1)),
            ("1h", datetime(2030, 1, 15, 12, tzinfo=UTC), HOUR),
            ("24h", datetime(2030, 1, 15, 12, tzinfo=UTC), HOUR),
            ("1d", datetime(2030, 1, 15, tzinfo=UTC), timedelta(days=1)),
            ("31d", datetime(2030, 1, 15, tzinfo=UTC), timedelta(days=1)),
        ],
    )
    def test_units(
        self, backend: SQLBackend, sidequest_clock: ManualClock, time_range: str, newest: datetime, step: timedelta
    ) -> None:
        sidequest_clock.set(datetime(2030, 1, 15, 12, 30, 45, 123456, tzinfo=UTC))
        n = int(time_range[:-1])
        found = backend.count_jobs_over_time(time_range)
        assert [each.timestamp for each in found] == [newest - step * i for i in range(n - 1, -1, -1)]

    def test_the_largest_range(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        found = backend.count_jobs_over_time("10000m")
        assert len(found) == 10_000
        newest = sidequest_clock().replace(second=0, microsecond=0)
        assert found[-1].timestamp == newest
        assert found[0].timestamp == newest - timedelta(minutes=9999)

    def test_jobs_fall_in_their_buckets(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        now = datetime(2030, 1, 15, 12, 30, 45, 123456, tzinfo=UTC)
        sidequest_clock.set(now)
        job_at(backend, now, "waiting")
        job_at(backend, now - timedelta(minutes=30), "running")  # 12:00:45
        job_at(backend, now - timedelta(minutes=31), "completed")  # 11:59:45
        job_at(backend, now - HOUR, "failed")  # 11:30:45
        job_at(backend, datetime(2030, 1, 15, 10, tzinfo=UTC), "canceled")  # start of the oldest bucket
        job_at(backend, datetime(2030, 1, 15, 10, tzinfo=UTC) - timedelta(microseconds=1), "canceled")
        job_at(backend, now - timedelta(days=2), "completed")
        assert backend.count_jobs_over_time("3h") == [
            bucket(datetime(2030, 1, 15, 10, tzinfo=UTC), canceled=1),
            bucket(datetime(2030, 1, 15, 11, tzinfo=UTC), completed=1, failed=1),
            bucket(datetime(2030, 1, 15, 12, tzinfo=UTC), waiting=1, running=1),
        ]

    def test_jobs_after_now_are_not_counted(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        now = sidequest_clock()
        job_at(backend, now, "completed")
        job_at(backend, now + timedelta(microseconds=1), "completed")
        job_at(backend, now + timedelta(minutes=5), "waiting")
        job_at(backend, now + timedelta(days=3), "failed")
        [current] = backend.count_jobs_over_time("1h")
        assert current == bucket(now.replace(minute=0, second=0, microsecond=0), completed=1)
        sidequest_clock.advance(minutes=5)
        [current] = backend.count_jobs_over_time("1h")
        assert (current.completed, current.waiting, current.failed) == (2, 1, 0)

    def test_a_job_counts_at_its_coalesce_time(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        sidequest_clock.set(datetime(2030, 1, 15, 12, 30, tzinfo=UTC))
        job = backend.create_new_job(new_job())
        backend.update_job(
            job.id,
            state="completed",
            claimed_at=datetime(2030, 1, 15, 12, 10, tzinfo=UTC),
            attempted_at=datetime(2030, 1, 15, 12, 5, tzinfo=UTC),
            completed_at=datetime(2030, 1, 15, 11, 15, tzinfo=UTC),
        )
        running = backend.create_new_job(new_job())
        backend.update_job(
            running.id,
            state="running",
            inserted_at=datetime(2030, 1, 15, 12, 25, tzinfo=UTC),
            claimed_at=datetime(2030, 1, 15, 12, 20, tzinfo=UTC),
            attempted_at=datetime(2030, 1, 15, 10, 59, tzinfo=UTC),
        )
        assert backend.count_jobs_over_time("3h") == [
            bucket(datetime(2030, 1, 15, 10, tzinfo=UTC), running=1),
            bucket(datetime(2030, 1, 15, 11, tzinfo=UTC), completed=1),
            bucket(datetime(2030, 1, 15, 12, tzinfo=UTC)),
        ]

    def test_days_are_truncated_in_utc(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        sidequest_clock.set(datetime(2030, 1, 15, 12, tzinfo=UTC))
        west = timezone(timedelta(hours=-8))
        east = timezone(timedelta(hours=9))
        # 20:00 on the 14th at -08:00 is 04:00 on the 15th in UTC.
        job_at(backend, datetime(2030, 1, 14, 20, tzinfo=west), "completed")
        # 08:00 on the 15th at +09:00 is 23:00 on the 14th in UTC.
        job_at(backend, datetime(2030, 1, 15, 8, tzinfo=east), "failed")
        assert backend.count_jobs_over_time("2d") == [
            bucket(datetime(2030, 1, 14, tzinfo=UTC), failed=1),
            bucket(datetime(2030, 1, 15, tzinfo=UTC), completed=1),
        ]

    def test_hours_are_truncated_in_utc_even_across_half_hour_offsets(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        sidequest_clock.set(datetime(2030, 1, 15, 12, 40, tzinfo=UTC))
        india = timezone(timedelta(hours=5, minutes=30))
        # 17:50 at +05:30 is 12:20 UTC: the current hour, although 17:00 local began at 11:30 UTC.
        job_at(backend, datetime(2030, 1, 15, 17, 50, tzinfo=india), "running")
        # 17:20 at +05:30 is 11:50 UTC.
        job_at(backend, datetime(2030, 1, 15, 17, 20, tzinfo=india), "waiting")
        assert backend.count_jobs_over_time("2h") == [
            bucket(datetime(2030, 1, 15, 11, tzinfo=UTC), waiting=1),
            bucket(datetime(2030, 1, 15, 12, tzinfo=UTC), running=1),
        ]

    def test_a_clock_in_another_offset_still_gives_utc_buckets(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        # 02:00 on the 15th at +05:30 is 20:30 on the 14th in UTC.
        sidequest_clock.set(datetime(2030, 1, 15, 2, tzinfo=timezone(timedelta(hours=5, minutes=30))))
        job_at(backend, datetime(2030, 1, 14, 20, 15, tzinfo=UTC), "completed")
        [today] = backend.count_jobs_over_time("1d")
        assert today == bucket(datetime(2030, 1, 14, tzinfo=UTC), completed=1)
        assert_utc(today.timestamp)
        [this_hour] = backend.count_jobs_over_time("1h")
        assert this_hour == bucket(datetime(2030, 1, 14, 20, tzinfo=UTC), completed=1)
        assert_utc(this_hour.timestamp)

    def test_minutes(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        sidequest_clock.set(datetime(2030, 1, 15, 12, 30, 45, tzinfo=UTC))
        job_at(backend, datetime(2030, 1, 15, 12, 29, 0, tzinfo=UTC), "claimed")
        job_at(backend, datetime(2030, 1, 15, 12, 29, 59, 999999, tzinfo=UTC), "claimed")
        job_at(backend, datetime(2030, 1, 15, 12, 30, 45, tzinfo=UTC), "waiting")
        assert backend.count_jobs_over_time("2m") == [
            bucket(datetime(2030, 1, 15, 12, 29, tzinfo=UTC), claimed=2),
            bucket(datetime(2030, 1, 15, 12, 30, tzinfo=UTC), waiting=1),
        ]

    @pytest.mark.parametrize(
        "time_range",
        ["0h", "0m", "00h", "01h", "12", "h", "", "1w", "1s", "1H", "1.5h", "-1h", "+1h", "10001m", "99999d",
         " 1h", "1h ", "1h\n", "\n1h", "１h", "1ｈ", "1 h", "1hh", "2h3m"],
    )
    def test_invalid_ranges_raise_value_error(self, backend: SQLBackend, time_range: str) -> None:
        with pytest.raises(ValueError, match="time_range"):
            backend.count_jobs_over_time(time_range)

    @pytest.mark.parametrize("time_range", [12, None, b"1h", ["1h"], 1.5])
    def test_non_str_ranges_raise_type_error(self, backend: SQLBackend, time_range: Any) -> None:
        with pytest.raises(TypeError, match="time_range"):
            backend.count_jobs_over_time(time_range)
