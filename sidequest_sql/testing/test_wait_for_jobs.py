"""``wait_for_jobs``: it sleeps until a job of its queues may be claimable, and not through one.

A wait returns at once when a job is claimable as it starts; it wakes, with
the right queue names, for a job another backend enqueues or gives back to
waiting, and when a future job comes due; it ends empty when its time runs
out, a job of another queue or one not yet due notwithstanding. Where the
dialect has no notifications these hold by polling, which the tests make
quick (``poll_interval``); a future job's due time wakes a wait whatever the
interval. No test asserts a duration: a wait that must wake is given far more
time than it takes, and only "it woke before its timeout" is checked.
"""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import Future, wait
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sidequest_sql import AsyncSQLBackend, NewJobData
from sidequest_sql.base import SQLBackend

from .backends import BackendFactory
from .clock import ManualClock
from .fixtures import backend  # noqa: F401  (the suite's fixture)
from .test_async_tasks import pool_is_fit, run
from .waiting import started

QUEUE = "wake-me"
OTHER = "not-me"
POLL_S = 0.05
"""The tests' poll interval: where nothing notifies, a wait looks this often."""
WAKE_TIMEOUT_S = 20.0
"""The timeout of a wait that must wake: far beyond what waking takes, so only a wait that never wakes fails."""
SETTLE_S = 0.2
"""How long a test lets a wait go to sleep before it makes a job claimable."""


def job(queue: str = QUEUE, **fields: Any) -> NewJobData:
    return NewJobData(queue=queue, script="jobs/wake.py", job_class="Wake", **fields)


def asleep(store: Any, queues: list[str], timeout: float = WAKE_TIMEOUT_S) -> Future[list[str]]:
    """A wait in a thread of its own, given ``SETTLE_S`` to look at the store and fall asleep."""
    waiting = started(lambda: store.wait_for_jobs(queues, timeout))
    done, _ = wait([waiting], SETTLE_S)
    assert not done, f"the wait ended before anything was enqueued: {waiting.result()!r}"
    return waiting


def woken(waiting: Future[list[str]]) -> list[str]:
    return waiting.result(WAKE_TIMEOUT_S + 10)


@pytest.fixture
def other_backend(
    backend: SQLBackend,
    sidequest_url: str,
    sidequest_clock: ManualClock,
    sidequest_engine_options: dict[str, Any],
    sidequest_backends: BackendFactory,
) -> Any:
    """A second backend on the same database and clock, as another process would have."""
    backend.poll_interval = POLL_S
    other = sidequest_backends(sidequest_url, clock=sidequest_clock, **sidequest_engine_options)
    try:
        yield other
    finally:
        other.close()


