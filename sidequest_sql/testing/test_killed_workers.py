"""Workers killed with SIGKILL: their claims stay put, turn stale in time, and block nobody.

A worker here is a process started with ``spawn`` that builds its own backend
from the URL, as a worker on another machine would. SIGKILL gives it no
chance to roll back, close its connections or let go of a lock on a file: the
database must still serve everyone else at once, keep what the worker
committed, and report exactly its claimed jobs from ``stale_jobs`` once they
are older than ``max_claimed_ms``. The process workers are module-level
functions so that ``spawn`` can import them.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest

from sidequest_sql import JobData, NewJobData
from sidequest_sql.base import SQLBackend

from .backends import BackendFactory
from .clock import ManualClock
from .fixtures import backend  # noqa: F401  (the suite's fixture)
from .test_concurrency import require_shared_database

QUEUE = "doomed"
KILLED = "killed-worker"
LIVE = "contract-worker"
"""The suite's backend fixture claims as this worker, alive throughout."""
STARTUP_S = 60
"""How long a spawned worker may take to start (import, connect) and report."""
CALL_S = 10
"""How long one operation may take after the kill before the test fails."""
LOOPING_WORKERS = 2
MAX_CLAIMED_MS = 60_000
MAX_STALE_MS = 600_000
_T = TypeVar("_T")


def new_jobs(queue: str, count: int) -> list[NewJobData]:
    return [NewJobData(queue=queue, script="jobs/work.js", job_class="Work", args=[n]) for n in range(count)]


def claim_then_wait(
    make: BackendFactory,
    url: str,
    options: dict[str, Any],
    now: datetime,
    quantities: tuple[int, ...],
    results: Any,
    proceed: Any,
) -> None:
    """Claim, report the ids, then wait to start them: the test kills the process meanwhile."""
    try:
        with make(url, clock=ManualClock(now), worker_name=KILLED, **options) as backend:
            ids = [job.id for quantity in quantities for job in backend.claim_pending_job(QUEUE, quantity)]
            results.put((ids, None))
            if proceed.wait(STARTUP_S):  # never set
                for job_id in ids:
                    backend.update_job(job_id, state="running", attempted_at=now)
    except BaseException:
        results.put(([], traceback.format_exc()))


def claim_in_a_loop(
    make: BackendFactory, url: str, options: dict[str, Any], now: datetime, name: str, claims: Any, errors: Any
) -> None:
    """Claim one job at a time as fast as possible, counting the claims that returned one."""
    try:
        with make(url, clock=ManualClock(now), worker_name=name, **options) as backend:
            deadline = time.monotonic() + STARTUP_S
            while time.monotonic() < deadline:
                if backend.claim_pending_job(QUEUE, 1):
                    claims.value += 1
                else:
                    backend.create_new_jobs(new_jobs(QUEUE, 10))
    except BaseException:
        errors.put(traceback.format_exc())


