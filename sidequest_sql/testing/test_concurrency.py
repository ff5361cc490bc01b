"""Many claimers at once: every job is claimed exactly once, and none is left behind.

Claimers are threads (each with its own backend object, and all sharing one)
and processes started with ``spawn`` (each building its own backend from the
URL), as workers on several machines would be. They start together at a
barrier and claim until the queue is empty; then every claimed id is counted.
The process workers are module-level functions so that ``spawn`` can import them.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest

from sidequest_sql import NewJobData, create_backend
from sidequest_sql.base import SQLBackend

from .clock import ManualClock
from .fixtures import backend  # noqa: F401  (the suite's fixture)

JOBS = 3000
THREADS = 8
PROCESSES = 4
QUEUE = "crowded"
QUANTITIES = (1, 4, 10, 25)
"""How many jobs each claimer asks for at a time, cycled over the claimers."""
WAIT_S = 120
"""How long a barrier or a result may keep the others waiting before the test fails."""


def enqueue(backend: SQLBackend, count: int, *, first: int = 0, batch: int = 500) -> list[int]:
    ids: list[int] = []
    for start in range(first, first + count, batch):
        jobs = [
            NewJobData(queue=QUEUE, script="jobs/count.js", job_class="Count", args=[n])
            for n in range(start, min(first + count, start + batch))
        ]
        ids.extend(job.id for job in backend.create_new_jobs(jobs))
    return ids


def claim_until_empty(backend: SQLBackend, quantity: int) -> list[int]:
    claimed: list[int] = []
    while batch := backend.claim_pending_job(QUEUE, quantity):
        assert len(batch) <= quantity
        claimed.extend(job.id for job in batch)
    return claimed


def claim_in_process(url: str, now: datetime, worker: str, quantity: int, start: Any, results: Any) -> None:
    """A claimer in its own process: its own backend from the URL, the test's "now"."""
    try:
        with create_backend(url, clock=ManualClock(now), worker_name=worker) as backend:
            backend.get_queue(QUEUE)  # connect before the start, not after
            start.wait(WAIT_S)
            results.put((worker, claim_until_empty(backend, quantity), None))
    except BaseException:
        results.put((worker, [], traceback.format_exc()))


def check_claimed_once(backend: SQLBackend, enqueued: list[int], claimed_by: dict[str, list[int]]) -> None:
    """Each job claimed by exactly one claimer, the one its row names; nothing waits."""
    claims = Counter(job_id for ids in claimed_by.values() for job_id in ids)
    twice = sorted(job_id for job_id, n in claims.items() if n > 1)
    assert not twice, f"{len(twice)} jobs claimed more than once, e.g. {twice[:10]}"
    missing = sorted(set(enqueued) - set(claims))
    assert not missing, f"{len(missing)} jobs never claimed, e.g. {missing[:10]}"
    assert set(claims) == set(enqueued)
    rows = {job.id: job for job in backend.list_jobs(queue=[QUEUE], limit=len(enqueued) + 1)}
    assert set(rows) == set(enqueued)
    for worker, ids in claimed_by.items():
        wrong = [job_id for job_id in ids if (rows[job_id].state, rows[job_id].claimed_by) != ("claimed", worker)]
        assert not wrong, f"jobs {wrong[:10]} returned to {worker} but stored otherwise: {rows[wrong[0]]!r}"
    counts = backend.count_jobs()
    assert (counts.total, counts.claimed, counts.waiting) == (len(enqueued), len(enqueued), 0), counts
    assert backend.claim_pending_job(QUEUE, 100) == []


def separate_backends_share(backend: SQLBackend, url: str) -> bool:
    """Whether a second backend built from ``url`` sees the first one's data (not so in memory)."""
    [probe] = backend.create_new_jobs([NewJobData(queue="probe", script="probe.js", job_class="Probe")])
    try:
        with create_backend(url, clock=backend.clock) as other:
            seen = other.get_job(probe.id)
    except Exception:
        seen = None
    finally:
        backend.truncate()
    return seen is not None and seen.id == probe.id


def require_shared_database(backend: SQLBackend, url: str) -> None:
    # A helper, not a fixture: ``suite`` re-exports only the tests themselves.
    if not separate_backends_share(backend, url):
        pytest.skip("separate backends on this URL are separate databases")