class TestAtOnce:
    def test_nothing_comes_and_the_wait_ends_empty(self, backend: SQLBackend) -> None:
        backend.poll_interval = POLL_S
        assert backend.wait_for_jobs([QUEUE], 0) == []
        assert backend.wait_for_jobs([QUEUE, OTHER], 0.3) == []

    def test_a_claimable_job_ends_the_wait_at_once(self, backend: SQLBackend) -> None:
        backend.create_new_job(job())
        assert backend.wait_for_jobs([QUEUE], WAKE_TIMEOUT_S) == [QUEUE]
        assert backend.wait_for_jobs([OTHER, QUEUE], 0) == [QUEUE]

    def test_the_queues_come_back_in_the_order_given_once_each(self, backend: SQLBackend) -> None:
        backend.create_new_jobs([job(), job(OTHER), job("third")])
        assert backend.wait_for_jobs([OTHER, "fourth", QUEUE, OTHER], WAKE_TIMEOUT_S) == [OTHER, QUEUE]
        assert backend.wait_for_jobs(("third", QUEUE), 0) == ["third", QUEUE]

    def test_only_waiting_jobs_available_now_count(self, backend: SQLBackend, sidequest_clock: ManualClock) -> None:
        backend.poll_interval = POLL_S
        [_, running, done, later] = backend.create_new_jobs(
            [job(), job(), job(), job(available_at=sidequest_clock() + timedelta(hours=1))]
        )
        assert backend.claim_pending_job(QUEUE, 3)
        backend.update_job(running.id, state="running")
        backend.update_job(done.id, state="completed")
        assert backend.wait_for_jobs([QUEUE], 0.2) == []
        sidequest_clock.advance(hours=1)
        assert backend.wait_for_jobs([QUEUE], 0) == [QUEUE]
        assert [job.id for job in backend.claim_pending_job(QUEUE)] == [later.id]

    @pytest.mark.parametrize(
        ("queues", "timeout", "error", "named"),
        [
            ("wake-me", 1, TypeError, "queues"),
            ([], 1, ValueError, "queues"),
            ([QUEUE, 5], 1, TypeError, "queues[1]"),
            ([QUEUE, "a\x00b"], 1, ValueError, "queues[1]"),
            ({QUEUE}, 1, TypeError, "queues"),
            ([QUEUE], -1, ValueError, "timeout"),
            ([QUEUE], math.nan, ValueError, "timeout"),
            ([QUEUE], math.inf, ValueError, "timeout"),
            ([QUEUE], "1", TypeError, "timeout"),
            ([QUEUE], True, TypeError, "timeout"),
            ([QUEUE], None, TypeError, "timeout"),
        ],
    )
    def test_bad_arguments_are_refused_naming_them(
        self, backend: SQLBackend, queues: Any, timeout: Any, error: type[Exception], named: str
    ) -> None:
        with pytest.raises(error, match=named.replace("[", r"\[")):
            backend.wait_for_jobs(queues, timeout)

    @pytest.mark.parametrize("interval", [0, -1, math.nan, "1"])
    def test_a_bad_poll_interval_is_refused_when_a_wait_starts(self, backend: SQLBackend, interval: Any) -> None:
        backend.poll_interval = interval
        with pytest.raises((ValueError, TypeError), match="poll_interval"):
            backend.wait_for_jobs([QUEUE], 1)


class TestWoken:
    def test_a_job_another_backend_enqueues_wakes_the_wait_with_its_queue(
        self, backend: SQLBackend, other_backend: SQLBackend
    ) -> None:
        waiting = asleep(backend, [OTHER, QUEUE])
        other_backend.create_new_job(job())
        assert woken(waiting) == [QUEUE]

    def test_a_job_given_back_to_waiting_wakes_the_wait(self, backend: SQLBackend, other_backend: SQLBackend) -> None:
        created = backend.create_new_job(job())
        assert backend.claim_pending_job(QUEUE)
        waiting = asleep(backend, [QUEUE])
        other_backend.update_job(created.id, state="waiting", claimed_at=None, claimed_by=None)
        assert woken(waiting) == [QUEUE]

    def test_a_job_moved_to_the_queue_wakes_the_wait(self, backend: SQLBackend, other_backend: SQLBackend) -> None:
        created = backend.create_new_job(job(OTHER))
        waiting = asleep(backend, [QUEUE])
        other_backend.update_job(created.id, queue=QUEUE)
        assert woken(waiting) == [QUEUE]

    def test_every_wait_of_a_backend_wakes_and_one_claim_gets_the_job(
        self, backend: SQLBackend, other_backend: SQLBackend
    ) -> None:
        waits = [asleep(backend, [QUEUE]) for _ in range(5)]
        created = other_backend.create_new_job(job())
        assert [woken(waiting) for waiting in waits] == [[QUEUE]] * 5
        assert [claimed.id for claimed in backend.claim_pending_job(QUEUE, 5)] == [created.id]

    def test_a_future_job_wakes_the_wait_when_it_comes_due(
        self,
        backend: SQLBackend,
        sidequest_url: str,
        sidequest_engine_options: dict[str, Any],
        sidequest_backends: BackendFactory,
    ) -> None:
        # The system clock, real time, and no polling to stumble on the job: only its due time wakes the wait.
        with sidequest_backends(sidequest_url, **sidequest_engine_options) as on_time:
            on_time.poll_interval = 3600
            due = on_time.create_new_job(job(available_at=datetime.now(UTC) + timedelta(seconds=0.3)))
            assert on_time.wait_for_jobs([QUEUE], WAKE_TIMEOUT_S) == [QUEUE]
            assert [claimed.id for claimed in on_time.claim_pending_job(QUEUE)] == [due.id]


