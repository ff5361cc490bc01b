"""``Worker``: claims jobs from the store, runs them, writes what became of them.

One asyncio loop does the scheduling (see the package docstring). Per round
it takes, for each active queue in priority order, as many jobs as that
queue has free slots, in one claim; starts them all in one checked write;
runs each as a task (async jobs on the loop, sync ones in ``threads``); and
a writer task writes the outcomes that have piled up meanwhile in one
checked write. A slot is free again once its job's outcome is written (and,
for a sync job stopped at its time-out, once its thread has ended), so the
store never shows more of a queue's jobs running than its concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sidequest_sql import transitions
from sidequest_sql.aio import AsyncSQLBackend
from sidequest_sql.errors import ConnectionLostError, DatabaseUnavailableError
from sidequest_sql.fields import check_bigint, check_int, check_seconds, check_text
from sidequest_sql.records import JobData, JobTransition, QueueConfig

from . import loading, outcomes, routines, signals
from .idle_wait import IdleWait
from .outcomes import Outcome
from .store import Store
from .threads import JobThreads, Running
from .writes import MAX_PAUSE_S, Writes, pause

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend

log = logging.getLogger("sidequest_sql.worker")

DEFAULT_CONCURRENCY = 10
"""A queue's slots when it has no settings row and the worker no ``concurrency``, as in Sidequest."""


@dataclass
class Stats:
    """What the worker has done so far; read it from another thread for a progress display."""

    started_at: float = field(default_factory=time.monotonic)
    running: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    snoozed: int = 0
    given_back: int = 0
    lost: int = 0
    """Jobs whose outcome found them changed meanwhile (canceled, released): nothing written."""

    def count(self, kind: str) -> None:
        name = kind.replace(" ", "_")
        setattr(self, name, getattr(self, name) + 1)


@dataclass(eq=False)
class _Run:
    job: JobData
    queue: str
    task: asyncio.Task[None] | None = None
    thread: Running | None = None
    interrupted: bool = False


