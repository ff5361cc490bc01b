"""What each step of a job's life changes, as pure functions of the job and "now".

Each returns the fields to change, ready for a checked write
(``transition_job``, ``JobTransition``); the worker and the command line's
``stale --release`` (``cli.transitions``) share them. They follow Sidequest's own transitions (its core
package's ``RunTransition``, ``CompleteTransition``, ``RetryTransition``,
``SnoozeTransition``, ``FailTransition``): the same fields, the same error
entries (``name``, ``message``, ``stack``, then ``attempt``,
``attempted_at``, ``attempt_by``, so that Sidequest's dashboard shows them),
and the same backoff.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import JobData

DEFAULT_RETRY_DELAY_MS = 1_000
MAX_RETRY_DELAY_MS = 3_600_000
STALE_MESSAGE = "Stale job released for retry"


def retry_delay_ms(attempt: int, retry_delay: int | None, backoff_strategy: str | None, jitter: float = 1.0) -> int:
    """Milliseconds before a job that failed attempt ``attempt`` is available again.

    As Sidequest computes it: ``fixed`` waits ``retry_delay`` (default one
    second) every time; anything else doubles it per attempt, times
    ``jitter``, rounded, up to an hour. Sidequest's jitter is uniform in
    [0.5, 1.5) (``draw_jitter``); 1.0 gives the deterministic middle.
    """
    base = DEFAULT_RETRY_DELAY_MS if retry_delay is None else max(retry_delay, 0)
    if backoff_strategy == "fixed":
        return base
    return round(min(base * 2 ** min(max(attempt - 1, 0), 32) * jitter, MAX_RETRY_DELAY_MS))


def draw_jitter() -> float:
    """Sidequest's backoff jitter: ``Math.random() + 0.5``."""
    return random.random() + 0.5


def error_entry(job: JobData, name: str | None, message: str, stack: str | None = None) -> dict[str, Any]:
    """One entry of a job's ``errors``, for the attempt it is on (its text made storable)."""
    entry: dict[str, Any] = {"name": name, "message": storable(message)}
    if stack is not None:
        entry["stack"] = storable(stack)
    entry.update(
        attempt=job.attempt,
        attempted_at=job.attempted_at.isoformat() if job.attempted_at else None,
        attempt_by=job.claimed_by,
    )
    return entry


def storable(text: str) -> str:
    """``text`` with what no database stores (NUL, lone surrogates) written as escapes:
    an exception's message is whatever the job put in it."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def with_error(job: JobData, entry: dict[str, Any]) -> list[Any]:
    """The job's ``errors`` with ``entry`` appended (a stored non-list kept as the first entry)."""
    if job.errors is None:
        return [entry]
    if isinstance(job.errors, list):
        return [*job.errors, entry]
    return [job.errors, entry]


def started(job: JobData, now: datetime) -> dict[str, Any]:
    """A claimed job starts: running, one more attempt, ``attempted_at`` now."""
    return {"state": "running", "attempt": job.attempt + 1, "attempted_at": now}


def completed(result: Any, now: datetime) -> dict[str, Any]:
    return {"state": "completed", "result": result, "completed_at": now}


def failed(job: JobData, entry: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"state": "failed", "failed_at": now, "errors": with_error(job, entry)}


def retried(job: JobData, entry: dict[str, Any], now: datetime, delay_ms: int | None = None) -> dict[str, Any]:
    """Back to waiting after ``delay_ms`` (else the job's backoff), or failed once its
    attempts are used up; the error recorded either way."""
    if job.attempt >= job.max_attempts:
        return failed(job, entry, now)
    if delay_ms is None:
        delay_ms = retry_delay_ms(job.attempt, job.retry_delay, job.backoff_strategy, draw_jitter())
    return {"state": "waiting", "available_at": now + timedelta(milliseconds=delay_ms), "errors": with_error(job, entry)}


def snoozed(job: JobData, now: datetime, delay_ms: int) -> dict[str, Any]:
    """Back to waiting after ``delay_ms`` without using an attempt: a running job's
    attempt is taken back."""
    changes: dict[str, Any] = {"state": "waiting", "available_at": now + timedelta(milliseconds=delay_ms)}
    if job.state == "running" and job.attempt > 0:
        changes["attempt"] = job.attempt - 1
    return changes


def released(job: JobData, now: datetime) -> dict[str, Any]:
    """A stale job put back, as Sidequest's engine releases it.

    A claimed job never started, so its attempt was not counted: it simply
    goes back to waiting. A running job's attempt was counted when it
    started: it is retried after its backoff if attempts are left, else it
    fails; either way a ``StaleJobError`` is recorded, as a worker would.
    The backoff is the deterministic middle of the jitter, so that an
    operator's command says when the job runs again.
    """
    if job.state == "claimed":
        return {"state": "waiting"}
    entry = error_entry(job, "StaleJobError", STALE_MESSAGE)
    return retried(job, entry, now, retry_delay_ms(job.attempt, job.retry_delay, job.backoff_strategy))


def given_back() -> dict[str, Any]:
    """A claimed job its worker will not start, back to waiting as before its claim."""
    return {"state": "waiting", "claimed_at": None, "claimed_by": None}
