"""A dialect's own ``JobNotifier`` plugged into ``job_notifier``, and the listener's states, without a server.

SQLite has no notifications; here a dialect gives it some, through an
in-process ``Bus`` standing for the database's mechanism, to show that the
hook is all a dialect needs for its waits to be woken rather than poll, and
to drive the listening connection through what a real one meets: probes
that never come back (as behind PgBouncer), a connection that goes silent,
one that breaks, and ``close()``.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Executable, literal, select

from sidequest_sql import NewJobData, listener
from sidequest_sql.dialects.sqlite import SQLiteBackend
from sidequest_sql.hooks import JobNotifier
from sidequest_sql.listener import State
from sidequest_sql.testing.waiting import started, until

QUEUE = "bussed"
TIMEOUT_S = 20.0


class Bus:
    """What the database would carry: notifications, which may stop coming or fail."""

    def __init__(self) -> None:
        self.arrived: queue.Queue[tuple[str, str]] = queue.Queue()
        self.deaf = False
        self.broken = False
        self.connections = 0

    def send(self, payload: str) -> None:
        if not self.deaf:
            self.arrived.put(("jobs", payload))


class BusNotifier(JobNotifier):
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def listen(self, connection: Any, schema: str | None) -> str:
        self.bus.connections += 1
        return "jobs"

    def probe(self, channel: str, payload: str) -> Executable:
        self.bus.send(payload)
        return select(literal(1))

    def receive(self, connection: Any, timeout: float) -> list[tuple[str, str]]:
        if self.bus.broken:
            raise ConnectionError("the bus broke")
        try:
            return [self.bus.arrived.get(timeout=timeout)]
        except queue.Empty:
            return []


@pytest.fixture
def bus() -> Bus:
    return Bus()


@pytest.fixture
def backend(tmp_path: Path, bus: Bus, monkeypatch: pytest.MonkeyPatch) -> Iterator[SQLiteBackend]:
    monkeypatch.setattr(listener, "PROBE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(listener, "FIRST_RETRY_S", 0.05)

    class BussedBackend(SQLiteBackend):
        def job_notifier(self) -> JobNotifier | None:
            return BusNotifier(bus)

    store = BussedBackend(f"sqlite:///{tmp_path / 'bussed.sqlite'}")
    store.migrate()
    try:
        yield store
    finally:
        store.close()


def state(backend: SQLiteBackend) -> State | None:
    found = backend.execution.wakeups.listener
    return None if found is None else found.state


def woken_by(backend: SQLiteBackend, bus: Bus) -> list[str]:
    """A wait's answer to a job enqueued, then announced on the bus, while it sleeps."""
    waiting = started(lambda: backend.wait_for_jobs([QUEUE, "other"], TIMEOUT_S))
    time.sleep(0.1)
    assert not waiting.done()
    backend.create_new_job(NewJobData(queue=QUEUE, script="s.py", job_class="Bussed"))
    bus.send(QUEUE)
    woken = waiting.result(TIMEOUT_S + 5)
    backend.update_job(backend.claim_pending_job(QUEUE)[0].id, state="completed")
    return woken


def test_waits_are_woken_by_the_dialect_s_notifier_not_by_polling(backend: SQLiteBackend, bus: Bus) -> None:
    backend.poll_interval = 3600
    assert backend.wait_for_jobs([QUEUE], 0.01) == []
    until(lambda: backend.execution.wakeups.listening, "listening")
    assert woken_by(backend, bus) == [QUEUE]
    # A notification for a queue nobody waits on, or a spurious one, wakes nothing that returns.
    bus.send("other")
    assert backend.wait_for_jobs([QUEUE], 0.3) == []
    assert bus.connections == 1


def test_probes_that_never_come_back_leave_the_waits_polling_with_one_warning(
    backend: SQLiteBackend, bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    bus.deaf = True
    backend.poll_interval = 0.05
    with caplog.at_level(logging.DEBUG, logger="sidequest_sql.listener"):
        assert backend.wait_for_jobs([QUEUE], 0.01) == []
        until(lambda: state(backend) is State.UNHEARD, "given up on")
        assert woken_by(backend, bus) == [QUEUE]
        assert woken_by(backend, bus) == [QUEUE]
    assert [record.levelname for record in caplog.records] == ["WARNING"]


def test_a_connection_gone_silent_is_replaced(
    backend: SQLiteBackend, bus: Bus, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listener, "RECHECK_S", 0.3)
    backend.poll_interval = 0.05
    with caplog.at_level(logging.INFO, logger="sidequest_sql.listener"):
        backend.wait_for_jobs([QUEUE], 0.01)
        until(lambda: backend.execution.wakeups.listening, "listening")
        bus.deaf = True
        until(lambda: state(backend) is State.LOST, "lost")
        assert woken_by(backend, bus) == [QUEUE]  # by polling
        bus.deaf = False
        until(lambda: backend.execution.wakeups.listening, "listening again")
        backend.poll_interval = 3600
        assert woken_by(backend, bus) == [QUEUE]
    said = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert [level for level, _ in said] == ["WARNING", "INFO"], said
    assert "went silent" in said[0][1]
    assert bus.connections >= 2


def test_a_broken_connection_is_tried_again_until_it_works(
    backend: SQLiteBackend, bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    backend.poll_interval = 0.05
    with caplog.at_level(logging.DEBUG, logger="sidequest_sql.listener"):
        backend.wait_for_jobs([QUEUE], 0.01)
        until(lambda: backend.execution.wakeups.listening, "listening")
        bus.broken = True
        until(lambda: bus.connections >= 3, "tried again")
        assert state(backend) is State.LOST
        assert woken_by(backend, bus) == [QUEUE]
        bus.broken = False
        until(lambda: backend.execution.wakeups.listening, "listening again")
    levels = [record.levelname for record in caplog.records]
    assert levels[0] == "WARNING" and levels[-1] == "INFO" and set(levels[1:-1]) <= {"DEBUG"}, levels


def test_close_stops_the_listener_and_a_later_wait_starts_another(backend: SQLiteBackend, bus: Bus) -> None:
    backend.wait_for_jobs([QUEUE], 0.01)
    until(lambda: backend.execution.wakeups.listening, "listening")
    stopped = backend.execution.wakeups.listener
    assert stopped is not None
    backend.close()
    assert backend.execution.wakeups.listener is None
    until(lambda: stopped.state is State.STOPPED, "stopped")
    backend.poll_interval = 3600
    assert woken_by(backend, bus) == [QUEUE]
    assert bus.connections == 2