class Worker:
    """Runs the jobs of ``queues`` from ``backend`` (a ``SQLBackend`` or an ``AsyncSQLBackend``).

    ``run()`` blocks until the worker is stopped (``stop()``, SIGTERM or SIGINT);
    ``run_async()`` is the same as a coroutine. ``concurrency`` overrides
    every queue's own. An idle worker sleeps in the store's ``wait_for_jobs``
    (``idle_wait``), so a new job wakes it at once where the database notifies
    (Postgres) and within the backend's ``poll_interval`` elsewhere; it reads
    the queues' settings again every ``queue_refresh`` seconds. Times are in
    seconds unless named ``_ms``.
    """

    def __init__(
        self,
        backend: SQLBackend | AsyncSQLBackend,
        queues: Sequence[str] = ("default",),
        *,
        concurrency: int | None = None,
        burst: bool = False,
        grace: float = 30.0,
        queue_refresh: float = 5.0,
        release_stale_every: float | None = 60.0,
        max_stale_ms: int = 600_000,
        max_claimed_ms: int = 60_000,
        cleanup_every: float | None = 3600.0,
        cleanup_older_than: timedelta = timedelta(days=30),
        handle_signals: bool = True,
    ) -> None:
        if isinstance(queues, str) or not isinstance(queues, Iterable):
            raise TypeError("queues must be a list of queue names")
        self.queues = list(dict.fromkeys(queues))
        if not self.queues:
            raise ValueError("queues must name at least one queue")
        for i, name in enumerate(self.queues):
            check_text(name, f"queues[{i}]")
        if concurrency is not None:
            check_int(concurrency, "concurrency", minimum=1)
        check_seconds(grace, "grace")
        check_seconds(queue_refresh, "queue_refresh", positive=True)  # also the longest idle sleep
        for name, every in (("release_stale_every", release_stale_every), ("cleanup_every", cleanup_every)):
            if every is not None:
                check_seconds(every, name, positive=True)
        check_bigint(max_stale_ms, "max_stale_ms")
        check_bigint(max_claimed_ms, "max_claimed_ms")
        if not isinstance(cleanup_older_than, timedelta):
            raise TypeError(f"cleanup_older_than must be a datetime.timedelta, not {type(cleanup_older_than).__name__}")
        self.backend = backend
        self.concurrency = concurrency
        self.burst = burst
        self.grace = grace
        self.queue_refresh = queue_refresh
        self.release_stale_every = release_stale_every
        self.max_stale_ms = max_stale_ms
        self.max_claimed_ms = max_claimed_ms
        self.cleanup_every = cleanup_every
        self.cleanup_older_than = cleanup_older_than
        self.handle_signals = handle_signals
        self.stats = Stats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = False

    # -- running and stopping ------------------------------------------------------------

    def run(self) -> None:
        """Work until stopped; returns once running jobs have finished (or ``grace`` ran out).

        On an ``AsyncSQLBackend`` this runs an event loop of its own, and closes the
        backend's pooled connections before that loop ends, since they belong to it
        (the backend connects again if used later); to share an async backend, await
        ``run_async()`` on your own loop instead.
        """

        async def work() -> None:
            try:
                await self.run_async()
            finally:
                if isinstance(self.backend, AsyncSQLBackend):
                    await self.backend.close()

        asyncio.run(work())

    def stop(self) -> None:
        """Stop claiming, finish running jobs (``grace``), give back the rest; from any thread."""
        self._stop_requested = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._begin_stopping)

    async def run_async(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._store = Store(self.backend)
        self._idle_wait = IdleWait(self._store)
        self._threads = JobThreads()
        self._busy: dict[str, int] = dict.fromkeys(self.queues, 0)
        self._maybe_more: dict[str, bool] = dict.fromkeys(self.queues, True)
        self._running: dict[int, _Run] = {}
        self._pending: list[tuple[_Run, Outcome]] = []
        self._last_write: asyncio.Future[list[JobData | None]] | None = None
        self._wake = asyncio.Event()
        self._outcome_ready = asyncio.Event()
        self._stopping = self._stop_requested
        self._writes = Writes(self._store)
        self._configs: dict[str, QueueConfig] = {}
        self._configs_read = -float("inf")
        self.stats = Stats()
        undo_signals = signals.install(self._loop, self._begin_stopping) if self.handle_signals else (lambda: None)
        writer = asyncio.create_task(self._write_outcomes(), name="sidequest-outcomes")
        housekeeping = [asyncio.create_task(routine) for routine in self._routines()]
        log.info("worker %s on queues %s", self._store.worker_name, ", ".join(self.queues))
        try:
            await self._dispatch()
        finally:
            try:
                await self._shut_down(writer, housekeeping)
            finally:
                undo_signals()
                self._threads.close()
                self._store.close()
                self._loop = None

    def _begin_stopping(self) -> None:
        self._stopping = True
        self._wake.set()

    def _routines(self) -> list[Any]:
        store = self._store
        found = []
        if self.release_stale_every is not None:
            found.append(routines.every(self.release_stale_every, "stale release",
                                        lambda: routines.release_stale(store, self.max_stale_ms, self.max_claimed_ms)))  # fmt: skip
        if self.cleanup_every is not None:
            found.append(routines.every(self.cleanup_every, "cleanup",
                                        lambda: routines.clean_up(store, self.cleanup_older_than)))  # fmt: skip
        return found

    # -- claiming ----------------------------------------------------------------------

    async def _dispatch(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            try:
                claimed = await self._claim_round()
                failures = 0
            except DatabaseUnavailableError as exc:
                failures += 1
                log.warning("claiming failed (%s); trying again", exc)
                await pause(failures)
                if isinstance(exc, ConnectionLostError):
                    await self._recover_lost_claims()
                continue
            if self._stopping:
                return
            if self.burst and not claimed and not self._running and not self._pending:
                log.info("queues empty: burst done")
                return
            await self._idle()

    async def _idle(self) -> None:
        """Sleep until a claim may find a job: one enqueued, or come due, in a queue with
        free slots (``idle_wait``); a slot freed where more jobs may wait; a stop; or
        ``queue_refresh`` seconds, after which the queues' settings are read again."""
        woken = asyncio.ensure_future(self._wake.wait())
        sleeps: set[asyncio.Future[Any]] = {woken}
        wanted = self._wanted()
        if wanted:
            sleeps.add(self._idle_wait.start(wanted, self.queue_refresh))
        try:
            done, _ = await asyncio.wait(sleeps, timeout=self.queue_refresh, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
        if any(not sleep.cancelled() and sleep.exception() is not None for sleep in done if sleep is not woken):
            # The wait failed at once (logged by ``idle_wait``): look again a pause later, not in a spin.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), MAX_PAUSE_S)

    def _wanted(self) -> list[str]:
        """The queues a claim could take a job from now: not paused, with a free slot."""
        wanted = []
        for name in self.queues:
            config = self._configs.get(name)
            if (config is None or config.state != "paused") and self._limit(config) > self._busy[name]:
                wanted.append(name)
        return wanted

    async def _claim_round(self) -> int:
        """One claim per queue with free slots, in priority order; how many jobs were claimed."""
        configs = await self._queue_configs()
        claimed = 0
        for name in self._in_priority_order(configs):
            config = configs.get(name)
            if config is not None and config.state == "paused":
                self._maybe_more[name] = False
                continue
            free = self._limit(config) - self._busy[name]
            if free <= 0:
                self._maybe_more[name] = True
                continue
            jobs = await self._store.call("claim_pending_job", name, free)
            self._maybe_more[name] = len(jobs) == free
            if jobs:
                claimed += len(jobs)
                await self._start(name, jobs)
            if self._stopping:
                break
        return claimed

    async def _queue_configs(self) -> dict[str, QueueConfig]:
        if time.monotonic() - self._configs_read >= self.queue_refresh:
            listed = await self._store.call("list_queues")
            self._configs = {queue.name: queue for queue in listed if queue.name in self._busy}
            self._configs_read = time.monotonic()
        return self._configs

    def _in_priority_order(self, configs: dict[str, QueueConfig]) -> list[str]:
        def priority(name: str) -> int:
            config = configs.get(name)
            return 0 if config is None else config.priority

        return sorted(self.queues, key=lambda name: -priority(name))

    def _limit(self, config: QueueConfig | None) -> int:
        if self.concurrency is not None:
            return self.concurrency
        return DEFAULT_CONCURRENCY if config is None else config.concurrency

    async def _recover_lost_claims(self) -> None:
        """Give back jobs that a claim whose answer was lost left claimed by this worker."""
        me = self._store.worker_name
        for name in self.queues:
            try:
                listed = await self._store.call("list_jobs", queue=[name], state=["claimed"], limit=1000)
            except DatabaseUnavailableError:
                return
            ours = [job for job in listed if job.claimed_by == me and job.id not in self._running]
            if ours:
                await self._give_back(ours)

    async def _give_back(self, jobs: list[JobData]) -> None:
        changes = [
            JobTransition(job.id, "claimed", transitions.given_back(), expect_claimed_by=job.claimed_by)
            for job in jobs
        ]
        back = await self._writes.transition(changes)
        self.stats.given_back += sum(job is not None for job in back)
        log.info("gave back %d claimed job(s)", len(jobs))

    # -- running -----------------------------------------------------------------------

    async def _start(self, queue: str, jobs: list[JobData]) -> None:
        if self._stopping:
            await self._give_back(jobs)
            return
        self._busy[queue] += len(jobs)
        if self._last_write is not None:
            await asyncio.wait([self._last_write])  # the jobs whose slots these take are written as ended
        now = self._store.now()
        changes = [
            JobTransition(job.id, "claimed", transitions.started(job, now),
                          expect_claimed_by=job.claimed_by, expect_attempt=job.attempt)
            for job in jobs
        ]  # fmt: skip
        for job in await self._writes.transition(changes):
            if job is None:
                self.stats.lost += 1
                self._release(queue)
                continue
            run = _Run(job, queue)
            self._running[job.id] = run
            run.task = asyncio.create_task(self._execute(run), name=f"sidequest-job-{job.id}")
        self.stats.running = len(self._running)

    async def _execute(self, run: _Run) -> None:
        job = run.job
        try:
            try:
                prepared = loading.prepare(job)
            except (loading.LoadError, loading.MalformedJob) as exc:
                outcome = outcomes.raised(job, exc, self._store.now())
            else:
                outcome = await self._run_prepared(run, prepared)
        except asyncio.CancelledError:
            if not run.interrupted:
                raise
            outcome = outcomes.interrupted(job, self._store.now())
        except Exception as exc:  # a job that breaks its own worker's rules is still only a failed attempt
            outcome = outcomes.raised(job, exc, self._store.now())
        self._pending.append((run, outcome))
        self._outcome_ready.set()

    async def _run_prepared(self, run: _Run, prepared: loading.Prepared) -> Outcome:
        job = run.job
        timeout = job.timeout / 1000 if job.timeout and job.timeout > 0 else None  # 0: none, as in Sidequest
        if prepared.asynchronous:
            scope = asyncio.timeout(timeout)
            try:
                async with scope:
                    value = await prepared.call()
            except TimeoutError as exc:
                if scope.expired():
                    return outcomes.timed_out(job, self._store.now())
                return outcomes.raised(job, exc, self._store.now())
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - a job's SystemExit is its failure, not the worker's
                return outcomes.raised(job, exc, self._store.now())
            return outcomes.completed(job, value, self._store.now(), self._store.max_json_depth)
        running = run.thread = self._threads.start(prepared.call)
        try:
            ok, value = await asyncio.wait_for(asyncio.shield(running.result), timeout)
        except TimeoutError:
            running.stop()
            return outcomes.timed_out(job, self._store.now())
        except asyncio.CancelledError:
            if run.interrupted:
                running.stop()
            raise
        if ok:
            return outcomes.completed(job, value, self._store.now(), self._store.max_json_depth)
        return outcomes.raised(job, value, self._store.now())

    # -- writing outcomes --------------------------------------------------------------

    async def _write_outcomes(self) -> None:
        """Write the outcomes that piled up since the last write, in one checked write each time.

        The jobs' slots are freed as the write is sent, so that the next claim
        overlaps it; the start of the jobs that claim takes waits for the write
        to be done (``_start``), so the store never shows more running than the
        concurrency.
        """
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            batch, self._pending = self._pending, []
            if batch:
                changes = [
                    JobTransition(run.job.id, "running", outcome.changes,
                                  expect_claimed_by=run.job.claimed_by, expect_attempt=run.job.attempt)
                    for run, outcome in batch
                ]  # fmt: skip
                writing = self._last_write = asyncio.ensure_future(self._write_outcome_batch(changes))
                for run, _ in batch:
                    self._free_slot(run)
                written = await writing
                for (run, outcome), job in zip(batch, written):
                    self._ended(run, outcome, job)
            if self._writes.closing and not self._pending:
                return

    async def _write_outcome_batch(self, changes: list[JobTransition]) -> list[JobData | None]:
        try:
            return await self._writes.transition(changes)
        except Exception:
            # Not the database being away (that is retried): these jobs stay running in
            # the store, and stale release runs them again.
            log.exception("writing the outcomes of %d job(s) failed", len(changes))
            return [None] * len(changes)

    def _ended(self, run: _Run, outcome: Outcome, job: JobData | None) -> None:
        del self._running[run.job.id]
        self.stats.running = len(self._running)
        if self.burst and not self._running:
            self._wake.set()
        if job is None:
            self.stats.lost += 1
            log.warning("job %d %s: %s, but it had changed meanwhile (canceled or released): not recorded",
                        run.job.id, run.job.job_class, outcome.kind)  # fmt: skip
            return
        self.stats.count(outcome.kind)
        if outcome.kind != "completed":
            log.warning("job %d %s %s: %s", job.id, job.job_class, outcome.kind, outcome.detail)
        elif log.isEnabledFor(logging.INFO):
            log.info("job %d %s completed", job.id, job.job_class)

    def _free_slot(self, run: _Run) -> None:
        thread = run.thread
        if thread is not None and not thread.result.done():
            # Stopped at its time-out but not yet ended: its slot waits for its thread.
            thread.result.add_done_callback(lambda _: self._release(run.queue))
        else:
            self._release(run.queue)

    def _release(self, queue: str) -> None:
        self._busy[queue] -= 1
        if self._maybe_more.get(queue, True):
            self._wake.set()

    # -- shutting down -------------------------------------------------------------------

    async def _shut_down(self, writer: asyncio.Task[None], housekeeping: list[asyncio.Task[None]]) -> None:
        self._stopping = True
        await self._idle_wait.close()
        for task in housekeeping:
            task.cancel()
        await asyncio.gather(*housekeeping, return_exceptions=True)
        tasks = [run.task for run in self._running.values() if run.task is not None]
        if tasks:
            log.info("waiting up to %ss for %d running job(s)", self.grace, len(tasks))
            _, late = await asyncio.wait(tasks, timeout=self.grace)
            if late:
                log.warning("%d job(s) still running after %ss: giving them back", len(late), self.grace)
                for run in list(self._running.values()):
                    if run.task in late:
                        run.interrupted = True
                        run.task.cancel()
                await asyncio.wait(late, timeout=self.grace or None)
        self._writes.closing = True
        self._outcome_ready.set()
        try:
            await writer
        except Exception:
            log.exception("writing the last outcomes failed")
        log.info("worker stopped: %s", self.stats)