def run_threads(count: int, work: Callable[[int, threading.Barrier], list[int]]) -> list[list[int]]:
    start = threading.Barrier(count)
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(work, i, start) for i in range(count)]
        return [future.result(timeout=WAIT_S) for future in futures]


def test_threads_with_their_own_backends_claim_each_job_once(
    backend: SQLBackend, sidequest_url: str, sidequest_clock: ManualClock
) -> None:
    require_shared_database(backend, sidequest_url)
    enqueued = enqueue(backend, JOBS)

    def claimer(i: int, start: threading.Barrier) -> list[int]:
        with create_backend(sidequest_url, clock=sidequest_clock, worker_name=f"thread-{i}") as own:
            own.get_queue(QUEUE)
            start.wait(WAIT_S)
            return claim_until_empty(own, QUANTITIES[i % len(QUANTITIES)])

    claimed = run_threads(THREADS, claimer)
    check_claimed_once(backend, enqueued, {f"thread-{i}": ids for i, ids in enumerate(claimed)})


def test_threads_sharing_one_backend_claim_each_job_once(backend: SQLBackend) -> None:
    enqueued = enqueue(backend, JOBS)

    def claimer(i: int, start: threading.Barrier) -> list[int]:
        start.wait(WAIT_S)
        return claim_until_empty(backend, QUANTITIES[i % len(QUANTITIES)])

    claimed = run_threads(THREADS, claimer)
    check_claimed_once(backend, enqueued, {backend.worker_name: [i for ids in claimed for i in ids]})


def test_processes_claim_each_job_once(backend: SQLBackend, sidequest_url: str, sidequest_clock: ManualClock) -> None:
    require_shared_database(backend, sidequest_url)
    enqueued = enqueue(backend, JOBS)
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(PROCESSES), context.Queue()
    workers = [
        context.Process(
            target=claim_in_process,
            args=(sidequest_url, sidequest_clock(), f"process-{i}", QUANTITIES[i % len(QUANTITIES)], start, results),
        )
        for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        # Read every result before joining: a process cannot exit while its queue is full.
        reports = [results.get(timeout=WAIT_S) for _ in workers]
    finally:
        for worker in workers:
            worker.join(WAIT_S)
            if worker.is_alive():
                worker.kill()
    failures = [error for _, _, error in reports if error]
    assert not failures, "a claimer process failed:\n" + "\n".join(failures)
    check_claimed_once(backend, enqueued, {worker: ids for worker, ids, _ in reports})


def test_claiming_while_enqueueing_claims_each_job_once(backend: SQLBackend) -> None:
    producers, claimers, per_producer = 2, 4, JOBS // 2
    produced: list[list[int]] = [[] for _ in range(producers)]
    claimed: list[list[int]] = [[] for _ in range(claimers)]
    producing = threading.Barrier(producers + claimers)
    done = threading.Event()

    def produce(i: int) -> None:
        producing.wait(WAIT_S)
        first, sizes = i * per_producer, (1, 7, 25, 60)
        made = 0
        for round_ in itertools.count():
            if made == per_producer:
                return
            size = min(sizes[round_ % len(sizes)], per_producer - made)
            if size == 1:
                new = [backend.create_new_job(NewJobData(QUEUE, "jobs/count.js", "Count", args=[first + made])).id]
            else:
                new = enqueue(backend, size, first=first + made, batch=size)
            produced[i].extend(new)
            made += size

    def claim(i: int) -> None:
        producing.wait(WAIT_S)
        quantity = QUANTITIES[i % len(QUANTITIES)]
        while True:
            finished = done.is_set()  # read before claiming: an empty claim after it means drained
            batch = backend.claim_pending_job(QUEUE, quantity)
            claimed[i].extend(job.id for job in batch)
            if not batch and finished:
                return

    with ThreadPoolExecutor(producers + claimers) as pool:
        producing_futures = [pool.submit(produce, i) for i in range(producers)]
        claiming_futures = [pool.submit(claim, i) for i in range(claimers)]
        try:
            for future in producing_futures:
                future.result(timeout=WAIT_S)
        finally:
            done.set()
        for future in claiming_futures:
            future.result(timeout=WAIT_S)

    enqueued = [job_id for ids in produced for job_id in ids]
    assert len(enqueued) == len(set(enqueued)) == producers * per_producer
    check_claimed_once(backend, enqueued, {backend.worker_name: [i for ids in claimed for i in ids]})
