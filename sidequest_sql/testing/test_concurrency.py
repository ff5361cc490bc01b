"""Many claimers at once: every job is claimed exactly once, and none is left behind.

Claimers are threads (each with its own backend object, and all sharing one)
and processes started with ``spawn`` (each building its own backend from the
URL), as workers on several machines would be. They start together at a
barrier and claim until the queue is empty; then every claimed id is counted.
Producers and workers that complete what they claim also run together, in
threads of one backend and in processes of their own, as fast as they can.
The process workers are module-level functions so that ``spawn`` can import them.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest

from sidequest_sql import NewJobData
from sidequest_sql.base import SQLBackend

from .backends import BackendFactory
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


def work_in_process(
    make: BackendFactory,
    url: str,
    options: dict[str, Any],
    now: datetime,
    worker: str,
    work: Callable[[SQLBackend], list[int]],
    start: Any,
    results: Any,
) -> None:
    """``work(backend)`` in a process of its own (a claimer, say): its own backend
    from the URL, the test's "now"; it reports the ids ``work`` returns."""
    try:
        with make(url, clock=ManualClock(now), worker_name=worker, **options) as backend:
            backend.get_queue(QUEUE)  # connect before the start, not after
            start.wait(WAIT_S)
            results.put((worker, work(backend), None))
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


def separate_backends_share(backend: SQLBackend, url: str, options: dict[str, Any] | None = None) -> bool:
    """Whether a second backend built from ``url`` sees the first one's data (not so in memory)."""
    from sidequest_sql import create_backend

    [probe] = backend.create_new_jobs([NewJobData(queue="probe", script="probe.js", job_class="Probe")])
    try:
        with create_backend(url, clock=backend.clock, **(options or {})) as other:
            seen = other.get_job(probe.id)
    except Exception:
        seen = None
    finally:
        backend.truncate()
    return seen is not None and seen.id == probe.id


def require_shared_database(backend: SQLBackend, url: str, options: dict[str, Any] | None = None) -> None:
    # A helper, not a fixture: ``suite`` re-exports only the tests themselves.
    if not separate_backends_share(backend, url, options):
        pytest.skip("separate backends on this URL are separate databases")


def run_threads(count: int, work: Callable[[int, threading.Barrier], list[int]]) -> list[list[int]]:
    start = threading.Barrier(count)
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(work, i, start) for i in range(count)]
        return [future.result(timeout=WAIT_S) for future in futures]


def reports_of(workers: list[Any], results: Any, what: str) -> list[tuple[str, list[int], str | None]]:
    """Start the ``workers`` (processes that each put one ``(name, ids, error)`` on
    ``results``), wait for them, and return their reports; none may have failed."""
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
    assert not failures, f"{what} failed:\n" + "\n".join(failures)
    return reports


def test_threads_with_their_own_backends_claim_each_job_once(
    backend: SQLBackend,
    sidequest_url: str,
    sidequest_clock: ManualClock,
    sidequest_engine_options: dict[str, Any],
    sidequest_backends: BackendFactory,
) -> None:
    require_shared_database(backend, sidequest_url, sidequest_engine_options)
    enqueued = enqueue(backend, JOBS)

    def claimer(i: int, start: threading.Barrier) -> list[int]:
        options = sidequest_engine_options
        with sidequest_backends(sidequest_url, clock=sidequest_clock, worker_name=f"thread-{i}", **options) as own:
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


def test_processes_claim_each_job_once(
    backend: SQLBackend,
    sidequest_url: str,
    sidequest_clock: ManualClock,
    sidequest_engine_options: dict[str, Any],
    sidequest_backends: BackendFactory,
) -> None:
    require_shared_database(backend, sidequest_url, sidequest_engine_options)
    enqueued = enqueue(backend, JOBS)
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(PROCESSES), context.Queue()
    workers = [
        context.Process(
            target=work_in_process,
            args=(
                sidequest_backends,
                sidequest_url,
                sidequest_engine_options,
                sidequest_clock(),
                f"process-{i}",
                functools.partial(claim_until_empty, quantity=QUANTITIES[i % len(QUANTITIES)]),
                start,
                results,
            ),
        )
        for i in range(PROCESSES)
    ]
    reports = reports_of(workers, results, "a claimer process")
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


