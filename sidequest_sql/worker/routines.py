"""The worker's housekeeping, as in Sidequest's engine: release stale jobs, delete old finished ones.

Each runs on an interval in every worker. Any number of workers may run them
at once: a release is a checked write (the job must still be in the state,
claim and attempt it was found stale in, else it is left alone) and a
delete of what is already deleted deletes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sidequest_sql import transitions
from sidequest_sql.errors import DatabaseUnavailableError
from sidequest_sql.records import JobTransition

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("sidequest_sql.worker")


async def release_stale(store: Store, max_stale_ms: int, max_claimed_ms: int) -> int:
    """Put stale jobs back as the CLI's ``stale --release`` does; return how many were released."""
    stale = await store.call("stale_jobs", max_stale_ms, max_claimed_ms)
    if not stale:
        return 0
    now = store.now()
    changes = [
        JobTransition(job.id, job.state, transitions.released(job, now),
                      expect_claimed_by=job.claimed_by, expect_attempt=job.attempt)
        for job in stale
    ]
    released = [job for job in await store.call("transition_jobs", changes) if job is not None]
    if released:
        log.warning("released %d stale job(s): %s", len(released), ", ".join(str(job.id) for job in released))
    return len(released)


async def clean_up(store: Store, older_than: timedelta) -> int:
    """Delete jobs that finished more than ``older_than`` ago; return how many."""
    deleted: int = await store.call("delete_finished_jobs", store.now() - older_than)
    if deleted:
        log.info("deleted %d job(s) finished more than %s ago", deleted, older_than)
    return deleted


async def every(seconds: float, name: str, routine: Callable[[], Awaitable[object]]) -> None:
    """Run ``routine`` now and then every ``seconds``, until cancelled; its errors are logged."""
    while True:
        try:
            await routine()
        except DatabaseUnavailableError as exc:
            log.warning("%s skipped: %s", name, exc)
        except Exception:
            log.exception("%s failed", name)
        await asyncio.sleep(seconds)
