"""The worker against each database: every outcome, backoff under the store's clock, time-outs,
concurrency limits seen from the store, paused queues, queue priority, an async backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
import sample_jobs
from worker_threads import wait_until, working

import sidequest_sql as sq
from sidequest_sql.testing.clock import ManualClock


def job_in(backend: sq.SQLBackend, job_id: int, *states: str) -> sq.JobData | None:
    job = backend.get_job(job_id)
    return job if job is not None and job.state in states else None


class TestOutcomes:
    def test_results_of_classes_functions_and_async_jobs(self, store: sq.SQLBackend) -> None:
        echo = sq.enqueue(store, sample_jobs.Echo, "hi", constructor_args=["> "])
        added = sq.enqueue(store, sample_jobs.add, 2, 3)
        awaited = sq.enqueue(store, sample_jobs.AsyncEcho, [1, {"a": None}])
        with working(store):
            done = [wait_until(lambda j=job: job_in(store, j.id, "completed")) for job in (echo, added, awaited)]
        assert [job.result for job in done] == [{"echo": "> hi", "attempt": 1}, 5, [1, {"a": None}]]
        assert all(job.attempt == 1 and job.claimed_by == "test-worker" and job.errors is None for job in done)
        assert all(job.completed_at == store.clock() == job.attempted_at for job in done)

    def test_a_failure_is_retried_after_its_backoff_on_the_stores_clock(
        self, store: sq.SQLBackend, clock: ManualClock
    ) -> None:
        flaky = sq.enqueue(store, sample_jobs.Flaky, 3, max_attempts=3, retry_delay=60_000, backoff_strategy="fixed")
        with working(store):
            for attempt in (1, 2):
                waiting = wait_until(lambda: (j := job_in(store, flaky.id, "waiting")) and j.attempt == attempt and j)
                assert waiting.available_at == clock() + timedelta(minutes=1)
                assert waiting.errors[-1]["message"] == f"attempt {attempt} breaks"
                time.sleep(0.1)  # the worker keeps polling: nothing is claimable before its time
                assert job_in(store, flaky.id, "waiting")
                clock.advance(minutes=1)
            done = wait_until(lambda: job_in(store, flaky.id, "completed"))
        assert done.attempt == 3 and len(done.errors) == 2 and done.result == "fine"

    def test_exponential_backoff_is_jittered_around_the_doubling(self, store: sq.SQLBackend, clock: ManualClock) -> None:
        jobs = [sq.enqueue(store, sample_jobs.Flaky, 9, max_attempts=2, retry_delay=10_000) for _ in range(10)]
        with working(store, concurrency=10):
            waiting = [wait_until(lambda j=job: (w := job_in(store, j.id, "waiting")) and w.errors and w) for job in jobs]
        delays = [(job.available_at - clock()) / timedelta(milliseconds=1) for job in waiting]
        assert all(5_000 <= delay < 15_000 for delay in delays), delays
        assert len(set(delays)) > 1
        clock.advance(seconds=15)
        with working(store, concurrency=10):
            failed = [wait_until(lambda j=job: job_in(store, j.id, "failed")) for job in jobs]
        assert all(job.attempt == 2 and len(job.errors) == 2 for job in failed)

    def test_retry_snooze_and_fail_asked_for(self, store: sq.SQLBackend, clock: ManualClock) -> None:
        retry = sq.enqueue(store, sample_jobs.AsksToRetry, 5000, max_attempts=3)
        snooze = sq.enqueue(store, sample_jobs.Snoozes, 2000, max_attempts=1)
        fail = sq.enqueue(store, sample_jobs.Fails, max_attempts=9)
        with working(store):
            retried = wait_until(lambda: job_in(store, retry.id, "waiting") and store.get_job(retry.id).attempt == 1)  # type: ignore[union-attr]
            snoozed = wait_until(lambda: (j := job_in(store, snooze.id, "waiting")) and j.available_at > j.inserted_at and j)
            failed = wait_until(lambda: job_in(store, fail.id, "failed"))
        retried = store.get_job(retry.id)
        assert retried.available_at == clock() + timedelta(seconds=5) and retried.errors[-1]["message"] == "not yet"  # type: ignore[union-attr]
        assert snoozed.attempt == 0 and snoozed.errors is None and snoozed.available_at == clock() + timedelta(seconds=2)
        assert failed.attempt == 1 and failed.errors[-1] | {"stack": None} == failed.errors[-1] | {"stack": None}
        assert failed.errors[-1]["name"] == "Fail" and failed.errors[-1]["message"] == "no point retrying"
        clock.advance(seconds=2)
        with working(store):
            woke = wait_until(lambda: job_in(store, snooze.id, "completed"))
        assert woke.attempt == 1 and woke.result == "woke"

    def test_bad_rows_fail_with_a_clear_error_and_the_worker_goes_on(self, store: sq.SQLBackend) -> None:
        malformed = sq.enqueue(store, sample_jobs.Echo, 1, 2, 3, max_attempts=5)
        missing = store.create_new_job(sq.NewJobData("default", "no_such_module", "Job", max_attempts=1))
        not_json = sq.enqueue(store, sample_jobs.ReturnsAnObject)
        after = sq.enqueue(store, sample_jobs.add, 1, 1)
        with working(store):
            bad = [wait_until(lambda j=job: job_in(store, j.id, "failed")) for job in (malformed, missing, not_json)]
            assert wait_until(lambda: job_in(store, after.id, "completed")).result == 2
        assert bad[0].attempt == 1 and bad[0].errors[-1]["name"] == "MalformedJob"
        assert "does not fit 3 argument(s)" in bad[0].errors[-1]["message"]
        assert bad[1].errors[-1]["name"] == "LoadError" and "no_such_module" in bad[1].errors[-1]["message"]
        assert bad[2].errors[-1]["name"] == "ResultError"


class TestTimeouts:
    def test_an_async_job_past_its_timeout_is_cancelled_and_retried(self, store: sq.SQLBackend) -> None:
        slow = sq.enqueue(store, sample_jobs.AsyncSleeps, 30, timeout=100, max_attempts=2)
        with working(store):
            waiting = wait_until(lambda: (w := job_in(store, slow.id, "waiting")) and w.errors and w)
            wait_until(lambda: ("end", slow.id) in [(what, job) for what, job, _ in sample_jobs.EVENTS])
        assert waiting.errors[-1]["name"] == "TimeoutError"
        assert waiting.errors[-1]["message"] == "Job timed out after 100ms"

    def test_a_sync_job_past_its_timeout_is_stopped_and_keeps_its_slot_until_it_ends(
        self, store: sq.SQLBackend
    ) -> None:
        slow = sq.enqueue(store, sample_jobs.Sleeps, 30, timeout=100, max_attempts=1)
        after = sq.enqueue(store, sample_jobs.Sleeps, 0)
        with working(store, concurrency=1):
            failed = wait_until(lambda: job_in(store, slow.id, "failed"))
            wait_until(lambda: job_in(store, after.id, "completed"))
        assert failed.errors[-1]["message"] == "Job timed out after 100ms"
        times = {(what, job): at for what, job, at in sample_jobs.EVENTS}
        assert times[("end", slow.id)] <= times[("start", after.id)]
        assert times[("end", slow.id)] - times[("start", slow.id)] < 10  # stopped, not slept out


class TestConcurrency:
    @pytest.mark.parametrize("kind", ["sync", "async"])
    def test_never_more_running_than_the_queue_allows(self, store: sq.SQLBackend, kind: str) -> None:
        store.create_new_queue("limited", concurrency=3)
        job_class = sample_jobs.Sleeps if kind == "sync" else sample_jobs.AsyncSleeps
        jobs = [sq.enqueue(store, job_class, 0.05, queue="limited") for _ in range(15)]
        seen: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                seen.append(store.count_jobs_by_queues()["limited"].running)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with working(store, ("limited",)):
                wait_until(lambda: store.count_jobs().completed == len(jobs), what="every job done")
        finally:
            stop.set()
            watcher.join()
        assert max(seen) == 3, seen

    def test_a_paused_queue_is_not_taken_from(self, store: sq.SQLBackend) -> None:
        queue = store.create_new_queue("paused", state="paused")
        job = sq.enqueue(store, sample_jobs.add, 1, 2, queue="paused")
        with working(store, ("paused",)):
            time.sleep(0.3)
            assert job_in(store, job.id, "waiting")
            store.update_queue(queue.id, state="active")
            wait_until(lambda: job_in(store, job.id, "completed"))

    def test_higher_priority_queues_are_served_first(self, store: sq.SQLBackend) -> None:
        store.create_new_queue("low", concurrency=1, priority=0)
        store.create_new_queue("high", concurrency=1, priority=10)
        low = sq.enqueue(store, sample_jobs.add, 0, 0, queue="low")
        high = sq.enqueue(store, sample_jobs.add, 0, 0, queue="high")
        with working(store, ("low", "high")):
            done = [wait_until(lambda j=job: job_in(store, j.id, "completed")) for job in (low, high)]
        assert done[1].claimed_at <= done[0].claimed_at
        first = store.list_jobs(state="completed", limit=2)
        assert {job.id for job in first} == {low.id, high.id}


class TestIdle:
    """An idle worker sleeps in the store's wake-up: no claims while nothing comes, a job
    taken as soon as the store says so (here the queue settings are never read again and,
    on Postgres, the wait never polls: only a notification can wake the worker)."""

    @pytest.mark.parametrize("kind", ["sync", "async"])
    def test_an_idle_worker_claims_nothing_until_a_job_wakes_it(
        self, store: sq.SQLBackend, store_url: str, clock: ManualClock, kind: str
    ) -> None:
        backend: Any = store if kind == "sync" else sq.create_async_backend(store_url, clock=clock)
        backend.poll_interval = 3600 if store.url.get_backend_name() == "postgresql" else 0.1
        engine = store.engine if kind == "sync" else backend.engine.sync_engine
        with working(backend, queue_refresh=3600), sent_statements(engine) as sent:
            wait_until(lambda: any(is_look(statement) for statement in sent), what="the worker waiting")
            time.sleep(0.5)
            idle = list(sent)
            job = sq.enqueue(store, sample_jobs.add, 1, 2)
            assert wait_until(lambda: job_in(store, job.id, "completed")).result == 3
        claims = [statement for statement in idle if is_claim(statement)]
        assert len(claims) == 1, claims  # the first, which found the queue empty
        if store.url.get_backend_name() == "postgresql":
            # A look, another once the listening connection listens, then sleep until notified.
            assert sum(map(is_look, idle)) <= 2, idle

    def test_a_full_queue_does_not_keep_an_idle_worker_awake(self, store: sq.SQLBackend) -> None:
        store.create_new_queue("one", concurrency=1)
        running = sq.enqueue(store, sample_jobs.Sleeps, 1.5, queue="one")
        queued = sq.enqueue(store, sample_jobs.add, 1, 1, queue="one")
        with working(store, ("one", "other"), queue_refresh=3600), sent_statements(store.engine) as sent:
            wait_until(lambda: job_in(store, running.id, "running"))
            time.sleep(0.2)
            before = len(sent)
            time.sleep(0.8)
            while_full = sent[before:]
            assert job_in(store, queued.id, "waiting")
            wait_until(lambda: job_in(store, queued.id, "completed"))
        # Waiting on "other" only: a wait that took in "one" would end at once, again and again.
        assert len(while_full) <= 10, while_full


@contextmanager
def sent_statements(engine: sa.Engine) -> Iterator[list[str]]:
    """The statements on the jobs table that ``engine`` sends while the block runs."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "sidequest_jobs" in statement:
            sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def is_claim(statement: str) -> bool:
    """A claim's statement that picks the jobs (in the claim order), on every dialect."""
    return "ORDER BY" in statement.upper() and not is_look(statement)


