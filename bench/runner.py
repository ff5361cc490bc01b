"""Run a workload on W threads or P processes and time it.

Clients connect and warm up (a few enqueues, claims and completes on their own
queue, so statement caches and prepared statements are in place) before the
clock starts; every worker then starts together at a barrier. Elapsed time
runs from the barrier to the last worker's end. Workers record the ids they
got and the latency of each call; the main thread draws the progress bar.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import fill
from .progress import Progress

WARM_QUEUE = "bench-warm"
WARM_CALLS = 6


@dataclass
class Outcome:
    """What one worker did: the ids it enqueued or completed, and each call's latency in seconds."""

    ids: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    end: float = 0.0
    cpu: float = 0.0


@dataclass
class Run:
    """A whole workload: elapsed seconds, every id, every latency, client CPU seconds."""

    elapsed: float
    ids: list[int]
    latencies: list[float]
    cpu: float


# -- tasks: what one worker does with its client ------------------------------------


def enqueue_task(client: Any, tick: Callable[[int], None], *, queue: str, start: int, count: int) -> Outcome:
    out = Outcome()
    clock = time.perf_counter
    for i in range(start, start + count):
        t = clock()
        out.ids.append(client.enqueue(queue, i).id)
        out.latencies.append(clock() - t)
        tick(1)
    return out


def batch_task(
    client: Any, tick: Callable[[int], None], *, queue: str, start: int, count: int, batch: int
) -> Outcome:
    out = Outcome()
    clock = time.perf_counter
    for first in range(start, start + count, batch):
        n = min(batch, start + count - first)
        t = clock()
        out.ids.extend(job.id for job in client.enqueue_batch(queue, first, n))
        out.latencies.append(clock() - t)
        tick(n)
    return out


def claim_task(
    client: Any,
    tick: Callable[[int], None],
    *,
    queue: str,
    quantity: int,
    max_claims: int | None = None,
) -> Outcome:
    """Claim and complete until the queue is empty, or for ``max_claims`` claims."""
    out = Outcome()
    clock = time.perf_counter
    claims = 0
    while max_claims is None or claims < max_claims:
        t = clock()
        jobs = client.claim(queue, quantity)
        out.latencies.append(clock() - t)
        claims += 1
        if not jobs:
            if max_claims is None:
                break
            continue
        for job in jobs:
            out.ids.append(client.complete(job.id).id)
        tick(len(jobs))
    return out


TASKS: dict[str, Callable[..., Outcome]] = {
    "enqueue": enqueue_task,
    "batch": batch_task,
    "claim": claim_task,
}


def warm(client: Any) -> None:
    for i in range(WARM_CALLS):
        client.enqueue(WARM_QUEUE, i)
    for _ in range(WARM_CALLS):
        for job in client.claim(WARM_QUEUE, 1):
            client.complete(job.id)


# -- threads ----------------------------------------------------------------------------


def run_threads(
    make_client: Callable[[], Any],
    task: str,
    kwargs_per_worker: list[dict[str, Any]],
    *,
    backend: Any,
    label: str,
    total: int | None,
    progress: Progress,
) -> Run:
    workers = len(kwargs_per_worker)
    clients = [make_client() for _ in range(workers)]
    try:
        counts = [0] * workers
        outcomes: list[Outcome | BaseException | None] = [None] * workers
        # Every worker warms up at once, so that a backend shared by the
        # threads holds a pooled connection per thread before the start, as
        # each raw client holds its own.
        warmed = threading.Barrier(workers + 1)
        barrier = threading.Barrier(workers + 1)
        fn = TASKS[task]

        def work(i: int) -> None:
            def tick(n: int) -> None:
                counts[i] += n

            try:
                warm(clients[i])
            except BaseException as exc:  # reported by the main thread
                outcomes[i] = exc
            warmed.wait()
            barrier.wait()
            if outcomes[i] is not None:
                return
            try:
                outcomes[i] = fn(clients[i], tick, **kwargs_per_worker[i])
                outcomes[i].end = time.perf_counter()  # type: ignore[union-attr]
            except BaseException as exc:  # reported by the main thread
                outcomes[i] = exc

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
        for thread in threads:
            thread.start()
        warmed.wait()
        fill.delete_queue(backend, WARM_QUEUE)
        cpu0 = time.process_time()
        barrier.wait()
        t0 = time.perf_counter()
        with progress.task(label, total) as bar:
            while any(thread.is_alive() for thread in threads):
                bar.update(sum(counts))
                for thread in threads:
                    thread.join(0.1)
            bar.update(sum(counts))
        cpu = time.process_time() - cpu0
    finally:
        for client in clients:
            client.close()
    return gather(outcomes, t0, cpu)


