"""The worker's checked writes, carried through a database that goes away.

Every write after a claim is a ``transition_jobs`` (each change applies only
while its job is still as the worker left it). While the database is
unreachable the write is tried again, pausing longer each time; shutting
down, it is given up after ``ATTEMPTS_WHEN_CLOSING`` tries, and its jobs,
left running or claimed in the store, come back through stale release.
"""

from __future__ import annotations

import asyncio
import logging

from sidequest_sql.errors import ConnectionLostError, DatabaseUnavailableError
from sidequest_sql.records import JobData, JobTransition

from .store import Store

log = logging.getLogger("sidequest_sql.worker")

MAX_PAUSE_S = 1.0
"""The longest pause between attempts while the database is unreachable."""
ATTEMPTS_WHEN_CLOSING = 30
"""Shutting down, the last outcomes are given up after this many failed writes (their
jobs stay running in the store, and stale release runs them again)."""


async def pause(failures: int) -> None:
    """The pause after ``failures`` failed attempts in a row: 0.1 s, doubling up to ``MAX_PAUSE_S``."""
    await asyncio.sleep(min(0.1 * 2 ** min(failures - 1, 10), MAX_PAUSE_S))


class Writes:
    """``transition_jobs`` for the worker; ``closing`` once it shuts down."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.closing = False

    async def transition(self, changes: list[JobTransition]) -> list[JobData | None]:
        """``transition_jobs(changes)``, tried again while the database is unreachable.

        A write whose connection broke may have been applied: tried again, its
        precondition no longer holds, so each job it then misses is read back
        and counted as written if it is as the write would have left it.
        """
        failures = 0
        lost_once = False
        while True:
            try:
                written: list[JobData | None] = await self._store.call("transition_jobs", changes)
                break
            except DatabaseUnavailableError as exc:
                failures += 1
                lost_once = lost_once or isinstance(exc, ConnectionLostError)
                if self.closing and failures >= ATTEMPTS_WHEN_CLOSING:
                    log.error("giving up writing %d job change(s) (%s): stale release will run them again",
                              len(changes), exc)  # fmt: skip
                    return [None] * len(changes)
                log.warning("writing %d job change(s) failed (%s); trying again", len(changes), exc)
                await pause(failures)
        if lost_once:
            for i, (change, job) in enumerate(zip(changes, written)):
                if job is None:
                    written[i] = await self._applied_before(change)
        return written

    async def _applied_before(self, change: JobTransition) -> JobData | None:
        job: JobData | None = await self._store.call("get_job", change.job_id)
        if job is None:
            return None
        expected = change.changes
        if job.state != expected.get("state", change.expect_state):
            return None
        if job.claimed_by != expected.get("claimed_by", change.expect_claimed_by):
            return None
        if change.expect_attempt is not None and job.attempt != expected.get("attempt", change.expect_attempt):
            return None
        return job