def produce_in_process(
    make: BackendFactory,
    url: str,
    options: dict[str, Any],
    now: datetime,
    worker: str,
    first: int,
    count: int,
    start: Any,
    results: Any,
) -> None:
    """A producer in its own process: single jobs and small batches, as fast as it can."""
    try:
        with make(url, clock=ManualClock(now), worker_name=worker, **options) as backend:
            backend.get_queue(QUEUE)
            start.wait(WAIT_S)
            ids: list[int] = []
            for size in itertools.cycle((1, 3, 1, 8)):
                size = min(size, count - len(ids))
                if size == 0:
                    break
                n = first + len(ids)
                if size == 1:
                    ids.append(backend.create_new_job(NewJobData(QUEUE, "jobs/count.js", "Count", args=[n])).id)
                else:
                    ids.extend(enqueue(backend, size, first=n, batch=size))
            results.put((worker, ids, None))
    except BaseException:
        results.put((worker, [], traceback.format_exc()))


def complete_in_process(
    make: BackendFactory,
    url: str,
    options: dict[str, Any],
    now: datetime,
    worker: str,
    quantity: int,
    start: Any,
    done: Any,
    results: Any,
) -> None:
    """A worker in its own process: claims and completes until ``done`` is set and nothing is left."""
    try:
        with make(url, clock=ManualClock(now), worker_name=worker, **options) as backend:
            backend.get_queue(QUEUE)
            start.wait(WAIT_S)
            claimed: list[int] = []
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                finished = done.is_set()  # read before claiming: an empty claim after it means drained
                batch = backend.claim_pending_job(QUEUE, quantity)
                for job in batch:
                    backend.update_job(job.id, state="completed", attempted_at=now, completed_at=now)
                claimed.extend(job.id for job in batch)
                if not batch and finished:
                    break
            else:
                raise TimeoutError(f"{worker} still had jobs to claim after {WAIT_S} s")
            results.put((worker, claimed, None))
    except BaseException:
        results.put((worker, [], traceback.format_exc()))


def test_processes_enqueueing_and_completing_at_full_speed_lose_nothing_and_raise_nothing(
    backend: SQLBackend,
    sidequest_url: str,
    sidequest_clock: ManualClock,
    sidequest_engine_options: dict[str, Any],
    sidequest_backends: BackendFactory,
) -> None:
    """Separate processes on one database, each with its own backend (for SQLite: one file, where
    every writer waits its turn under the busy timeout and "database is locked" must not escape)."""
    require_shared_database(backend, sidequest_url, sidequest_engine_options)
    producers, completers, per_producer = 3, 3, 150
    context = multiprocessing.get_context("spawn")
    start, done = context.Barrier(producers + completers), context.Event()
    produced, completed = context.Queue(), context.Queue()
    common = (sidequest_backends, sidequest_url, sidequest_engine_options, sidequest_clock())
    workers = [
        context.Process(
            target=produce_in_process, args=(*common, f"producer-{i}", i * per_producer, per_producer, start, produced)
        )
        for i in range(producers)
    ] + [
        context.Process(
            target=complete_in_process,
            args=(*common, f"completer-{i}", QUANTITIES[i % len(QUANTITIES)], start, done, completed),
        )
        for i in range(completers)
    ]
    for worker in workers:
        worker.start()
    try:
        try:
            made = [produced.get(timeout=WAIT_S) for _ in range(producers)]
        finally:
            done.set()
        finished = [completed.get(timeout=WAIT_S) for _ in range(completers)]
    finally:
        for worker in workers:
            worker.join(WAIT_S)
            if worker.is_alive():
                worker.kill()
    failures = [error for _, _, error in made + finished if error]
    assert not failures, "a process failed:\n" + "\n".join(failures)

    enqueued = [job_id for _, ids, _ in made for job_id in ids]
    assert len(enqueued) == len(set(enqueued)) == producers * per_producer
    claims = Counter(job_id for _, ids, _ in finished for job_id in ids)
    twice = sorted(job_id for job_id, n in claims.items() if n > 1)
    assert not twice, f"{len(twice)} jobs claimed more than once, e.g. {twice[:10]}"
    assert set(claims) == set(enqueued), f"never claimed: {sorted(set(enqueued) - set(claims))[:10]}"
    rows = {job.id: job for job in backend.list_jobs(queue=[QUEUE], limit=len(enqueued) + 1)}
    assert set(rows) == set(enqueued)
    for worker, ids, _ in finished:
        wrong = [job_id for job_id in ids if (rows[job_id].state, rows[job_id].claimed_by) != ("completed", worker)]
        assert not wrong, f"jobs {wrong[:10]} completed by {worker} but stored otherwise: {rows[wrong[0]]!r}"
    assert backend.count_jobs().completed == len(enqueued)
