"""Listing jobs: order, paging, and every filter (LIKE patterns, lists, JSON args, times)."""

from __future__ import annotations

from datetime import date, timedelta, timezone
from typing import Any

import pytest

from sidequest_sql import JobData, NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.testing.clock import ManualClock
from sidequest_sql.testing.fixtures import backend  # noqa: F401  (the suite's fixture)


def new_job(queue: str = "default", **fields: Any) -> NewJobData:
    fields.setdefault("job_class", "Echo")
    return NewJobData(queue=queue, script="jobs.js", **fields)


def ids(found: list[JobData]) -> list[int]:
    return [job.id for job in found]


class TestListJobsOrderAndPaging:
    def test_empty(self, backend: SQLBackend) -> None:
        assert backend.list_jobs() == []

    def test_newest_id_first(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        created = []
        for i in range(4):
            created.append(backend.create_new_job(new_job(args=[i])))
            sidequest_clock.advance(seconds=1)
        # Neither inserted_at nor available_at decides the order: the id does.
        backend.update_job(created[-1].id, inserted_at=created[0].inserted_at - timedelta(days=1))
        found = backend.list_jobs()
        assert ids(found) == sorted(ids(created), reverse=True)
        assert [backend.get_job(job.id) for job in found] == found

    def test_default_limit_is_fifty(self, backend: SQLBackend) -> None:
        created = backend.create_new_jobs([new_job(args=[i]) for i in range(60)])
        found = backend.list_jobs()
        assert ids(found) == sorted(ids(created), reverse=True)[:50]

    def test_limit_and_offset(self, backend: SQLBackend) -> None:
        created = backend.create_new_jobs([new_job(args=[i]) for i in range(10)])
        newest_first = sorted(ids(created), reverse=True)
        assert ids(backend.list_jobs(limit=3)) == newest_first[:3]
        assert ids(backend.list_jobs(limit=3, offset=2)) == newest_first[2:5]
        assert ids(backend.list_jobs(offset=8)) == newest_first[8:]
        assert backend.list_jobs(offset=10) == []
        assert backend.list_jobs(limit=0) == []
        assert ids(backend.list_jobs(limit=1000)) == newest_first

    @pytest.mark.parametrize("paging", [{"limit": -1}, {"offset": -1}], ids=["limit", "offset"])
    def test_negative_limit_or_offset_is_refused(self, backend: SQLBackend, paging: dict[str, int]) -> None:
        backend.create_new_job(new_job())
        with pytest.raises(ValueError, match=next(iter(paging))):
            backend.list_jobs(**paging)


LIKE_NAMES = ["mail", "MAIL", "mails", "m_il", "m%il", "mxil", "m\\il", "m*il", "m?il", "m[a]il", "été", "ÉTÉ"]
SHAPED_M_IL = {"mail", "m_il", "m%il", "mxil", "m\\il", "m*il", "m?il"}


class TestListJobsPatterns:
    @pytest.fixture
    def by_queue(self, backend: SQLBackend) -> dict[str, int]:
        created = backend.create_new_jobs([new_job(name) for name in LIKE_NAMES])
        return {job.queue: job.id for job in created}

    @pytest.mark.parametrize(
        ("pattern", "expected"),
        [
            ("mail", {"mail"}),
            ("MAIL", {"MAIL"}),
            ("mai", set()),
            ("m_il", SHAPED_M_IL),
            ("m\\_il", {"m_il"}),
            ("m\\%il", {"m%il"}),
            ("m\\\\il", {"m\\il"}),
            ("\\m\\a\\i\\l", {"mail"}),
            ("m%", SHAPED_M_IL | {"mails", "m[a]il"}),
            ("%il", SHAPED_M_IL | {"m[a]il"}),
            ("%", set(LIKE_NAMES)),
            ("%s", {"mails"}),
            ("m*il", {"m*il"}),
            ("m?il", {"m?il"}),
            ("m[a]il", {"m[a]il"}),
            ("été", {"été"}),
            ("ÉTÉ", {"ÉTÉ"}),
            ("_t_", {"été"}),
            ("%T%", {"ÉTÉ"}),
            ("", set()),
        ],
    )
    def test_str_is_a_case_sensitive_like_pattern(
        self, backend: SQLBackend, by_queue: dict[str, int], pattern: str, expected: set[str]
    ) -> None:
        found = backend.list_jobs(queue=pattern, limit=100)
        assert {job.queue for job in found} == expected
        assert ids(found) == sorted((by_queue[name] for name in expected), reverse=True)

    def test_empty_pattern_matches_only_the_empty_string(self, backend: SQLBackend) -> None:
        empty = backend.create_new_job(new_job(job_class=""))
        backend.create_new_job(new_job(job_class="Echo"))
        assert ids(backend.list_jobs(job_class="")) == [empty.id]
        assert backend.list_jobs(state="") == []

    def test_patterns_apply_to_job_class_and_state(self, backend: SQLBackend) -> None:
        send, sync, other = backend.create_new_jobs(
            [new_job(job_class="SendEmail"), new_job(job_class="SyncEmail"), new_job(job_class="sendemail")]
        )
        backend.update_job(sync.id, state="running")
        assert ids(backend.list_jobs(job_class="S%Email")) == [sync.id, send.id]
        assert ids(backend.list_jobs(job_class="Send%")) == [send.id]
        assert ids(backend.list_jobs(state="run%")) == [sync.id]
        assert ids(backend.list_jobs(state="w_iting")) == [other.id, send.id]
        assert backend.list_jobs(state="WAITING") == []

    def test_a_lone_trailing_backslash_is_refused(self, backend: SQLBackend) -> None:
        with pytest.raises(ValueError, match="queue"):
            backend.list_jobs(queue="mail\\")


class TestListJobsLists:
    def test_list_is_an_in(self, backend: SQLBackend) -> None:
        a, b, c = backend.create_new_jobs([new_job("a"), new_job("b"), new_job("c")])
        assert ids(backend.list_jobs(queue=["a", "c"])) == [c.id, a.id]
        assert ids(backend.list_jobs(queue=["b"])) == [b.id]
        assert ids(backend.list_jobs(queue=("a", "b"))) == [b.id, a.id]

    def test_list_items_are_exact_values_not_patterns(self, backend: SQLBackend) -> None:
        backend.create_new_jobs([new_job("mail"), new_job("MAIL")])
        assert backend.list_jobs(queue=["m%", "ma_l", "Mail"]) == []

    def test_empty_list_matches_nothing(self, backend: SQLBackend) -> None:
        backend.create_new_jobs([new_job("a"), new_job("b")])
        assert backend.list_jobs(queue=[]) == []
        assert backend.list_jobs(state=[]) == []
        assert backend.list_jobs(job_class=[]) == []

    def test_state_list(self, backend: SQLBackend) -> None:
        jobs = backend.create_new_jobs([new_job() for _ in range(4)])
        for job, state in zip(jobs, ["waiting", "running", "failed", "completed"], strict=True):
            backend.update_job(job.id, state=state)
        found = backend.list_jobs(state=["failed", "waiting", "canceled"])
        assert ids(found) == [jobs[2].id, jobs[0].id]

    def test_a_filter_of_another_type_is_refused(self, backend: SQLBackend) -> None:
        with pytest.raises(TypeError, match="queue"):
            backend.list_jobs(queue=7)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="state"):
            backend.list_jobs(state=["waiting", 3])  # type: ignore[list-item]