def within(seconds: float, call: Callable[[], _T], what: str) -> _T:
    """``call()``'s result, or a failure if it has not returned in ``seconds``."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(call).result(timeout=seconds)
    except FutureTimeout:
        pytest.fail(f"{what} did not return within {seconds} s after a worker was killed")
    finally:
        pool.shutdown(wait=False)


def use_after_kill(backend: SQLBackend) -> None:
    """Enqueue, claim and complete on a queue of its own."""
    job = backend.create_new_job(NewJobData(queue="after-kill", script="jobs/work.js", job_class="Work"))
    [claimed] = backend.claim_pending_job("after-kill")
    assert claimed.id == job.id
    done = backend.update_job(job.id, state="completed", completed_at=backend.clock())
    assert done.state == "completed"


def every_job(backend: SQLBackend, queue: str) -> dict[int, JobData]:
    return {job.id: job for job in backend.list_jobs(queue=[queue], limit=10_000)}


def reap(worker: Any) -> None:
    """Wait for a worker sent SIGKILL (``Process.kill``) to be gone."""
    worker.join(STARTUP_S)
    assert worker.exitcode is not None and worker.exitcode < 0, f"the worker was not killed: {worker.exitcode}"


def test_a_killed_workers_claims_turn_stale_and_nothing_else_moves(
    backend: SQLBackend,
    sidequest_url: str,
    sidequest_clock: ManualClock,
    sidequest_engine_options: dict[str, Any],
    sidequest_backends: BackendFactory,
) -> None:
    require_shared_database(backend, sidequest_url, sidequest_engine_options)
    start = sidequest_clock()
    enqueued = [job.id for job in backend.create_new_jobs(new_jobs(QUEUE, 20))]
    context = multiprocessing.get_context("spawn")
    results, proceed = context.Queue(), context.Event()
    worker = context.Process(
        target=claim_then_wait,
        args=(sidequest_backends, sidequest_url, sidequest_engine_options, start, (4, 2), results, proceed),
    )
    worker.start()
    try:
        killed_ids, error = results.get(timeout=STARTUP_S)
        assert error is None, f"the worker failed:\n{error}"
        assert len(killed_ids) == len(set(killed_ids)) == 6 and set(killed_ids) <= set(enqueued)

        # Half a claim timeout later a live worker claims, runs and completes others.
        sidequest_clock.advance(milliseconds=MAX_CLAIMED_MS // 2)
        live = backend.claim_pending_job(QUEUE, 5)
        assert len(live) == 5 and not {job.id for job in live} & set(killed_ids)
        for job in live[:2]:
            backend.update_job(job.id, state="running", attempted_at=sidequest_clock())
        for job in live[3:]:
            now = sidequest_clock()
            backend.update_job(job.id, state="completed", attempted_at=now, completed_at=now)
        before = every_job(backend, QUEUE)
        assert [job_id for job_id, job in before.items() if job.state == "waiting"] != []
        assert all(before[job_id].claimed_by == KILLED for job_id in killed_ids)

        worker.kill()
        reap(worker)
    finally:
        if worker.is_alive():
            worker.kill()
            worker.join(STARTUP_S)

    within(CALL_S, lambda: use_after_kill(backend), "enqueueing, claiming and completing")
    thresholds = {"max_stale_ms": MAX_STALE_MS, "max_claimed_ms": MAX_CLAIMED_MS}
    assert backend.stale_jobs(**thresholds) == []
    sidequest_clock.set(start + timedelta(milliseconds=MAX_CLAIMED_MS))
    assert backend.stale_jobs(**thresholds) == [], "claimed exactly max_claimed_ms ago is not yet stale"
    sidequest_clock.advance(milliseconds=1)
    stale = backend.stale_jobs(**thresholds)
    assert [job.id for job in stale] == sorted(killed_ids)
    assert stale == [before[job_id] for job_id in sorted(killed_ids)]
    assert all((job.state, job.claimed_by, job.claimed_at) == ("claimed", KILLED, start) for job in stale)
    assert every_job(backend, QUEUE) == before


def test_the_database_serves_others_right_after_claimers_are_killed_mid_loop(
    backend: SQLBackend,
    sidequest_url: str,
    sidequest_engine_options: dict[str, Any],
    sidequest_backends: BackendFactory,
) -> None:
    require_shared_database(backend, sidequest_url, sidequest_engine_options)
    backend.create_new_jobs(new_jobs(QUEUE, 2000))
    context = multiprocessing.get_context("spawn")
    names = [f"{KILLED}-{i}" for i in range(LOOPING_WORKERS)]
    claims, errors = [context.RawValue("q", 0) for _ in names], context.Queue()
    workers = [
        context.Process(
            target=claim_in_a_loop,
            args=(sidequest_backends, sidequest_url, sidequest_engine_options, backend.clock(), name, count, errors),
        )
        for name, count in zip(names, claims)
    ]
    for worker in workers:
        worker.start()
    try:
        # With several of them at it, one is most likely inside a claim's transaction.
        target = random.randint(20, 100)
        deadline = time.monotonic() + STARTUP_S
        while (
            min(count.value for count in claims) < target
            and all(worker.is_alive() for worker in workers)
            and time.monotonic() < deadline
        ):
            time.sleep(0.002)
        time.sleep(random.uniform(0, 0.01))
        for worker in workers:
            assert worker.is_alive(), "a claiming worker stopped by itself:\n" + errors.get(timeout=CALL_S)
        assert min(count.value for count in claims) >= target, f"too few claims in {STARTUP_S} s"
        for worker in workers:
            worker.kill()
        for worker in workers:
            reap(worker)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join(STARTUP_S)
    returned = {name: count.value for name, count in zip(names, claims)}

    [mine] = within(CALL_S, lambda: backend.claim_pending_job(QUEUE), "a claim")
    within(CALL_S, lambda: use_after_kill(backend), "enqueueing, claiming and completing")
    jobs = every_job(backend, QUEUE)
    assert jobs[mine.id].claimed_by == LIVE
    for name in names:
        by_killed = [job for job in jobs.values() if job.claimed_by == name]
        # The claim in flight when the kill landed either committed or left no trace.
        assert returned[name] <= len(by_killed) <= returned[name] + 1, (name, returned[name], len(by_killed))
        assert all(job.state == "claimed" for job in by_killed)
    others = {job.state for job in jobs.values() if job.claimed_by is None}
    assert others == {"waiting"}, others