class TestNotWoken:
    def test_jobs_of_other_queues_or_not_yet_due_do_not_end_the_wait(
        self, backend: SQLBackend, other_backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        waiting = asleep(backend, [QUEUE], timeout=SETTLE_S + 0.5)
        other_backend.create_new_jobs([job(OTHER), job(available_at=sidequest_clock() + timedelta(days=1))])
        assert woken(waiting) == []
        assert backend.wait_for_jobs([OTHER], 0) == [OTHER]

    def test_a_clock_that_stands_still_keeps_a_job_ahead_of_it_asleep(
        self, backend: SQLBackend, sidequest_clock: ManualClock
    ) -> None:
        # The wait looks again when the clock's distance to the job has passed in real
        # time; by a clock that did not move, the job is still ahead, and the wait goes on.
        backend.poll_interval = POLL_S
        backend.create_new_job(job(available_at=sidequest_clock() + timedelta(seconds=0.1)))
        assert backend.wait_for_jobs([QUEUE], 0.4) == []
        sidequest_clock.advance(seconds=1)
        assert backend.wait_for_jobs([QUEUE], WAKE_TIMEOUT_S) == [QUEUE]


class TestOnAnEventLoop:
    """Run against the async backend of the suite's URL whatever the mode, each on a loop of its own."""

    def test_a_waiting_task_leaves_the_loop_to_the_others(
        self, sidequest_url: str, sidequest_clock: ManualClock, sidequest_engine_options: dict[str, Any]
    ) -> None:
        async def test(backend: AsyncSQLBackend) -> None:
            backend.poll_interval = 3600  # one sleep to the timeout, where nothing notifies
            waiting = asyncio.ensure_future(backend.wait_for_jobs([QUEUE], 0.5))
            ticks = 0
            while not waiting.done():
                await asyncio.sleep(0.01)
                ticks += 1
            assert await waiting == []
            # A wait that blocked the loop would let the ticker run once or twice, not dozens of times.
            assert ticks > 10, ticks

        run(sidequest_url, sidequest_clock, sidequest_engine_options, test)

    @pytest.mark.parametrize("after_s", [0, 0.001, 0.01, SETTLE_S])
    def test_a_cancelled_wait_leaves_the_pool_fit_and_the_other_waits_waiting(
        self,
        sidequest_url: str,
        sidequest_clock: ManualClock,
        sidequest_engine_options: dict[str, Any],
        after_s: float,
    ) -> None:
        async def test(backend: AsyncSQLBackend) -> None:
            backend.poll_interval = POLL_S
            waits = [asyncio.ensure_future(backend.wait_for_jobs([QUEUE], WAKE_TIMEOUT_S)) for _ in range(3)]
            await asyncio.sleep(after_s)
            waits[0].cancel()
            await asyncio.sleep(SETTLE_S)
            await backend.create_new_job(job())
            assert await asyncio.gather(*waits[1:]) == [[QUEUE], [QUEUE]]
            with pytest.raises(asyncio.CancelledError):
                await waits[0]
            assert not backend._backend.execution.wakeups._subscriptions
            await pool_is_fit(backend)
            assert await backend.wait_for_jobs([QUEUE], WAKE_TIMEOUT_S) == [QUEUE]

        run(sidequest_url, sidequest_clock, sidequest_engine_options, test)