class TestListJobsArgs:
    def make(self, backend: SQLBackend, *all_args: Any) -> list[int]:
        return ids(backend.create_new_jobs([new_job(args=args) for args in all_args]))

    def test_equal_documents_match(self, backend: SQLBackend) -> None:
        first, _, third = self.make(backend, [1, "a", {"k": None}], [1, "a"], [1, "a", {"k": None}])
        assert ids(backend.list_jobs(args=[1, "a", {"k": None}])) == [third, first]

    def test_key_order_does_not_matter(self, backend: SQLBackend) -> None:
        [job] = self.make(backend, {"b": 2, "a": {"y": 1, "x": [1, 2]}})
        assert ids(backend.list_jobs(args={"a": {"x": [1, 2], "y": 1}, "b": 2})) == [job]

    def test_list_order_does_matter(self, backend: SQLBackend) -> None:
        self.make(backend, [1, 2])
        assert backend.list_jobs(args=[2, 1]) == []

    def test_one_is_not_true_and_zero_is_not_false(self, backend: SQLBackend) -> None:
        one, true, zero, false = self.make(backend, [1], [True], [0], [False])
        assert ids(backend.list_jobs(args=[1])) == [one]
        assert ids(backend.list_jobs(args=[True])) == [true]
        assert ids(backend.list_jobs(args=[0])) == [zero]
        assert ids(backend.list_jobs(args=[False])) == [false]

    def test_an_integral_float_equals_the_int(self, backend: SQLBackend) -> None:
        as_int, as_float = self.make(backend, {"n": 1}, {"n": 1.0})
        assert ids(backend.list_jobs(args={"n": 1.0})) == [as_float, as_int]
        assert ids(backend.list_jobs(args={"n": 1})) == [as_float, as_int]
        assert backend.list_jobs(args={"n": 1.5}) == []

    def test_strings_and_numbers_differ(self, backend: SQLBackend) -> None:
        number, text = self.make(backend, [1], ["1"])
        assert ids(backend.list_jobs(args=["1"])) == [text]
        assert ids(backend.list_jobs(args=[1])) == [number]

    def test_equality_not_containment(self, backend: SQLBackend) -> None:
        bigger, smaller = self.make(backend, {"a": 1, "b": 2}, {"a": 1})
        assert ids(backend.list_jobs(args={"a": 1})) == [smaller]
        assert backend.list_jobs(args=[{"a": 1}]) == []
        assert ids(backend.list_jobs(args={"a": 1, "b": 2})) == [bigger]

    def test_empty_documents_and_scalars(self, backend: SQLBackend) -> None:
        empty_list, empty_dict, text, number = self.make(backend, [], {}, "plain", 3)
        assert ids(backend.list_jobs(args=[])) == [empty_list]
        assert ids(backend.list_jobs(args={})) == [empty_dict]
        assert ids(backend.list_jobs(args="plain")) == [text]
        assert ids(backend.list_jobs(args=3)) == [number]

    def test_unicode_and_escapes(self, backend: SQLBackend) -> None:
        value = {"é": "日本語 \"quoted\" \\ back\nline", "emoji": "🎉"}
        [job] = self.make(backend, value)
        self.make(backend, {"é": "other", "emoji": "🎉"})
        assert ids(backend.list_jobs(args=dict(reversed(value.items())))) == [job]

    def test_args_that_are_no_json_document_are_refused(self, backend: SQLBackend) -> None:
        with pytest.raises(ValueError, match="args"):
            backend.list_jobs(args=[float("nan")])
        with pytest.raises(TypeError, match="args"):
            backend.list_jobs(args=[object()])


