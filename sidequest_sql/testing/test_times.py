"""Times: aware datetimes in, aware UTC datetimes out, equal to the microsecond."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from sidequest_sql import JobData, NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.testing.clock import ManualClock
from sidequest_sql.testing.fixtures import backend  # noqa: F401  (the suite's fixture)

TIME_FIELDS = (
    "inserted_at",
    "available_at",
    "attempted_at",
    "completed_at",
    "failed_at",
    "canceled_at",
    "claimed_at",
)
OFFSETS = [
    timezone.utc,
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-9, minutes=-30)),
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
    timezone(timedelta(hours=2, minutes=15, seconds=30, microseconds=250)),
]


def new_job(**fields: Any) -> NewJobData:
    return NewJobData(queue="default", script="jobs.js", job_class="Echo", **fields)


def assert_utc_times(job: JobData) -> None:
    for field in TIME_FIELDS:
        value = getattr(job, field)
        if value is not None:
            assert isinstance(value, datetime), field
            assert value.tzinfo is not None and value.utcoffset() == timedelta(0), (field, value)


def assert_same_instant(out: datetime, given: datetime) -> None:
    assert out == given
    assert out.utcoffset() == timedelta(0)
    assert out.replace(tzinfo=None) == given.astimezone(UTC).replace(tzinfo=None)


class TestTimesGoingIn:
    def test_naive_available_at_is_refused_and_nothing_is_written(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        naive = sidequest_clock().replace(tzinfo=None)
        with pytest.raises(ValueError, match="available_at"):
            backend.create_new_job(new_job(available_at=naive))
        with pytest.raises(ValueError, match="available_at"):
            backend.create_new_jobs([new_job(), new_job(available_at=naive)])
        assert backend.list_jobs() == []

    @pytest.mark.parametrize(
        "value",
        ["2030-01-15T12:00:00+00:00", date(2030, 1, 15), 1_900_000_000, 1.9e9],
        ids=["str", "date", "int", "float"],
    )
    def test_a_non_datetime_available_at_is_refused(self, backend: SQLBackend, value: Any) -> None:
        with pytest.raises(TypeError, match="available_at"):
            backend.create_new_job(new_job(available_at=value))
        assert backend.list_jobs() == []

    @pytest.mark.parametrize("field", TIME_FIELDS)
    def test_update_refuses_naive_and_non_datetime_values(
        self, backend: SQLBackend, sidequest_clock: ManualClock, field: str
    ) -> None:
        job = backend.create_new_job(new_job())
        with pytest.raises(ValueError, match=field):
            backend.update_job(job.id, **{field: sidequest_clock().replace(tzinfo=None)})
        with pytest.raises(TypeError, match=field):
            backend.update_job(job.id, **{field: sidequest_clock().isoformat()})
        with pytest.raises(TypeError, match=field):
            backend.update_job(job.id, **{field: sidequest_clock().date()})
        assert backend.get_job(job.id) == job

    def test_a_clock_that_gives_naive_times_is_refused(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        sidequest_clock.set(datetime(2030, 1, 15, 12))
        with pytest.raises(ValueError, match="clock"):
            backend.create_new_job(new_job())
        assert backend.list_jobs() == []


class TestTimesComingOut:
    @pytest.mark.parametrize("offset", OFFSETS, ids=lambda tz: str(tz))
    def test_every_time_field_round_trips(
        self, backend: SQLBackend, sidequest_clock: ManualClock, offset: timezone
    ) -> None:
        base = datetime(2030, 1, 15, 23, 59, 58, 999_999, tzinfo=offset)
        job = backend.create_new_job(new_job(available_at=base + timedelta(microseconds=1)))
        given = {field: base + timedelta(days=i, microseconds=i * 7) for i, field in enumerate(TIME_FIELDS)}
        updated = backend.update_job(job.id, **given)
        for read in (updated, backend.get_job(job.id)):
            assert read is not None
            for field, value in given.items():
                assert_same_instant(getattr(read, field), value)

    def test_available_at_given_in_an_offset_comes_back_utc(self, backend: SQLBackend) -> None:
        given = datetime(2031, 6, 30, 1, 2, 3, 456_789, tzinfo=timezone(timedelta(hours=-7)))
        job = backend.create_new_job(new_job(available_at=given))
        assert_same_instant(job.available_at, given)
        assert job.available_at.hour == 8
        assert_same_instant(backend.get_job(job.id).available_at, given)  # type: ignore[union-attr]

    def test_a_clock_in_an_offset_gives_utc_times(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        now = datetime(2030, 3, 1, 0, 15, 0, 1, tzinfo=timezone(timedelta(hours=9)))
        sidequest_clock.set(now)
        job = backend.create_new_job(new_job())
        assert_same_instant(job.inserted_at, now)
        assert_same_instant(job.available_at, now)
        [claimed] = backend.claim_pending_job("default")
        assert_same_instant(claimed.claimed_at, now)  # type: ignore[arg-type]
        assert claimed.claimed_at.day == 28  # type: ignore[union-attr]

    @pytest.mark.parametrize(
        "moment",
        [
            datetime(1970, 1, 1, tzinfo=UTC),
            datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            datetime(1000, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            datetime(2000, 2, 29, 12, tzinfo=timezone(timedelta(hours=-3))),
            datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        ],
        ids=str,
    )
    def test_far_and_awkward_instants_round_trip(self, backend: SQLBackend, moment: datetime) -> None:
        job = backend.create_new_job(new_job(available_at=moment))
        assert_same_instant(job.available_at, moment)
        assert_same_instant(backend.get_job(job.id).available_at, moment)  # type: ignore[union-attr]

    def test_times_order_correctly_across_offsets(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        now = sidequest_clock()
        # Later instants written in offsets that make their wall-clock time earlier.
        earlier = (now - timedelta(microseconds=1)).astimezone(timezone(timedelta(hours=12)))
        later = (now + timedelta(microseconds=1)).astimezone(timezone(timedelta(hours=-12)))
        due = backend.create_new_job(new_job(available_at=earlier))
        backend.create_new_job(new_job(available_at=later))
        assert [job.id for job in backend.claim_pending_job("default", quantity=5)] == [due.id]

    def test_every_read_gives_utc(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        east = timezone(timedelta(hours=3))
        old = (sidequest_clock() - timedelta(days=1)).astimezone(east)
        jobs = backend.create_new_jobs([new_job(available_at=old) for _ in range(3)])
        backend.update_job(jobs[0].id, state="running", attempted_at=old)
        backend.update_job(jobs[1].id, state="failed", failed_at=old, canceled_at=old, completed_at=old)
        for job in jobs:
            assert_utc_times(job)
        for job in backend.list_jobs():
            assert_utc_times(job)
        for job in backend.stale_jobs():
            assert_utc_times(job)
        for job in backend.claim_pending_job("default"):
            assert_utc_times(job)
        for counts in backend.count_jobs_over_time("3d"):
            assert counts.timestamp.utcoffset() == timedelta(0)
