"""The soak's workers: producers, claimers and the cleanup loop, each a thread.

A *group* is the set of producer and claimer threads of one process, sharing
that process's backend; the main process runs group 0, its cleanup loop and
its reporter, and every spawned process runs one more group on a backend of
its own, built from the URL.

Each worker writes what it did to its own log file, one event per line; the
accounting (``ledger``) reads them all at the end, so that a job completed
twice is seen even if the cleanup has deleted its row since::

    E id fail max_attempts   enqueued; its args plan ``fail`` failed attempts
    K id attempt             claimed (the attempt the claim returned)
    R id attempt             that attempt failed; set back to waiting
    C id attempt             completed
    F id attempt             that attempt failed and was the last: failed for good
    S id state               found by stale_jobs
    X "message"              an exception (a JSON string)

Live figures go through ``Counters``, a shared-memory array with one slot per
worker: each slot has one writer, the main process sums them.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sidequest_sql as sq

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend

QUEUE = "soak"
SCRIPT = "soak.py"
JOB_CLASS = "SoakJob"
FIELDS = (
    "enqueued",
    "claim_calls",
    "claimed",
    "completed",
    "retried",
    "failed",
    "deleted",
    "stale",
    "errors",
    "producers_done",
)
_AT = {name: i for i, name in enumerate(FIELDS)}
IDLE_SECONDS = 0.02  # a claimer's pause after an empty claim
ERROR_PAUSE = 0.1
TRACEBACKS = 5  # full tracebacks printed per worker; later errors get one line
START_TIMEOUT = 120.0  # seconds every process may take to connect


class SoakCheckFailed(Exception):
    """The database answered something other than what was asked."""


@dataclass(frozen=True)
class Plan:
    """Everything a worker needs to know, identical in every process."""

    url: str
    groups: int
    producers: int
    claimers: int
    quantities: tuple[int, ...]
    max_batch: int
    backlog: int
    flaky: float
    doomed: float
    max_attempts: int
    retry_delay: float
    cleanup_every: float
    keep_seconds: float
    stale_ms: int
    seed: int
    log_dir: str

    @property
    def per_group(self) -> int:
        return self.producers + self.claimers

    @property
    def cleanup_slot(self) -> int:
        return self.groups * self.per_group

    @property
    def main_slot(self) -> int:
        return self.cleanup_slot + 1

    @property
    def slots(self) -> int:
        return self.main_slot + 1


class Counters:
    """Running totals per worker slot, in memory shared by every process."""

    def __init__(self, array: Any) -> None:
        self.array = array

    @staticmethod
    def size(slots: int) -> int:
        return slots * len(FIELDS)

    def add(self, slot: int, field: str, n: int = 1) -> None:
        self.array[slot * len(FIELDS) + _AT[field]] += n

    def total(self, field: str) -> int:
        return sum(self.array[_AT[field] :: len(FIELDS)])

    def totals(self) -> dict[str, int]:
        return {field: self.total(field) for field in FIELDS}

    def outstanding(self) -> int:
        """Jobs enqueued and not yet completed or failed for good."""
        return self.total("enqueued") - self.total("completed") - self.total("failed")


@dataclass
class Signals:
    """Multiprocessing events: start together, stop producing, stop claiming."""

    go: Any
    stop_producing: Any
    stop_claiming: Any


class Worker:
    """One thread's identity, counter slot and log."""

    def __init__(self, name: str, slot: int, counters: Counters, log_dir: str) -> None:
        self.name = name
        self.slot = slot
        self.counters = counters
        self.log = open(Path(log_dir) / f"{name}.log", "w", buffering=1 << 16)  # noqa: SIM115
        self.errors = 0

    def count(self, field: str, n: int = 1) -> None:
        self.counters.add(self.slot, field, n)

    def record(self, *fields: Any) -> None:
        self.log.write(" ".join(map(str, fields)) + "\n")

    def error(self, what: str, exc: BaseException | str) -> None:
        """Count, log and print an exception (or a failed check)."""
        self.errors += 1
        self.count("errors")
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        message = f"{self.name} {what}: {text}"
        self.record("X", json.dumps(message))
        self.log.flush()
        if isinstance(exc, BaseException) and self.errors <= TRACEBACKS:
            message += "\n" + "".join(traceback.format_exception(exc)).rstrip()
        print(f"ERROR {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.log.close()


def _now() -> datetime:
    return datetime.now(UTC)


# -- producers ----------------------------------------------------------------------


def new_job(plan: Plan, rng: random.Random, n: int) -> sq.NewJobData:
    """A job whose args say how many of its attempts fail.

    Most never fail; ``flaky`` ones fail 1 to max_attempts-1 times, then
    complete; ``doomed`` ones fail every attempt and end failed. Every other
    job carries a ``timeout``, so that stale_jobs checks both kinds of
    running job.
    """
    u = rng.random()
    if u < plan.doomed:
        fail = plan.max_attempts
    elif u < plan.doomed + plan.flaky:
        fail = rng.randint(1, plan.max_attempts - 1)
    else:
        fail = 0
    return sq.NewJobData(
        queue=QUEUE,
        script=SCRIPT,
        job_class=JOB_CLASS,
        args=[{"n": n, "fail": fail}],
        max_attempts=plan.max_attempts,
        timeout=plan.stale_ms if n % 2 else None,
    )


def produce(backend: SQLBackend, worker: Worker, plan: Plan, signals: Signals, index: int) -> None:
    """Enqueue single jobs or batches of 2..max_batch until told to stop.

    Producer 0 of a group enqueues one job per call, producer 1 batches, and
    so on; a lone producer alternates. No producer lets more than
    ``backlog`` jobs (all processes together) be outstanding.
    """
    rng = random.Random(f"{plan.seed}-{worker.name}")
    calls = n = 0
    try:
        while not signals.stop_producing.is_set():
            if worker.counters.outstanding() >= plan.backlog:
                time.sleep(IDLE_SECONDS)
                continue
            batched = index % 2 == 1 if plan.producers > 1 else calls % 2 == 1
            calls += 1
            size = rng.randint(2, plan.max_batch) if batched else 1
            wanted = [new_job(plan, rng, n + k) for k in range(size)]
            n += size
            try:
                made = backend.create_new_jobs(wanted) if batched else [backend.create_new_job(wanted[0])]
            except Exception as exc:
                worker.error("enqueue", exc)
                time.sleep(ERROR_PAUSE)
                continue
            if len(made) != size:
                worker.error("enqueue", f"{size} jobs enqueued, {len(made)} returned")
            for want, job in zip(wanted, made, strict=False):
                worker.record("E", job.id, want.args[0]["fail"], want.max_attempts)
                if job.args != want.args or job.state != "waiting" or job.attempt != 0 or job.queue != QUEUE:
                    worker.error("enqueue", f"job {job.id} came back {job.state}, attempt {job.attempt}, "
                                            f"args {job.args}; enqueued with args {want.args}")
            worker.count("enqueued", len(made))
    finally:
        worker.count("producers_done")


# -- claimers -----------------------------------------------------------------------


def run_job(backend: SQLBackend, job: sq.JobData, retry_delay: timedelta) -> str:
    """Run one claimed job as a job runner would; return its log event (C, R or F)."""
    attempt = job.attempt + 1
    started = backend.update_job(job.id, state="running", attempt=attempt, attempted_at=_now())
    if started.state != "running" or started.attempt != attempt:
        raise SoakCheckFailed(f"job {job.id} set running at attempt {attempt} came back "
                              f"{started.state} at attempt {started.attempt}")
    if attempt > job.args[0]["fail"]:
        backend.update_job(job.id, state="completed", completed_at=_now(), result={"attempt": attempt})
        return "C"
    errors = [*(job.errors or []), {"attempt": attempt, "message": "planned failure"}]
    if attempt >= job.max_attempts:
        backend.update_job(job.id, state="failed", failed_at=_now(), errors=errors)
        return "F"
    backend.update_job(job.id, state="waiting", available_at=_now() + retry_delay, errors=errors)
    return "R"


OUTCOMES = {"C": "completed", "R": "retried", "F": "failed"}


def claim(backend: SQLBackend, worker: Worker, plan: Plan, signals: Signals, quantity: int) -> None:
    """Claim ``quantity`` at a time and run what comes back, until told to stop."""
    delay = timedelta(seconds=plan.retry_delay)
    while not signals.stop_claiming.is_set():
        try:
            got = backend.claim_pending_job(QUEUE, quantity)
        except Exception as exc:
            worker.error(f"claim q={quantity}", exc)
            time.sleep(ERROR_PAUSE)
            continue
        worker.count("claim_calls")
        if not got:
            time.sleep(IDLE_SECONDS)
            continue
        worker.count("claimed", len(got))
        if len(got) > quantity:
            worker.error(f"claim q={quantity}", f"{len(got)} jobs came back")
        for job in got:
            worker.record("K", job.id, job.attempt)
            if job.state != "claimed" or job.queue != QUEUE or job.attempt >= job.max_attempts:
                worker.error("claim", f"job {job.id} claimed as {job.state} in {job.queue!r} "
                                      f"at attempt {job.attempt} of {job.max_attempts}")
            try:
                outcome = run_job(backend, job, delay)
            except Exception as exc:
                worker.error(f"job {job.id}", exc)
                continue
            worker.record(outcome, job.id, job.attempt + 1)
            worker.count(OUTCOMES[outcome])


# -- cleanup ------------------------------------------------------------------------


def cleanup(backend: SQLBackend, worker: Worker, plan: Plan, stop: threading.Event) -> None:
    """Every ``cleanup_every`` s: delete jobs finished over ``keep_seconds`` ago, look for stale jobs.

    Nothing here injects faults and every claimer moves its jobs on at once,
    so a stale job means a job left behind: each one is logged and counted.
    """
    keep = timedelta(seconds=plan.keep_seconds)
    seen: set[int] = set()
    while not stop.wait(plan.cleanup_every):
        try:
            worker.count("deleted", backend.delete_finished_jobs(_now() - keep))
        except Exception as exc:
            worker.error("delete_finished_jobs", exc)
        try:
            stale = backend.stale_jobs(max_stale_ms=plan.stale_ms, max_claimed_ms=plan.stale_ms)
        except Exception as exc:
            worker.error("stale_jobs", exc)
            continue
        for job in stale:
            if job.id not in seen:
                seen.add(job.id)
                worker.count("stale")
                worker.record("S", job.id, job.state)
                print(f"STALE job {job.id}: {job.state}, claimed at {job.claimed_at} by {job.claimed_by}, "
                      f"attempted at {job.attempted_at}", file=sys.stderr, flush=True)


# -- groups and processes -----------------------------------------------------------


def start_thread(worker: Worker, go: Any, target: Callable[..., None], *args: Any) -> threading.Thread:
    """Run ``target(*args)`` once ``go`` is set; any exception is the worker's error; close its log."""

    def run() -> None:
        try:
            go.wait()
            target(*args)
        except BaseException as exc:
            worker.error("crashed", exc)
        finally:
            worker.close()

    thread = threading.Thread(target=run, name=worker.name, daemon=True)
    thread.start()
    return thread


def start_group(
    backend: SQLBackend, group: int, plan: Plan, counters: Counters, signals: Signals
) -> list[threading.Thread]:
    """Start a group's producers and claimers; they wait for ``signals.go``."""
    threads = []
    base = group * plan.per_group
    for j in range(plan.producers):
        worker = Worker(f"g{group}-producer{j}", base + j, counters, plan.log_dir)
        threads.append(start_thread(worker, signals.go, produce, backend, worker, plan, signals, j))
    for k in range(plan.claimers):
        quantity = plan.quantities[k % len(plan.quantities)]
        worker = Worker(f"g{group}-claimer{k}-q{quantity}", base + plan.producers + k, counters, plan.log_dir)
        threads.append(start_thread(worker, signals.go, claim, backend, worker, plan, signals, quantity))
    return threads


def process_main(group: int, plan: Plan, array: Any, signals: Signals, ready: Any) -> None:
    """A spawned process: its own backend from the URL, one group of workers."""
    counters = Counters(array)
    # Its slot is producer 0's, which does not run yet, or has stopped.
    setup = Worker(f"g{group}-process", group * plan.per_group, counters, plan.log_dir)
    try:
        try:
            backend = sq.create_backend(plan.url)
            backend.get_queue(QUEUE)  # connect before the start
            threads = start_group(backend, group, plan, counters, signals)
        except BaseException as exc:
            setup.error("start", exc)
            ready.abort()
            raise SystemExit(1) from None
        try:
            ready.wait(timeout=START_TIMEOUT)
        except threading.BrokenBarrierError:
            pass  # another process failed to start: the main process stops everyone
        parent = multiprocessing.parent_process()
        for thread in threads:
            while thread.is_alive():
                thread.join(1.0)
                if parent is not None and not parent.is_alive():
                    # The main process is gone without stopping anyone: stop now.
                    signals.stop_producing.set()
                    signals.stop_claiming.set()
                    signals.go.set()
        try:
            backend.close()
        except Exception as exc:
            setup.error("close", exc)
    finally:
        setup.close()
