"""Connections killed under a working backend: ``pg_terminate_backend`` from another session.

The backend's sessions carry an ``application_name`` of their own, so that
``pg_stat_activity`` tells which to end. Whatever a call was doing when its
connection died, it either succeeds or raises ``ConnectionLostError`` (or
``DatabaseUnavailableError``, if a new connection could not be made); a claim
whose reply was lost may have committed, but no job is ever claimed twice, and
a trigger counts every claim the database committed. Once the killing stops,
the same backend works again at its next call: the pool never hands out a
connection whose session has ended.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from sidequest_sql import ConnectionLostError, DatabaseUnavailableError, NewJobData
from sidequest_sql.base import SQLBackend

pytestmark = pytest.mark.postgres

QUEUE = "doomed-connections"
CLAIMERS = 3
CYCLES = 300
"""Claims the claimers make together, each followed by completing and reading back what it returned."""
QUANTITY = 2
RUN_S = 30
"""How long the claimers may take for every cycle before the test fails."""
GONE_S = 10
"""How long an ended session may take to leave pg_stat_activity."""
KILL_PAUSE_S = (0.002, 0.03)


@dataclass
class Outcome:
    claimed: dict[str, list[int]] = field(default_factory=dict)
    completed: list[int] = field(default_factory=list)
    lost: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def lossy_backend(make_backend: Callable[..., SQLBackend], schema: str, hang_guard: str) -> tuple[SQLBackend, str]:
    """A migrated backend whose sessions carry an application_name of their own, and that name."""
    name = f"sq-loss-{uuid.uuid4().hex[:12]}"
    backend = make_backend(
        schema, worker_name=name, connect_args={"options": hang_guard, "application_name": name}
    )
    backend.migrate()
    return backend, name


def sessions(pg_engine: sa.Engine, name: str) -> set[int]:
    with pg_engine.connect() as conn:
        query = sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :name")
        return set(conn.scalars(query, {"name": name}))


def terminate(pg_engine: sa.Engine, pids: set[int]) -> None:
    with pg_engine.connect() as conn:
        for pid in pids:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def wait_gone(pg_engine: sa.Engine, name: str, pids: set[int]) -> None:
    """Until none of ``pids`` is left: then each one's client has been told, and its socket closed."""
    deadline = time.monotonic() + GONE_S
    while left := sessions(pg_engine, name) & pids:
        assert time.monotonic() < deadline, f"sessions {sorted(left)} still there {GONE_S} s after being terminated"
        time.sleep(0.01)


def log_claims(pg_engine: sa.Engine, schema: str) -> None:
    """A trigger that records every claim the database commits, in the claim's own transaction."""
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE TABLE "{schema}".claim_log (job_id bigint NOT NULL, claimed_by text)')
        conn.exec_driver_sql(
            f"""
            CREATE FUNCTION "{schema}".log_claim() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO "{schema}".claim_log VALUES (NEW.id, NEW.claimed_by);
                RETURN NEW;
            END $$
            """
        )
        conn.exec_driver_sql(
            f'CREATE TRIGGER log_claim AFTER UPDATE OF state ON "{schema}".sidequest_jobs FOR EACH ROW '
            f"WHEN (NEW.state = 'claimed' AND OLD.state <> 'claimed') EXECUTE FUNCTION \"{schema}\".log_claim()"
        )


def claims_logged(pg_engine: sa.Engine, schema: str) -> Counter[int]:
    with pg_engine.connect() as conn:
        return Counter(conn.scalars(sa.text(f'SELECT job_id FROM "{schema}".claim_log')))


