"""``wait_for_jobs`` behind PgBouncer in transaction pooling mode: no notification arrives, and waits poll.

LISTEN runs on whichever server connection the statement's transaction gets,
and stays there once PgBouncer takes that connection back; the notifications
the triggers send then reach a server connection no client is linked to,
and PgBouncer drops them (its log: "got packet 'A' from server when not
linked"). The backend finds that out as it starts listening: its probe does
not come back. It says so in one warning and its waits poll, so they still
wake for every job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

import sidequest_sql as sq
from sidequest_sql import listener
from sidequest_sql.base import SQLBackend
from sidequest_sql.listener import State
from sidequest_sql.testing.waiting import started, until

pytestmark = [pytest.mark.postgres, pytest.mark.pgbouncer]

QUEUE = "behind-pgbouncer"
WAKE_TIMEOUT_S = 20.0


def test_waits_poll_and_say_so_once_where_notifications_cannot_arrive(
    make_backend: Callable[..., SQLBackend],
    pgbouncer_engine_options: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(listener, "PROBE_TIMEOUT_S", 0.5)
    backend = make_backend(**pgbouncer_engine_options)
    backend.poll_interval = 0.05
    wakeups = backend.execution.wakeups
    with caplog.at_level(logging.INFO, logger="sidequest_sql.listener"):
        assert backend.wait_for_jobs([QUEUE], 0.2) == []
        until(lambda: wakeups.listener is not None and wakeups.listener.state is State.UNHEARD, "given up on")
        assert not wakeups.listening
        for _ in range(3):
            waiting = started(lambda: backend.wait_for_jobs([QUEUE], WAKE_TIMEOUT_S))
            time.sleep(0.2)
            backend.create_new_job(sq.NewJobData(queue=QUEUE, script="jobs.js", job_class="Wake"))
            assert waiting.result(WAKE_TIMEOUT_S + 10) == [QUEUE]
            [claimed] = backend.claim_pending_job(QUEUE)
            backend.update_job(claimed.id, state="completed")
        assert backend.wait_for_jobs([QUEUE], 0.2) == []
    said = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert len(said) == 1 and said[0][0] == "WARNING", said
    assert "do not reach the listening connection" in said[0][1] and "PgBouncer" in said[0][1]
