"""A server restart in the middle of work: the same backend carries on, and no job is lost or run twice.

The tests' own cluster is restarted in fast mode (every session ended at
once). Producer threads enqueue jobs with a ``unique_digest`` and claimer
threads claim and complete them, all retrying what the backend calls
retryable. Afterwards every job enqueued exists once and was completed
once, counted both from what the claimers were told and from a trigger that
logs each state change in the database. A claim whose reply the restart
lost leaves its jobs claimed: they are found by ``stale_jobs`` once the
clock has moved on, and put back to waiting, as an application would.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from spare_cluster import SpareCluster

import sidequest_sql as sq
from sidequest_sql import DatabaseUnavailableError, DuplicatedJobError, NewJobData
from sidequest_sql.base import SQLBackend
from sidequest_sql.testing.clock import ManualClock

pytestmark = pytest.mark.postgres

QUEUE = "restart"
PRODUCERS = 3
CLAIMERS = 3
CLAIM_QUANTITY = 4
# Seconds a producer waits between jobs: work keeps flowing across each restart without piling up.
PACE_S = 0.01
# Jobs completed between one restart and the next, and after the last.
COMPLETED_PER_PHASE = 40
# Jobs claimed by a worker that dies before completing them: what stale_jobs is for.
ABANDONED = 3
RETRY_PAUSE_S = 0.05
# No single operation may keep failing longer than this, restarts included.
OPERATION_DEADLINE_S = 30
PHASE_TIMEOUT_S = 20
JOIN_TIMEOUT_S = 20
GUARD = {"options": "-c lock_timeout=10s -c statement_timeout=20s", "connect_timeout": 5}
_T = TypeVar("_T")


@dataclass
class Failure:
    operation: str
    error: str
    started: float
    ended: float

    def during(self, down: float, up: float) -> bool:
        """Whether the failed attempt overlapped the time from a restart's start to its server being back."""
        return self.started <= up and self.ended >= down