def test_claimers_whose_connections_are_killed_at_random_lose_no_job_and_claim_none_twice(
    make_backend: Callable[..., SQLBackend],
    new_schema: Callable[..., str],
    pg_engine: sa.Engine,
    hang_guard: str,
) -> None:
    schema = new_schema()
    backend, name = lossy_backend(make_backend, schema, hang_guard)
    log_claims(pg_engine, schema)
    new_jobs = [NewJobData(QUEUE, "s.js", "S", args=[i]) for i in range(CYCLES * QUANTITY + 50)]
    enqueued = [job.id for job in backend.create_new_jobs(new_jobs)]
    outcome = Outcome()
    cycles = iter(range(CYCLES))
    cycles_lock = threading.Lock()
    stop = threading.Event()
    killed: set[int] = set()

    def call(what: str, work: Callable[[], object]) -> object:
        try:
            return work()
        except (ConnectionLostError, DatabaseUnavailableError) as exc:
            with outcome.lock:
                outcome.lost[f"{what}: {type(exc).__name__}"] += 1
        except Exception:
            with outcome.lock:
                outcome.unexpected.append(f"{what}:\n{traceback.format_exc()}")
        return None

    def claimer(i: int) -> None:
        mine = outcome.claimed.setdefault(f"claimer-{i}", [])
        while True:
            with cycles_lock:
                if next(cycles, None) is None:
                    return
            batch = call("claim", lambda: backend.claim_pending_job(QUEUE, QUANTITY))
            for job in batch or []:  # type: ignore[attr-defined]
                mine.append(job.id)
                now = datetime.now(UTC)
                if call("complete", lambda: backend.update_job(job.id, state="completed", completed_at=now)):
                    with outcome.lock:
                        outcome.completed.append(job.id)
                read = call("read", lambda: backend.get_job(job.id))
                assert read is None or read.state in ("claimed", "completed")  # type: ignore[attr-defined]

    def killer() -> None:
        while not stop.wait(random.uniform(*KILL_PAUSE_S)):
            alive = sessions(pg_engine, name)
            if alive:
                doomed = alive if random.random() < 0.2 else {random.choice(sorted(alive))}
                terminate(pg_engine, doomed)
                killed.update(doomed)

    with ThreadPoolExecutor(CLAIMERS + 1) as pool:
        killing = pool.submit(killer)
        try:
            claiming = [pool.submit(claimer, i) for i in range(CLAIMERS)]
            deadline = time.monotonic() + RUN_S
            for future in claiming:
                future.result(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            stop.set()
            killing.result(timeout=RUN_S)

    assert not outcome.unexpected, f"{len(outcome.unexpected)} calls raised something else:\n" + "\n".join(
        outcome.unexpected[:3]
    )
    assert killed, "no session of the backend was ever terminated"
    print(f"{len(killed)} sessions terminated; calls that lost their connection: {dict(outcome.lost)}")

    # Every session the killer ended is gone, so a pooled connection left over from one is dead
    # by now: the next call must be given a live one, and a claim is a write, never retried.
    wait_gone(pg_engine, name, killed)
    assert len(backend.claim_pending_job(QUEUE, QUANTITY)) == QUANTITY
    assert backend.get_job(enqueued[0]) is not None

    handed_out = Counter(job_id for ids in outcome.claimed.values() for job_id in ids)
    twice = sorted(job_id for job_id, n in handed_out.items() if n > 1)
    assert not twice, f"jobs handed to two claims: {twice[:10]}"
    logged = claims_logged(pg_engine, schema)
    assert [job_id for job_id, n in logged.items() if n > 1] == [], "a job was claimed twice in the database"
    assert set(handed_out) <= set(logged)
    jobs = {job.id: job for job in backend.list_jobs(queue=[QUEUE], limit=len(enqueued) + 1)}
    assert set(jobs) == set(enqueued)
    assert {job_id for job_id, job in jobs.items() if job.state != "waiting"} == set(logged)
    assert all(jobs[job_id].state == "completed" for job_id in outcome.completed)
    assert {job.state for job in jobs.values()} <= {"waiting", "claimed", "completed"}


def test_idle_pooled_connections_whose_sessions_were_terminated_are_replaced_before_use(
    make_backend: Callable[..., SQLBackend],
    new_schema: Callable[..., str],
    pg_engine: sa.Engine,
    hang_guard: str,
) -> None:
    backend, name = lossy_backend(make_backend, new_schema(), hang_guard)
    ids = [job.id for job in backend.create_new_jobs(NewJobData(QUEUE, "s.js", "S", args=[i]) for i in range(5))]
    # One kept between one-statement operations (IdleConnections), and
    # several more at once, so that the pool keeps several.
    assert backend.get_job(ids[0]) is not None
    assert len(backend.execution.idle) == 1
    held = [backend.engine.connect() for _ in range(4)]
    for conn in held:
        conn.exec_driver_sql("SELECT 1")
    for conn in held:
        conn.close()
    pooled = sessions(pg_engine, name)
    assert len(pooled) >= 5

    terminate(pg_engine, pooled)
    wait_gone(pg_engine, name, pooled)

    # Each call takes one of the dead connections in turn, the kept one
    # first; writes first, as they are never retried.
    [first] = backend.claim_pending_job(QUEUE)
    assert backend.update_job(first.id, state="completed", completed_at=datetime.now(UTC)).state == "completed"
    new = backend.create_new_job(NewJobData(QUEUE, "s.js", "S", args=["new"]))
    assert [job.id for job in backend.claim_pending_job(QUEUE, 2)] == ids[1:3]
    assert backend.get_job(new.id) == new
    assert backend.count_jobs().total == 6
    assert not sessions(pg_engine, name) & pooled


def test_sessions_that_end_as_soon_as_they_are_made_raise_database_unavailable(
    make_backend: Callable[..., SQLBackend],
    new_schema: Callable[..., str],
    pg_engine: sa.Engine,
    hang_guard: str,
) -> None:
    backend, name = lossy_backend(make_backend, new_schema(), hang_guard)
    [job] = backend.create_new_jobs([NewJobData(QUEUE, "s.js", "S")])
    backend.close()
    doomed = True

    def end_at_once(dbapi_connection: object, _record: object) -> None:
        if doomed:
            pid = dbapi_connection.info.backend_pid  # type: ignore[attr-defined]
            terminate(pg_engine, {pid})
            wait_gone(pg_engine, name, {pid})

    sa.event.listen(backend.engine.pool, "connect", end_at_once)
    # Every connection the pool makes, and every one it makes to replace it, is dead before use.
    with pytest.raises(DatabaseUnavailableError):
        backend.get_job(job.id)
    with pytest.raises(DatabaseUnavailableError):
        backend.claim_pending_job(QUEUE)
    doomed = False
    assert [claimed.id for claimed in backend.claim_pending_job(QUEUE)] == [job.id]