class TestListJobsTimes:
    @pytest.fixture
    def attempted(self, backend: SQLBackend, sidequest_clock: ManualClock) -> dict[str, Any]:
        now = sidequest_clock()
        t1, t2, t3 = now - timedelta(hours=2), now - timedelta(hours=1), now
        never, one, two, three = backend.create_new_jobs([new_job() for _ in range(4)])
        for job, at in ((one, t1), (two, t2), (three, t3)):
            backend.update_job(job.id, state="running", attempted_at=at)
        return {"t1": t1, "t2": t2, "t3": t3, "never": never.id, "one": one.id, "two": two.id, "three": three.id}

    def test_since_is_inclusive(self, backend: SQLBackend, attempted: dict[str, Any]) -> None:
        assert ids(backend.list_jobs(since=attempted["t2"])) == [attempted["three"], attempted["two"]]
        after = attempted["t2"] + timedelta(microseconds=1)
        assert ids(backend.list_jobs(since=after)) == [attempted["three"]]

    def test_until_is_inclusive(self, backend: SQLBackend, attempted: dict[str, Any]) -> None:
        assert ids(backend.list_jobs(until=attempted["t2"])) == [attempted["two"], attempted["one"]]
        before = attempted["t2"] - timedelta(microseconds=1)
        assert ids(backend.list_jobs(until=before)) == [attempted["one"]]

    def test_since_and_until_together(self, backend: SQLBackend, attempted: dict[str, Any]) -> None:
        t2 = attempted["t2"]
        assert ids(backend.list_jobs(since=t2, until=t2)) == [attempted["two"]]
        assert backend.list_jobs(since=attempted["t3"], until=attempted["t1"]) == []

    def test_jobs_never_attempted_are_left_out_by_a_bound(
        self, backend: SQLBackend, attempted: dict[str, Any]
    ) -> None:
        far = attempted["t1"] - timedelta(days=3650)
        assert attempted["never"] not in ids(backend.list_jobs(since=far))
        assert attempted["never"] not in ids(backend.list_jobs(until=attempted["t3"] + timedelta(days=3650)))
        assert attempted["never"] in ids(backend.list_jobs())

    def test_bounds_in_other_offsets_mean_the_same_instant(
        self, backend: SQLBackend, attempted: dict[str, Any]
    ) -> None:
        t2 = attempted["t2"].astimezone(timezone(timedelta(hours=-9, minutes=-30)))
        assert ids(backend.list_jobs(since=t2, until=t2)) == [attempted["two"]]

    def test_bounds_are_attempted_at_not_other_times(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        now = sidequest_clock()
        job = backend.create_new_job(new_job())
        backend.update_job(job.id, state="completed", completed_at=now, claimed_at=now, attempted_at=None)
        assert backend.list_jobs(since=now - timedelta(days=1)) == []

    @pytest.mark.parametrize("bound", ["since", "until"])
    def test_naive_or_non_datetime_bounds_are_refused(self, backend: SQLBackend, bound: str) -> None:
        with pytest.raises(ValueError, match=bound):
            backend.list_jobs(**{bound: ManualClock()().replace(tzinfo=None)})
        with pytest.raises(TypeError, match=bound):
            backend.list_jobs(**{bound: "2030-01-01T00:00:00Z"})
        with pytest.raises(TypeError, match=bound):
            backend.list_jobs(**{bound: date(2030, 1, 1)})


class TestListJobsFiltersCombine:
    def test_filters_combine_with_and(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        now = sidequest_clock()
        jobs = backend.create_new_jobs(
            [
                new_job("mail", job_class="Send", args=[1]),
                new_job("mail", job_class="Send", args=[2]),
                new_job("mail", job_class="Sync", args=[1]),
                new_job("sms", job_class="Send", args=[1]),
                new_job("mail", job_class="Send", args=[1]),
            ]
        )
        backend.update_job(jobs[0].id, state="running", attempted_at=now)
        backend.update_job(jobs[4].id, state="failed", attempted_at=now - timedelta(days=1))
        assert ids(backend.list_jobs(queue="mail", job_class="Send", args=[1])) == [jobs[4].id, jobs[0].id]
        assert ids(backend.list_jobs(queue="mail", job_class="Send", args=[1], state="running")) == [jobs[0].id]
        assert ids(backend.list_jobs(queue=["mail", "sms"], job_class="S%", state=["waiting"], args=[1])) == [
            jobs[3].id,
            jobs[2].id,
        ]
        assert ids(backend.list_jobs(queue="mail", since=now - timedelta(hours=1))) == [jobs[0].id]
        assert ids(backend.list_jobs(job_class="Send", until=now - timedelta(hours=1))) == [jobs[4].id]
        assert backend.list_jobs(queue="sms", job_class="Sync") == []

    def test_filters_and_paging_combine(self, backend: SQLBackend) -> None:
        created = backend.create_new_jobs([new_job("a" if i % 2 else "b", args=[i]) for i in range(10)])
        in_a = sorted((job.id for job in created if job.queue == "a"), reverse=True)
        assert ids(backend.list_jobs(queue="a", limit=2, offset=1)) == in_a[1:3]
