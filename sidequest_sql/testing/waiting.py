"""Calls the suite must not wait for: run in a thread, given up on after a bound;
conditions waited for, within a bound; and the work the per-database
lock-wait tests do around a transaction elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import pytest

from ..records import JobData, NewJobData

if TYPE_CHECKING:
    from ..base import SQLBackend

_T = TypeVar("_T")


def started(call: Callable[[], _T]) -> Future[_T]:
    """``call()`` running in a thread of its own, so that the caller can give up waiting for it."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(call)
    finally:
        pool.shutdown(wait=False)


def promptly(future: Future[_T], what: str, *, seconds: float) -> _T:
    """The result of ``future``; the test fails if it takes more than ``seconds``."""
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        pytest.fail(f"{what} waited for a transaction elsewhere ({seconds} s and counting)")


def until(condition: Callable[[], object], what: str, *, seconds: float = 20.0) -> None:
    """Until ``condition()`` holds; the test fails, saying ``what`` never came, after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} after {seconds} s")
        time.sleep(0.01)


def running_and_waiting(backend: SQLBackend) -> tuple[JobData, list[int]]:
    """A running job of queue ``default`` and six waiting ones (their ids, oldest first)."""
    running = backend.create_new_job(NewJobData("default", "s.js", "S", args=["running"]))
    [_] = backend.claim_pending_job("default")
    backend.update_job(running.id, state="running", attempted_at=datetime.now(UTC))
    new_jobs = [NewJobData("default", "s.js", "S", args=[i]) for i in range(6)]
    return running, [job.id for job in backend.create_new_jobs(new_jobs)]


def work_around_held_rows(backend: SQLBackend, running: JobData, waiting: list[int]) -> None:
    """Claim, enqueue, complete and count while transactions elsewhere hold
    ``running`` (from ``running_and_waiting``) and the oldest waiting job."""
    claimed = backend.claim_pending_job("default", 3)
    assert [job.id for job in claimed] == waiting[1:4]
    new = backend.create_new_job(NewJobData("default", "s.js", "S", args=["new"]))
    backend.create_new_jobs([NewJobData("other", "s.js", "S"), NewJobData("other", "s.js", "S")])
    for job in claimed:
        backend.update_job(job.id, state="completed", completed_at=datetime.now(UTC))
    rest = backend.claim_pending_job("default", 10)
    assert [job.id for job in rest] == [*waiting[4:], new.id]
    assert backend.count_jobs().completed == 3
    assert backend.get_job(running.id).result is None  # type: ignore[union-attr]