@dataclass
class Work:
    """What the threads did, as they saw it."""

    backend: SQLBackend
    clock: ManualClock
    enqueued: list[str] = field(default_factory=list)
    landed_before_retry: list[str] = field(default_factory=list)
    claimed: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    broken: threading.Event = field(default_factory=threading.Event)
    stop_producing: threading.Event = field(default_factory=threading.Event)
    produced: threading.Event = field(default_factory=threading.Event)

    def attempt(self, operation: str, call: Callable[[], _T]) -> _T:
        """``call()`` until it stops raising a retryable error (bounded)."""
        deadline = time.monotonic() + OPERATION_DEADLINE_S
        while True:
            started = time.monotonic()
            try:
                return call()
            except DatabaseUnavailableError as exc:
                self.failures.append(Failure(operation, type(exc).__name__, started, time.monotonic()))
                if time.monotonic() > deadline or self.broken.is_set():
                    raise
                time.sleep(RETRY_PAUSE_S)

    def enqueue(self, digest: str) -> None:
        job = NewJobData(QUEUE, "restart.py", "Restart", args=[digest], unique_digest=digest)
        operation = f"enqueue {digest}"
        try:
            self.attempt(operation, lambda: self.backend.create_new_job(job))
        except DuplicatedJobError:
            # Only an attempt whose connection broke may have landed unseen.
            if not any(f.operation == operation and f.error == "ConnectionLostError" for f in self.failures):
                raise
            self.landed_before_retry.append(digest)
        self.enqueued.append(digest)

    def produce(self, producer: int) -> None:
        n = 0
        while not self.stop_producing.is_set() and not self.broken.is_set():
            self.enqueue(f"restart-{producer}-{n}")
            n += 1
            self.stop_producing.wait(PACE_S)

    def claim_and_complete(self) -> None:
        deadline = time.monotonic() + OPERATION_DEADLINE_S * 2
        while not self.broken.is_set():
            assert time.monotonic() < deadline, "claimers never ran out of work"
            jobs = self.attempt("claim", lambda: self.backend.claim_pending_job(QUEUE, CLAIM_QUANTITY))
            if not jobs:
                if self.produced.is_set():
                    return
                time.sleep(0.005)
                continue
            for job in jobs:
                self.claimed.append(job.id)
                self.complete(job.id)

    def complete(self, job_id: int) -> None:
        self.attempt(
            f"complete {job_id}",
            lambda: self.backend.update_job(job_id, state="completed", completed_at=self.clock()),
        )
        self.completed.append(job_id)

    def thread(self, target: Callable[..., None], *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except BaseException:
                self.problems.append(traceback.format_exc())
                self.broken.set()

        started = threading.Thread(target=run, daemon=True)
        started.start()
        return started

    def wait_for_completions(self, count: int) -> None:
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        while len(self.completed) < count:
            assert not self.broken.is_set(), "\n".join(self.problems)
            assert time.monotonic() < deadline, f"{len(self.completed)} of {count} jobs completed in time"
            time.sleep(0.01)


def backend_on(cluster: SpareCluster, schema: str, **options: Any) -> SQLBackend:
    return sq.create_backend(cluster.url(), schema=schema, connect_args=GUARD, **options)


def log_state_changes(cluster: SpareCluster, schema: str) -> None:
    """A trigger that records each change of a job's state, in the same transaction."""
    with cluster.admin() as conn:
        conn.execute(f'SET ROLE "{cluster.user}"')  # the owner of the jobs table, whose writes fire it
        conn.execute(f'CREATE TABLE "{schema}".state_changes (job_id bigint NOT NULL, state text NOT NULL)')
        conn.execute(
            f"""
            CREATE FUNCTION "{schema}".log_state_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO "{schema}".state_changes VALUES (NEW.id, NEW.state);
                RETURN NULL;
            END $$
            """
        )
        conn.execute(
            f'CREATE TRIGGER log_state_change AFTER UPDATE OF state ON "{schema}".sidequest_jobs '
            "FOR EACH ROW WHEN (NEW.state IS DISTINCT FROM OLD.state) "
            f'EXECUTE FUNCTION "{schema}".log_state_change()'
        )


def test_connections_a_restart_killed_are_never_handed_out(
    spare_cluster: SpareCluster, spare_schema: Callable[[], str]
) -> None:
    with backend_on(spare_cluster, spare_schema()) as backend:
        backend.migrate()
        job = backend.create_new_job(NewJobData(QUEUE, "s.py", "S"))
        held = [backend.engine.connect() for _ in range(3)]
        before = {conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for conn in held}
        for conn in held:
            conn.close()

        spare_cluster.restart()

        # Writes first: a write is never retried, so a dead connection would fail it.
        second = backend.create_new_job(NewJobData(QUEUE, "s.py", "S"))
        assert [claimed.id for claimed in backend.claim_pending_job(QUEUE, 2)] == [job.id, second.id]
        assert backend.update_job(job.id, state="completed").state == "completed"
        assert backend.get_job(second.id).state == "claimed"  # type: ignore[union-attr]
        held = [backend.engine.connect() for _ in range(3)]
        try:
            after = {conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for conn in held}
        finally:
            for conn in held:
                conn.close()
        assert not before & after


def test_work_goes_on_across_restarts_and_no_job_is_lost_or_run_twice(
    spare_cluster: SpareCluster, spare_schema: Callable[[], str], record_property: Callable[[str, Any], None]
) -> None:
    schema = spare_schema()
    clock = ManualClock()
    backend = backend_on(spare_cluster, schema, clock=clock, worker_name="claimer")
    try:
        backend.migrate()
        log_state_changes(spare_cluster, schema)
        work = Work(backend, clock)
        for n in range(ABANDONED):
            work.enqueue(f"abandoned-{n}")
        with backend_on(spare_cluster, schema, clock=clock, worker_name="dies-before-completing") as dying:
            abandoned = {job.id for job in dying.claim_pending_job(QUEUE, ABANDONED)}
        assert len(abandoned) == ABANDONED

        producers = [work.thread(work.produce, n) for n in range(PRODUCERS)]
        claimers = [work.thread(work.claim_and_complete) for _ in range(CLAIMERS)]
        restarts: list[tuple[float, float]] = []
        try:
            for _ in range(2):
                work.wait_for_completions(len(work.completed) + COMPLETED_PER_PHASE)
                down = time.monotonic()
                spare_cluster.restart()
                restarts.append((down, time.monotonic()))
            work.wait_for_completions(len(work.completed) + COMPLETED_PER_PHASE)
        finally:
            work.stop_producing.set()
            _join(producers)
            work.produced.set()
            _join(claimers)
        assert not work.problems, "\n".join(work.problems)

        # Each restart failed operations, and nothing failed while the server was up: in
        # particular no operation got a pooled connection that a restart had killed.
        for down, up in restarts:
            assert any(f.during(down, up) for f in work.failures), "a restart went unnoticed"
        with_server_up = [f for f in work.failures if not any(f.during(down, up) for down, up in restarts)]
        assert not with_server_up, f"operations failed with the server up: {with_server_up}"

        # Every job enqueued is there, once.
        with spare_cluster.admin() as admin:
            rows = admin.execute(
                f'SELECT id, unique_digest, state FROM "{schema}".sidequest_jobs WHERE queue = %s', [QUEUE]
            ).fetchall()
        assert len(work.enqueued) == len(set(work.enqueued))
        assert sorted(digest for _, digest, _ in rows) == sorted(work.enqueued)
        every_id = {job_id for job_id, _, _ in rows}

        # Left claimed: the abandoned jobs, and jobs of claims whose reply the restarts lost.
        orphans = {job_id for job_id, _, state in rows if state == "claimed"}
        assert {state for _, _, state in rows} <= {"completed", "claimed"}
        assert abandoned <= orphans
        lost_claims = orphans - abandoned
        assert not lost_claims & set(work.claimed)
        claims_broken = sum(f.operation == "claim" and f.error == "ConnectionLostError" for f in work.failures)
        assert len(lost_claims) <= claims_broken * CLAIM_QUANTITY

        # Recovered as an application would: found stale once the clock has moved on, put back, run.
        assert backend.stale_jobs(max_claimed_ms=60_000) == []
        clock.advance(minutes=2)
        stale = backend.stale_jobs(max_claimed_ms=60_000)
        assert {job.id for job in stale} == orphans
        for job in stale:
            backend.update_job(job.id, state="waiting", claimed_at=None, claimed_by=None)
        rerun = backend.claim_pending_job(QUEUE, len(orphans) + 1)
        assert {job.id for job in rerun} == orphans
        for job in rerun:
            work.complete(job.id)

        # Completed exactly once: as the claimers were told, and as the database logged it.
        assert Counter(work.completed) == Counter(every_id)
        assert backend.count_jobs().completed == len(every_id)
        with spare_cluster.admin() as admin:
            changes = admin.execute(f'SELECT job_id, state FROM "{schema}".state_changes').fetchall()
        completions = Counter(job_id for job_id, state in changes if state == "completed")
        claims = Counter(job_id for job_id, state in changes if state == "claimed")
        assert completions == Counter(every_id)
        assert claims == Counter(every_id) + Counter(orphans)

        summary = {
            "jobs": len(every_id),
            "abandoned": len(abandoned),
            "claims lost to a restart": len(lost_claims),
            "enqueues that landed before their retry": len(work.landed_before_retry),
            "failures retried": dict(Counter(f.error for f in work.failures)),
            "restarts (s)": [round(up - down, 2) for down, up in restarts],
        }
        for key, value in summary.items():
            record_property(key, value)
        print(f"restart run: {summary}")
    finally:
        backend.close()


def _join(threads: list[threading.Thread]) -> None:
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a worker thread did not finish in time"
