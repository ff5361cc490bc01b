"""How an idle worker sleeps: on the store's wake-up, never by spinning.

A worker with free slots and nothing to claim sleeps in the store's
``wait_for_jobs`` over the queues it could take a job from (active, with
free slots): LISTEN/NOTIFY on Postgres, the backend's ``poll_interval``
elsewhere. A queue that is full or paused is left out, since a claimable
job there would end every wait at once and the worker would spin.

At most one such wait runs. The next idle spell takes it over if its
queues still cover the ones wanted (a wait over more queues can only end
early, which costs one claim round, never a missed job); otherwise it is
dropped and a new one started. An async backend's dropped wait is
cancelled. A sync backend's runs in a daemon thread of its own until its
time-out (it only reads, and so cannot be left half done), so that a worker
that stops never waits for it and the process can exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from .store import Store

log = logging.getLogger("sidequest_sql.worker")


class IdleWait:
    """The worker's one ``wait_for_jobs`` at a time (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queues: frozenset[str] = frozenset()
        self._waiting: asyncio.Future[list[str]] | None = None

    def start(self, queues: list[str], timeout: float) -> asyncio.Future[list[str]]:
        """The wait covering ``queues``: the one running if it does, else a new one."""
        waiting = self._waiting
        if waiting is not None and not waiting.done() and self._queues.issuperset(queues):
            return waiting
        self.drop()
        self._queues = frozenset(queues)
        self._waiting = waiting = self._begin(queues, timeout)
        waiting.add_done_callback(_report_failure)
        return waiting

    def drop(self) -> None:
        """Give up the running wait (an async backend's is cancelled)."""
        if self._waiting is not None and not self._waiting.done():
            self._waiting.cancel()
        self._waiting = None

    async def close(self) -> None:
        """Drop the running wait and, on an async backend, see it end."""
        waiting = self._waiting
        self.drop()
        if waiting is not None and self._store.asynchronous:
            await asyncio.gather(waiting, return_exceptions=True)

    def _begin(self, queues: list[str], timeout: float) -> asyncio.Future[list[str]]:
        backend: Any = self._store.backend
        if self._store.asynchronous:
            return asyncio.ensure_future(backend.wait_for_jobs(queues, timeout))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[str]] = loop.create_future()

        def wait() -> None:
            try:
                outcome: tuple[bool, Any] = (True, backend.wait_for_jobs(queues, timeout))
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, which reports it
                outcome = (False, exc)
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, outcome)

        threading.Thread(target=wait, name="sidequest-idle-wait", daemon=True).start()
        return future


def _settle(future: asyncio.Future[list[str]], outcome: tuple[bool, Any]) -> None:
    if future.done():  # dropped meanwhile
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _report_failure(future: asyncio.Future[list[str]]) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.warning("waiting for jobs failed (%s: %s); looking again at the next claim", type(exc).__name__, exc)
