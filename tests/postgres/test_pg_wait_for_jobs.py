"""``wait_for_jobs`` on Postgres: the triggers of revision 0007, and the one listening connection.

The triggers notify for rows any process writes (plain SQL here, as a Node
Sidequest process would), once per queue an INSERT statement fills, only
when a job becomes waiting, and only on commit; each schema on a channel of
its own. A backend's waits share one listening connection, which comes back
by itself when its session is ended or the server restarts (on the tests'
spare cluster), a forked child making its own. Waits
that must wake by notification are given a ``poll_interval`` of an hour, so
that polling cannot pass for it.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from spare_cluster import SpareCluster
from test_pg_connection_loss import sessions, terminate, wait_gone
from test_pg_spare_restart import GUARD

import sidequest_sql as sq
from sidequest_sql import NewJobData
from sidequest_sql.connections import driver_connection
from sidequest_sql.base import SQLBackend
from sidequest_sql.dialects.pg_notify import MAX_CHANNEL_BYTES, channel_for
from sidequest_sql.listener import PROBE_PREFIX, State
from sidequest_sql.testing.backends import BackendFactory
from sidequest_sql.testing.waiting import started, until

pytestmark = pytest.mark.postgres

QUEUE = "wake-me"
NO_POLLING_S = 3600.0
WAKE_TIMEOUT_S = 20.0
SETTLE_S = 0.2
QUIET_S = 0.3
"""How long a test listens for a notification that must not come."""
RECOVERY_S = 20.0


def job(queue: str = QUEUE, **fields: Any) -> NewJobData:
    return NewJobData(queue=queue, script="jobs/wake.js", job_class="Wake", **fields)


def node_insert(schema: str, rows: dict[str, int]) -> str:
    """An INSERT of waiting jobs as a Node Sidequest process writes them: its own SQL, one statement."""
    selects = " UNION ALL ".join(
        f"SELECT '{queue}', n FROM generate_series(1, {count}) AS n" for queue, count in rows.items()
    )
    return (
        f'INSERT INTO "{schema}".sidequest_jobs (queue, state, script, class, args, constructor_args, attempt, '
        f"max_attempts, available_at) SELECT queue, 'waiting', 'jobs/node.js', 'Node', jsonb_build_array(n), "
        f"'[]'::jsonb, 0, 5, now() FROM ({selects}) AS new_jobs (queue, n)"
    )


@contextmanager
def overheard(postgres_url: str, channel: str) -> Iterator[Callable[[float], list[str]]]:
    """A session of the test's own LISTENing on ``channel``: what it hears within some seconds
    (the payloads; the backends' probes left out)."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'LISTEN "{channel}"')

        def heard(seconds: float, count: int | None = None) -> list[str]:
            """What comes within ``seconds``, or until ``count`` have come."""
            deadline = time.monotonic() + seconds
            payloads: list[str] = []
            while count is None or len(payloads) < count:
                for notify in conn.notifies(timeout=max(0.0, deadline - time.monotonic()), stop_after=1):
                    if not notify.payload.startswith(PROBE_PREFIX):
                        payloads.append(notify.payload)
                if time.monotonic() >= deadline:
                    break
            return payloads

        yield heard


def listening(backend: Any, *, instead_of: int | None = None) -> Any:
    """The backend's listener once it hears notifications (on another session than
    ``instead_of``); the async backend's, behind a BlockingBackend."""
    wakeups = (backend.backend._backend if hasattr(backend, "backend") else backend).execution.wakeups

    found: list[Any] = []

    def heard() -> bool:
        listener, connection = wakeups.listener, getattr(wakeups.listener, "connection", None)
        if listener is None or not listener.listening or connection is None:
            return False
        if instead_of is not None and driver_connection(connection).info.backend_pid == instead_of:
            return False
        found[:] = [listener]
        return True

    until(heard, "listening", seconds=RECOVERY_S)
    return found[0]


def asleep(backend: Any, queues: list[str], timeout: float = WAKE_TIMEOUT_S) -> Any:
    """A wait in a thread, once the backend listens, given time to fall asleep."""
    backend.wait_for_jobs(["warm-up"], 0.001)  # starts the listening connection
    listening(backend)
    waiting = started(lambda: backend.wait_for_jobs(queues, timeout))
    time.sleep(SETTLE_S)
    assert not waiting.done(), f"the wait ended early: {waiting.result()!r}"
    return waiting


def listener_pid(backend: Any, **kwargs: Any) -> int:
    return int(driver_connection(listening(backend, **kwargs).connection).info.backend_pid)


@pytest.fixture
def quiet(make_backend: Callable[..., SQLBackend], new_schema: Callable[..., str]) -> SQLBackend:
    """A migrated backend in a schema of its own whose waits only notifications can wake."""
    backend = make_backend(new_schema())
    backend.migrate()
    backend.poll_interval = NO_POLLING_S
    return backend


# -- the triggers ------------------------------------------------------------------------------


def test_rows_any_process_inserts_notify_once_per_queue_and_wake_the_wait(
    quiet: SQLBackend, pg_engine: sa.Engine, postgres_url: str
) -> None:
    assert quiet.schema is not None
    with overheard(postgres_url, channel_for(quiet.schema)) as heard:
        waiting = asleep(quiet, ["node-b", "other"])
        with pg_engine.begin() as conn:
            conn.exec_driver_sql(node_insert(quiet.schema, {"node-a": 100, "node-b": 50}))
        assert waiting.result(WAKE_TIMEOUT_S + 10) == ["node-b"]
        assert sorted(heard(WAKE_TIMEOUT_S, 2) + heard(QUIET_S)) == ["node-a", "node-b"]


def test_only_a_commit_notifies(quiet: SQLBackend, pg_engine: sa.Engine, postgres_url: str) -> None:
    assert quiet.schema is not None
    insert = node_insert(quiet.schema, {QUEUE: 1})
    with overheard(postgres_url, channel_for(quiet.schema)) as heard:
        waiting = asleep(quiet, [QUEUE], timeout=SETTLE_S + QUIET_S * 2)
        with pg_engine.connect() as conn:
            rolled_back = conn.begin()
            conn.exec_driver_sql(insert)
            assert heard(QUIET_S) == []
            rolled_back.rollback()
            assert heard(QUIET_S) == []
            assert waiting.result(WAKE_TIMEOUT_S) == []
            committed = conn.begin()
            conn.exec_driver_sql(insert)
            assert heard(QUIET_S) == []
            committed.commit()
        assert heard(WAKE_TIMEOUT_S, 1) == [QUEUE]


def test_updates_notify_only_where_a_job_becomes_waiting_or_moves(quiet: SQLBackend, postgres_url: str) -> None:
    assert quiet.schema is not None
    now = datetime.now(UTC)
    created = quiet.create_new_job(job())
    with overheard(postgres_url, channel_for(quiet.schema)) as heard:
        [claimed] = quiet.claim_pending_job(QUEUE)
        quiet.update_job(claimed.id, state="running", attempt=1, attempted_at=now)
        quiet.update_job(claimed.id, state="completed", completed_at=now, result={"ok": True})
        assert heard(QUIET_S) == []
        quiet.update_job(created.id, state="waiting", completed_at=None)
        assert heard(WAKE_TIMEOUT_S, 1) == [QUEUE]
        quiet.update_job(created.id, result={"again": True}, attempt=2)
        assert heard(QUIET_S) == []
        quiet.update_job(created.id, available_at=now + timedelta(minutes=5))
        quiet.update_job(created.id, queue="moved")
        assert heard(WAKE_TIMEOUT_S, 2) + heard(QUIET_S) == [QUEUE, "moved"]


def test_two_schemas_never_wake_each_others_waits(
    make_backend: Callable[..., SQLBackend], new_schema: Callable[..., str], postgres_url: str
) -> None:
    # The second name is too long for a channel: it is hashed, by the trigger as by the listener.
    long_name = new_schema(prefix="sq_pg_Long Schema Name, With Spaces " + "x" * 15)
    assert len(long_name.encode()) == 63 and len(channel_for(long_name).encode()) <= MAX_CHANNEL_BYTES
    backends = [make_backend(new_schema()), make_backend(long_name)]
    for backend in backends:
        backend.migrate()
        backend.poll_interval = NO_POLLING_S
    first, second = backends
    assert first.schema is not None and second.schema is not None
    with overheard(postgres_url, channel_for(second.schema)) as heard_by_second:
        waits = [asleep(backend, [QUEUE], timeout=SETTLE_S * 2 + 0.5) for backend in backends]
        first.create_new_job(job())
        assert waits[0].result(WAKE_TIMEOUT_S) == [QUEUE]
        assert waits[1].result(WAKE_TIMEOUT_S) == []
        assert heard_by_second(0) == []
        second.create_new_job(job())
        assert heard_by_second(WAKE_TIMEOUT_S, 1) == [QUEUE]
    assert listening(second).channel == channel_for(long_name)


def test_without_a_schema_the_table_the_search_path_finds_is_listened_to(
    make_backend: Callable[..., SQLBackend], pg_engine: sa.Engine
) -> None:
    backend = make_backend(None)
    backend.migrate()
    backend.poll_interval = NO_POLLING_S
    queue = f"public-{uuid.uuid4().hex[:8]}"
    with pg_engine.connect() as conn:
        schema = conn.exec_driver_sql(
            "SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = to_regclass('sidequest_jobs')"
        ).scalar()
    waiting = asleep(backend, [queue])
    assert listening(backend).channel == channel_for(str(schema))
    created = backend.create_new_job(job(queue))
    assert waiting.result(WAKE_TIMEOUT_S + 10) == [queue]
    backend.update_job(created.id, state="canceled", canceled_at=datetime.now(UTC))


def test_rolling_0007_back_drops_the_triggers_and_their_functions(quiet: SQLBackend, pg_engine: sa.Engine) -> None:
    def ours() -> tuple[list[str], list[str]]:
        with pg_engine.connect() as conn:
            triggers = conn.scalars(
                sa.text(
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                    "AND tgrelid = to_regclass(quote_ident(:schema) || '.sidequest_jobs') ORDER BY tgname"
                ),
                {"schema": quiet.schema},
            ).all()
            functions = conn.scalars(
                sa.text(
                    "SELECT proname FROM pg_proc WHERE pronamespace = to_regnamespace(quote_ident(:schema)) "
                    "ORDER BY proname"
                ),
                {"schema": quiet.schema},
            ).all()
        return list(triggers), list(functions)

    names = ["sidequest_jobs_notify_inserted", "sidequest_jobs_notify_waiting"]
    assert ours() == (names, names)
    assert quiet.rollback_migration() == "0008"
    assert ours() == (names, names)
    assert quiet.rollback_migration() == "0007"
    assert ours() == ([], [])
    assert quiet.migrate() == ["0007", "0008"]
    assert ours() == (names, names)


# -- the listening connection ---------------------------------------------------------------


def listeners(pg_engine: sa.Engine, name: str) -> set[int]:
    """The sessions of ``name`` whose last statement was a LISTEN: listening connections."""
    with pg_engine.connect() as conn:
        query = sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :name AND query LIKE 'LISTEN %'")
        return set(conn.scalars(query, {"name": name}))


@pytest.mark.parametrize("asynchronous", [False, True], ids=["threads", "tasks"])
def test_every_wait_of_a_backend_shares_one_listening_connection(
    postgres_url: str, new_schema: Callable[..., str], pg_engine: sa.Engine, hang_guard: str, asynchronous: bool
) -> None:
    name = f"sq-listen-{uuid.uuid4().hex[:12]}"
    make = BackendFactory(asynchronous=asynchronous)
    with make(postgres_url, schema=new_schema(), connect_args={"options": hang_guard, "application_name": name}) as backend:
        backend.migrate()
        backend.poll_interval = NO_POLLING_S
        first = asleep(backend, [QUEUE])
        waits = [first, *(started(lambda i=i: backend.wait_for_jobs([f"q{i}", QUEUE], WAKE_TIMEOUT_S)) for i in range(7))]
        time.sleep(SETTLE_S)
        assert not any(waiting.done() for waiting in waits)
        assert len(listeners(pg_engine, name)) == 1
        backend.create_new_job(job())
        assert [waiting.result(WAKE_TIMEOUT_S + 10) for waiting in waits] == [[QUEUE]] * 8
        assert len(listeners(pg_engine, name)) == 1
    wait_gone(pg_engine, name, sessions(pg_engine, name))


def test_a_terminated_listening_connection_comes_back_and_waits_poll_meanwhile(
    make_backend: Callable[..., SQLBackend],
    new_schema: Callable[..., str],
    pg_engine: sa.Engine,
    hang_guard: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"sq-relisten-{uuid.uuid4().hex[:12]}"
    backend = make_backend(new_schema(), connect_args={"options": hang_guard, "application_name": name})
    backend.migrate()
    backend.poll_interval = 0.1
    with caplog.at_level(logging.INFO, logger="sidequest_sql.listener"):
        waiting = asleep(backend, [QUEUE])
        [ended] = listeners(pg_engine, name)
        assert listener_pid(backend) == ended
        terminate(pg_engine, {ended})
        wait_gone(pg_engine, name, {ended})
        # Woken by polling, or by the connection that replaces the ended one.
        backend.create_new_job(job())
        assert waiting.result(WAKE_TIMEOUT_S) == [QUEUE]

        backend.poll_interval = NO_POLLING_S
        replacement = listener_pid(backend, instead_of=ended)
        assert replacement != ended and listeners(pg_engine, name) == {replacement}
        waiting = asleep(backend, ["after"])
        backend.create_new_job(job("after"))
        assert waiting.result(WAKE_TIMEOUT_S + 10) == ["after"]
    said = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert [level for level, _ in said] == ["WARNING", "INFO"], said
    assert "the listening connection failed" in said[0][1] and "hears notifications again" in said[1][1]


def _wait_in_a_child(backend: SQLBackend, ready: Any, results: Any) -> None:
    backend.engine.dispose(close=False)  # SQLAlchemy's pool: the parent's connections are not the child's
    ready.set()
    results.put(backend.wait_for_jobs(["child"], WAKE_TIMEOUT_S))
    results.put(listener_pid(backend))


def test_a_forked_child_listens_on_a_connection_of_its_own_and_leaves_the_parents_alone(
    quiet: SQLBackend, pg_engine: sa.Engine
) -> None:
    parents = asleep(quiet, ["parent"])
    parent_pid = listener_pid(quiet)
    context = multiprocessing.get_context("fork")
    ready, results = context.Event(), context.Queue()
    child = context.Process(target=_wait_in_a_child, args=(quiet, ready, results))
    child.start()
    try:
        assert ready.wait(WAKE_TIMEOUT_S)
        time.sleep(SETTLE_S * 5)
        quiet.create_new_job(job("child"))
        assert results.get(timeout=WAKE_TIMEOUT_S + 10) == ["child"]
        assert results.get(timeout=WAKE_TIMEOUT_S) != parent_pid
    finally:
        child.join(WAKE_TIMEOUT_S)
    assert child.exitcode == 0
    # The parent's listener went on listening through the child's life and end.
    assert listener_pid(quiet) == parent_pid
    assert quiet.execution.wakeups.listener is not None and quiet.execution.wakeups.listener.state is State.LISTENING
    quiet.create_new_job(job("parent"))
    assert parents.result(WAKE_TIMEOUT_S) == ["parent"]
    with pg_engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": parent_pid}) == 1


def test_listening_resumes_by_itself_after_a_server_restart(
    spare_cluster: SpareCluster, spare_schema: Callable[[], str], caplog: pytest.LogCaptureFixture
) -> None:
    with sq.create_backend(spare_cluster.url(), schema=spare_schema(), connect_args=GUARD) as backend:
        backend.migrate()
        backend.poll_interval = NO_POLLING_S
        with caplog.at_level(logging.INFO, logger="sidequest_sql.listener"):
            backend.wait_for_jobs(["warm-up"], 0.001)
            before = listener_pid(backend)
            spare_cluster.restart()
            listener_pid(backend, instead_of=before)
            waiting = asleep(backend, [QUEUE])
            backend.create_new_job(job())
            assert waiting.result(WAKE_TIMEOUT_S + 10) == [QUEUE]
    said = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert [level for level, _ in said] == ["WARNING", "INFO"], said