def is_look(statement: str) -> bool:
    return "coalesce" in statement.lower()


class TestShutdown:
    def test_stop_lets_running_jobs_finish_and_takes_nothing_new(self, store: sq.SQLBackend) -> None:
        store.create_new_queue("one", concurrency=1)
        running = sq.enqueue(store, sample_jobs.Sleeps, 0.3, queue="one")
        queued = sq.enqueue(store, sample_jobs.Sleeps, 0, queue="one")
        with working(store, ("one",)) as worker:
            wait_until(lambda: job_in(store, running.id, "running"))
            worker.stop()
        assert job_in(store, running.id, "completed")
        assert job_in(store, queued.id, "waiting") and store.get_job(queued.id).claimed_by is None  # type: ignore[union-attr]

    def test_jobs_still_running_after_the_grace_are_given_back_with_their_attempt(self, store: sq.SQLBackend) -> None:
        sync = sq.enqueue(store, sample_jobs.Sleeps, 30)
        asynchronous = sq.enqueue(store, sample_jobs.AsyncSleeps, 30)
        with working(store, grace=0.2):
            for job in (sync, asynchronous):
                wait_until(lambda j=job: job_in(store, j.id, "running"))
        for job in (sync, asynchronous):
            back = job_in(store, job.id, "waiting")
            assert back is not None and back.attempt == 0 and back.errors is None


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_async_backend_runs_the_same_loop(request: pytest.FixtureRequest, dialect: str) -> None:
    url = request.getfixturevalue(f"{dialect}_url")
    with sq.create_backend(url) as store:
        store.migrate()
        store.truncate()
        jobs = [sq.enqueue(store, sample_jobs.Echo, i) for i in range(30)]
        jobs.append(sq.enqueue(store, sample_jobs.Flaky, 2, retry_delay=0, backoff_strategy="fixed"))
        jobs.append(sq.enqueue(store, sample_jobs.AsyncSleeps, 0.01))
        jobs.append(sq.enqueue(store, sample_jobs.Sleeps, 0.01))
        backend = sq.create_async_backend(url)
        with working(backend, concurrency=5):
            done = [wait_until(lambda j=job: job_in(store, j.id, "completed")) for job in jobs]
        assert [job.result for job in done[:3]] == [{"echo": str(i), "attempt": 1} for i in range(3)]
        assert done[30].attempt == 2


def test_bad_worker_arguments_are_refused(store: sq.SQLBackend) -> None:
    bad: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"queues": "default"}, TypeError), ({"queues": []}, ValueError), ({"queues": [1]}, TypeError),
        ({"concurrency": 0}, ValueError), ({"grace": -1}, ValueError), ({"queue_refresh": "1"}, TypeError), ({"queue_refresh": 0}, ValueError),
        ({"release_stale_every": 0}, ValueError), ({"cleanup_every": "1h"}, TypeError),
        ({"max_stale_ms": 1.5}, TypeError), ({"cleanup_older_than": 30}, TypeError),
    ]  # fmt: skip
    for kwargs, error in bad:
        with pytest.raises(error):
            sq.Worker(store, **{"queues": ["default"], **kwargs})