# -- processes -----------------------------------------------------------------------


def _child(
    url: str,
    kind: str,
    task: str,
    kwargs: dict[str, Any],
    slot: int,
    counts: Any,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    import sidequest_sql as sq

    from .clients import OurClient, RawClient

    try:
        backend = sq.create_backend(url)
        backend.get_queue(WARM_QUEUE)  # connect before the clock starts
        client = OurClient(backend) if kind == "ours" else RawClient(backend)
        warm(client)
    except BaseException as exc:
        ready.abort()
        results.put((slot, repr(exc)))
        raise

    def tick(n: int) -> None:
        counts[slot] += n

    ready.wait()
    go.wait()
    cpu0 = time.process_time()
    try:
        out = TASKS[task](client, tick, **kwargs)
    except BaseException as exc:
        results.put((slot, repr(exc)))
        raise
    out.end = time.perf_counter()
    out.cpu = time.process_time() - cpu0
    results.put((slot, out))
    client.close()
    backend.close()


def run_processes(
    url: str,
    kind: str,
    task: str,
    kwargs_per_worker: list[dict[str, Any]],
    *,
    backend: Any,
    label: str,
    total: int | None,
    progress: Progress,
) -> Run:
    # perf_counter is CLOCK_MONOTONIC on Linux: one clock for every process.
    ctx = multiprocessing.get_context("spawn")
    workers = len(kwargs_per_worker)
    counts = ctx.Array("q", workers, lock=False)
    ready = ctx.Barrier(workers + 1)
    go = ctx.Barrier(workers + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_child,
            args=(url, kind, task, kwargs_per_worker[i], i, counts, ready, go, results),
            daemon=True,
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    outcomes: list[Outcome | BaseException | str | None] = [None] * workers
    try:
        try:
            ready.wait(timeout=120)
        except threading.BrokenBarrierError:
            slot, error = results.get(timeout=10)
            raise RuntimeError(f"worker process {slot} failed to start: {error}") from None
        fill.delete_queue(backend, WARM_QUEUE)
        go.wait(timeout=60)
        t0 = time.perf_counter()
        received = 0
        with progress.task(label, total) as bar:
            while received < workers:
                bar.update(sum(counts))
                try:
                    slot, out = results.get(timeout=0.1)
                except Exception:  # queue.Empty
                    if not any(proc.is_alive() for proc in procs) and results.empty():
                        raise RuntimeError("a worker process died without reporting") from None
                    continue
                outcomes[slot] = out
                received += 1
            bar.update(sum(counts))
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
    errors = [o for o in outcomes if isinstance(o, str)]
    if errors:
        raise RuntimeError(f"a worker process failed: {errors[0]}")
    run = gather(outcomes, t0, 0.0)
    run.cpu = sum(o.cpu for o in outcomes if isinstance(o, Outcome))
    return run


def gather(outcomes: list[Any], t0: float, cpu: float) -> Run:
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    done = [o for o in outcomes if isinstance(o, Outcome)]
    ids = [i for o in done for i in o.ids]
    latencies = [x for o in done for x in o.latencies]
    return Run(elapsed=max(o.end for o in done) - t0, ids=ids, latencies=latencies, cpu=cpu)
