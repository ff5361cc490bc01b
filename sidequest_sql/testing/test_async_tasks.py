"""The async backend under tasks of one event loop: many claimers, and claims cancelled midway.

A claim hands jobs over: a task cancelled while it claims (``task.cancel()``,
``asyncio.timeout``) must leave every job either waiting as before or claimed
by a claim whose caller received it, never claimed by nobody, and must leave
the pool's connections fit for use. These run against the async backend of
the suite's URL whatever the mode, each on a loop of its own.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy.util.concurrency import await_

from sidequest_sql import AsyncSQLBackend, NewJobData, create_async_backend

from .clock import ManualClock

QUEUE = "async-crowd"
QUANTITIES = (1, 3, 10, 25)
_T = TypeVar("_T")


def new_jobs(count: int) -> list[NewJobData]:
    return [NewJobData(queue=QUEUE, script="jobs/work.py", job_class="Work", args=[n]) for n in range(count)]


def run(
    sidequest_url: str,
    sidequest_clock: ManualClock,
    options: dict[str, Any],
    test: Callable[[AsyncSQLBackend], Awaitable[_T]],
) -> _T:
    """``test(backend)`` on a loop of its own, with a migrated, empty async backend of the URL."""

    async def main() -> _T:
        async with create_async_backend(
            sidequest_url, clock=sidequest_clock, worker_name="async-worker", **options
        ) as backend:
            await backend.migrate()
            await backend.truncate()
            return await test(backend)

    return asyncio.run(main())


async def pool_is_fit(backend: AsyncSQLBackend) -> None:
    """No connection is left checked out but those kept for the next call, and they all work."""
    execution = backend._backend.execution
    assert backend.engine.sync_engine.pool.checkedout() == len(execution.idle), "a connection was left checked out"
    done = await asyncio.gather(*(backend.count_jobs() for _ in range(8)))
    assert len({counts.total for counts in done}) == 1
    [job] = await backend.create_new_jobs([NewJobData(queue="after", script="s.py", job_class="After")])
    [claimed] = await backend.claim_pending_job("after")
    assert claimed.id == job.id
    assert (await backend.update_job(job.id, state="completed")).state == "completed"


async def claimed_ids(backend: AsyncSQLBackend) -> dict[int, str | None]:
    """Each job of the queue: who holds its claim (None: waiting, and claimed_at is None too)."""
    jobs = await backend.list_jobs(queue=[QUEUE], limit=100_000)
    for job in jobs:
        assert (job.state == "waiting") == (job.claimed_by is None) == (job.claimed_at is None), job
        assert job.state in ("waiting", "claimed"), job
    return {job.id: job.claimed_by for job in jobs}


def test_fifty_tasks_on_one_loop_claim_each_job_exactly_once(
    sidequest_url: str, sidequest_clock: ManualClock, sidequest_engine_options: dict[str, Any]
) -> None:
    async def test(backend: AsyncSQLBackend) -> None:
        enqueued = [job.id for job in await backend.create_new_jobs(new_jobs(2000))]

        async def claimer(i: int) -> list[int]:
            got: list[int] = []
            while batch := await backend.claim_pending_job(QUEUE, QUANTITIES[i % len(QUANTITIES)]):
                got += [job.id for job in batch]
                await asyncio.sleep(0)
            return got

        results = await asyncio.gather(*(claimer(i) for i in range(50)))
        claims = Counter(job_id for ids in results for job_id in ids)
        twice = sorted(job_id for job_id, n in claims.items() if n > 1)
        assert not twice, f"{len(twice)} jobs claimed more than once, e.g. {twice[:10]}"
        assert set(claims) == set(enqueued), f"never claimed: {sorted(set(enqueued) - set(claims))[:10]}"
        assert sum(1 for ids in results if ids) > 1, "one task took every job: the tasks did not run at once"
        assert set((await claimed_ids(backend)).values()) == {"async-worker"}
        await pool_is_fit(backend)

    run(sidequest_url, sidequest_clock, sidequest_engine_options, test)


class TestACancelledClaim:
    """Cancelled at a chosen point: the claim is slowed down there by a pause of its own."""

    @staticmethod
    def slowed(backend: AsyncSQLBackend, *, before: bool) -> list[int]:
        """Make the backend's claims pause before their statement, or after it has claimed;
        returns a list that each claim that went ahead appends to."""
        claim = backend._backend.claim_pending_job
        went_ahead: list[int] = []

        def paused(*args: Any, **kwargs: Any) -> Any:
            if before:
                await_(asyncio.sleep(0.3))
            claimed = claim(*args, **kwargs)
            went_ahead.append(len(claimed))
            if not before:
                await_(asyncio.sleep(0.3))
            return claimed

        backend._backend.claim_pending_job = paused  # type: ignore[method-assign]
        return went_ahead

    @pytest.mark.parametrize("before", [True, False], ids=["before-the-statement", "after-the-statement"])
    def test_task_cancel_leaves_the_jobs_waiting(
        self, sidequest_url: str, sidequest_clock: ManualClock, sidequest_engine_options: dict[str, Any], before: bool
    ) -> None:
        async def test(backend: AsyncSQLBackend) -> None:
            enqueued = await backend.create_new_jobs(new_jobs(5))
            went_ahead = self.slowed(backend, before=before)
            claiming = asyncio.ensure_future(backend.claim_pending_job(QUEUE, 3))
            await asyncio.sleep(0.1)
            claiming.cancel()
            with pytest.raises(asyncio.CancelledError):
                await claiming
            # Cancelled before its statement, a claim stops there; after, it ends and gives its jobs back.
            assert went_ahead == ([] if before else [3])
            assert await backend.list_jobs(queue=[QUEUE]) == enqueued[::-1], "a cancelled claim kept its jobs"
            del backend._backend.claim_pending_job  # the pause goes
            await pool_is_fit(backend)
            assert [job.id for job in await backend.claim_pending_job(QUEUE, 5)] == [job.id for job in enqueued]

        run(sidequest_url, sidequest_clock, sidequest_engine_options, test)

    @pytest.mark.parametrize("before", [True, False], ids=["before-the-statement", "after-the-statement"])
    def test_a_time_out_leaves_the_jobs_waiting(
        self, sidequest_url: str, sidequest_clock: ManualClock, sidequest_engine_options: dict[str, Any], before: bool
    ) -> None:
        async def test(backend: AsyncSQLBackend) -> None:
            enqueued = await backend.create_new_jobs(new_jobs(5))
            went_ahead = self.slowed(backend, before=before)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await backend.claim_pending_job(QUEUE, 3)
            assert went_ahead == ([] if before else [3])
            assert await backend.list_jobs(queue=[QUEUE]) == enqueued[::-1], "a timed-out claim kept its jobs"
            del backend._backend.claim_pending_job
            await pool_is_fit(backend)

        run(sidequest_url, sidequest_clock, sidequest_engine_options, test)


def test_claims_timed_out_at_random_points_lose_no_job_and_claim_none_twice(
    sidequest_url: str, sidequest_clock: ManualClock, sidequest_engine_options: dict[str, Any]
) -> None:
    rng = random.Random(20261204)

    async def test(backend: AsyncSQLBackend) -> None:
        enqueued = {job.id for job in await backend.create_new_jobs(new_jobs(300))}
        # How long a claim takes here, so that the time-outs land inside claims.
        started = time.monotonic()
        for _ in range(10):
            await backend.claim_pending_job("nothing-here")
        latency = (time.monotonic() - started) / 10
        timeouts = 0

        async def claimer(i: int) -> list[int]:
            nonlocal timeouts
            got: list[int] = []
            while True:
                # Half the claims may run to their end: under contention most would time out.
                limit = rng.uniform(0, 3 * latency) if rng.random() < 0.5 else None
                try:
                    async with asyncio.timeout(limit):
                        batch = await backend.claim_pending_job(QUEUE, QUANTITIES[i % len(QUANTITIES)])
                except TimeoutError:
                    timeouts += 1
                    continue
                if not batch:
                    return got
                got += [job.id for job in batch]

        results = await asyncio.gather(*(claimer(i) for i in range(12)))
        # Claims that came back empty while another was giving jobs back: pick up what is left.
        while batch := await backend.claim_pending_job(QUEUE, 100):
            results.append([job.id for job in batch])
        claims = Counter(job_id for ids in results for job_id in ids)
        assert timeouts > 0, "no claim timed out: the test proved nothing"
        assert [job_id for job_id, n in claims.items() if n > 1] == [], "a job was received twice"
        holders = await claimed_ids(backend)
        unreceived = sorted(job_id for job_id, holder in holders.items() if holder and job_id not in claims)
        assert unreceived == [], f"jobs claimed that no task received: {unreceived[:10]}"
        assert set(claims) == enqueued
        await pool_is_fit(backend)

    run(sidequest_url, sidequest_clock, sidequest_engine_options, test)
