"""Outcomes, backoff, loading and enqueue naming as pure functions: no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import sidequest_sql as sq
from sidequest_sql import transitions
from sidequest_sql.worker import loading, outcomes
from sidequest_sql.worker.enqueue import job_name

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


def running_job(**fields: Any) -> sq.JobData:
    base = sq.JobData(
        id=7, queue="default", state="running", script="sample_jobs", job_class="Echo", args=[1],
        constructor_args=[], attempt=1, max_attempts=3, inserted_at=NOW, available_at=NOW,
        attempted_at=NOW - timedelta(seconds=1), claimed_at=NOW, claimed_by="w1",
    )  # fmt: skip
    return replace(base, **fields)


class TestBackoff:
    @pytest.mark.parametrize(("attempt", "expected"), [(1, 1000), (2, 2000), (3, 4000), (13, 3_600_000), (99, 3_600_000)])
    def test_exponential_doubles_from_the_default_second_up_to_an_hour(self, attempt: int, expected: int) -> None:
        assert transitions.retry_delay_ms(attempt, None, "exponential") == expected

    def test_exponential_is_scaled_by_the_jitter_then_rounded_and_capped(self) -> None:
        assert transitions.retry_delay_ms(2, 500, "exponential", 0.5) == 500
        assert transitions.retry_delay_ms(2, 500, "exponential", 1.4999) == 1500
        assert transitions.retry_delay_ms(3, 333, "exponential", 1.1) == round(333 * 4 * 1.1)
        assert transitions.retry_delay_ms(20, 1000, "exponential", 0.5) == 3_600_000

    def test_fixed_waits_the_retry_delay_without_jitter(self) -> None:
        assert transitions.retry_delay_ms(5, 2000, "fixed", 1.4) == 2000
        assert transitions.retry_delay_ms(5, None, "fixed", 0.6) == 1000

    def test_jitter_is_drawn_from_half_to_one_and_a_half(self) -> None:
        draws = [transitions.draw_jitter() for _ in range(2000)]
        assert 0.5 <= min(draws) < 0.6 and 1.4 < max(draws) < 1.5


class TestOutcomes:
    def test_a_value_completes(self) -> None:
        outcome = outcomes.completed(running_job(), {"ok": True}, NOW, 256)
        assert outcome.kind == "completed"
        assert outcome.changes == {"state": "completed", "result": {"ok": True}, "completed_at": NOW}

    def test_a_result_that_is_not_json_fails_the_job(self) -> None:
        outcome = outcomes.completed(running_job(), object(), NOW, 256)
        assert outcome.kind == "failed" and outcome.changes["errors"][0]["name"] == "ResultError"

    def test_an_exception_is_retried_with_the_error_in_sidequests_shape(self) -> None:
        job = running_job(retry_delay=250, backoff_strategy="fixed", errors=[{"message": "before"}])
        try:
            raise RuntimeError("broken pipe")
        except RuntimeError as exc:
            outcome = outcomes.raised(job, exc, NOW)
        assert outcome.kind == "retried"
        changes = outcome.changes
        assert changes["state"] == "waiting" and changes["available_at"] == NOW + timedelta(milliseconds=250)
        first, entry = changes["errors"]
        assert first == {"message": "before"}
        assert list(entry) == ["name", "message", "stack", "attempt", "attempted_at", "attempt_by"]
        assert entry["name"] == "RuntimeError" and entry["message"] == "broken pipe"
        assert "Traceback" in entry["stack"] and "broken pipe" in entry["stack"]
        assert entry["attempt"] == 1 and entry["attempt_by"] == "w1"
        assert entry["attempted_at"] == job.attempted_at.isoformat()  # type: ignore[union-attr]

    def test_an_error_whose_text_no_database_stores_is_escaped(self) -> None:
        from sidequest_sql.jsonvalues import check_json

        outcome = outcomes.raised(running_job(), ValueError("bad \x00 byte and \ud800"), NOW)
        entry = outcome.changes["errors"][-1]
        assert entry["message"] == "bad \\x00 byte and \\ud800"
        check_json(outcome.changes["errors"], "errors", 256)

    def test_the_last_attempt_fails(self) -> None:
        outcome = outcomes.raised(running_job(attempt=3), ValueError("x"), NOW)
        assert outcome.kind == "failed" and outcome.changes["failed_at"] == NOW
        assert outcome.changes["errors"][-1]["name"] == "ValueError"

    def test_retry_asked_for_with_a_delay(self) -> None:
        outcome = outcomes.raised(running_job(), sq.Retry(5000), NOW)
        assert outcome.kind == "retried" and outcome.changes["available_at"] == NOW + timedelta(seconds=5)
        assert outcome.changes["errors"][-1]["name"] == "Retry"

    def test_snooze_takes_the_attempt_back(self) -> None:
        outcome = outcomes.raised(running_job(attempt=2), sq.Snooze(300), NOW)
        assert outcome.kind == "snoozed"
        assert outcome.changes == {"state": "waiting", "available_at": NOW + timedelta(milliseconds=300), "attempt": 1}

    def test_fail_fails_at_once(self) -> None:
        outcome = outcomes.raised(running_job(attempt=1, max_attempts=9), sq.Fail("gone"), NOW)
        assert outcome.kind == "failed" and outcome.changes["errors"][-1]["message"] == "gone"

    def test_a_timeout_is_a_failed_attempt(self) -> None:
        outcome = outcomes.timed_out(running_job(timeout=1500), NOW)
        assert outcome.kind == "retried"
        assert outcome.changes["errors"][-1]["message"] == "Job timed out after 1500ms"

    @pytest.mark.parametrize("make", [lambda: sq.Retry(-1), lambda: sq.Snooze(1.5), lambda: sq.Snooze(True)])
    def test_bad_delays_are_refused(self, make: Any) -> None:
        with pytest.raises(ValueError, match="delay_ms"):
            make()


class TestLoading:
    def test_a_missing_module_or_name_is_a_load_error(self) -> None:
        with pytest.raises(loading.LoadError, match="cannot import module 'no_such_module'"):
            loading.prepare(running_job(script="no_such_module"))
        with pytest.raises(loading.LoadError, match="no job class or function named 'Nope'"):
            loading.prepare(running_job(job_class="Nope"))
        with pytest.raises(loading.LoadError, match="neither"):
            loading.prepare(running_job(job_class="EVENTS"))

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"args": [1, 2]}, "does not fit 2 argument"),
            ({"args": {"value": 1}}, "args must be a JSON array"),
            ({"constructor_args": ["a", "b"]}, r"Echo\(\*constructor_args\) does not fit"),
            ({"job_class": "add", "args": [1]}, r"add\(\*args\) does not fit"),
        ],
    )
    def test_arguments_that_do_not_fit_are_a_malformed_job(self, fields: dict[str, Any], message: str) -> None:
        with pytest.raises(loading.MalformedJob, match=message):
            loading.prepare(running_job(**fields))

    def test_a_class_is_built_and_a_function_called(self) -> None:
        prepared = loading.prepare(running_job(constructor_args=["> "], args=["hi"]))
        assert prepared.call() == {"echo": "> hi", "attempt": 1} and not prepared.asynchronous
        assert loading.prepare(running_job(job_class="add", args=[2, 3])).call() == 5
        assert loading.prepare(running_job(job_class="AsyncEcho")).asynchronous


class TestArity:
    @pytest.mark.parametrize(
        ("function", "fits", "misfits"),
        [
            (lambda a, b=1: None, [1, 2], [0, 3]),
            (lambda a, *rest: None, [1, 5], [0]),
            (lambda *, key: None, [], [0, 1]),
            (lambda a, *, key=1: None, [1], [0, 2]),
        ],
    )
    def test_positional_calls_are_checked_as_python_would(self, function: Any, fits: list[int], misfits: list[int]) -> None:
        arity = loading.Arity.of(function)
        assert arity is not None
        for count in fits:
            assert arity.fits(count), count
        for count in misfits:
            assert not arity.fits(count), count


class TestEnqueueNames:
    def test_a_job_is_named_by_its_module_and_name(self) -> None:
        import sample_jobs

        assert job_name(sample_jobs.Echo) == ("sample_jobs", "Echo")
        assert job_name(sample_jobs.add) == ("sample_jobs", "add")

    def test_what_a_worker_cannot_import_is_refused(self) -> None:
        class Local(sq.Job):
            pass

        with pytest.raises(ValueError, match="not at the top level"):
            job_name(Local)
        with pytest.raises(TypeError, match="job_class"):
            job_name("sample_jobs.Echo")  # type: ignore[arg-type]
        main = type("Main", (sq.Job,), {"__module__": "__main__"})
        with pytest.raises(ValueError, match="__main__"):
            job_name(main)
