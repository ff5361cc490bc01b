"""What a run's end means for its job: the outcome, and the fields it changes.

Pure functions of the job, how its run ended and "now" (``transitions``
holds the field changes themselves, shared with the command line): a value
completes the job; ``Retry``, ``Snooze`` and ``Fail`` ask for their outcome;
any other exception, a job that cannot be loaded, or a time-out is a failed
attempt, retried with backoff or failed once attempts are used up; a job that
cannot be called with its stored arguments, or whose result is not JSON,
fails at once.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sidequest_sql import transitions
from sidequest_sql.jsonvalues import check_json

from .jobs import Fail, Retry, Snooze
from .loading import MalformedJob

if TYPE_CHECKING:
    from datetime import datetime

    from sidequest_sql.records import JobData


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: ``kind`` (completed, retried, failed, snoozed, given back), the
    changes to write, and a short description for the log."""

    kind: str
    changes: dict[str, Any]
    detail: str = ""


def completed(job: JobData, value: Any, now: datetime, max_json_depth: int) -> Outcome:
    """The job completed with ``value``, or failed if the store could not keep it
    (``max_json_depth``: the store's)."""
    try:
        check_json(value, "the result", max_json_depth)
    except (TypeError, ValueError) as exc:
        message = f"{job.job_class} returned a result that cannot be stored as JSON: {exc}"
        return Outcome("failed", transitions.failed(job, transitions.error_entry(job, "ResultError", message), now), message)
    return Outcome("completed", transitions.completed(value, now))


def raised(job: JobData, error: BaseException, now: datetime) -> Outcome:
    """The outcome of a run (or a load) that raised ``error``."""
    if isinstance(error, Snooze):
        return Outcome("snoozed", transitions.snoozed(job, now, error.delay_ms), f"snoozed {error.delay_ms} ms")
    if isinstance(error, Fail):
        entry = transitions.error_entry(job, "Fail", error.reason)
        return Outcome("failed", transitions.failed(job, entry, now), error.reason)
    if isinstance(error, MalformedJob):
        entry = transitions.error_entry(job, "MalformedJob", str(error))
        return Outcome("failed", transitions.failed(job, entry, now), str(error))
    if isinstance(error, Retry):
        entry = transitions.error_entry(job, "Retry", error.reason)
        return _retried(job, transitions.retried(job, entry, now, error.delay_ms), error.reason)
    message = str(error) or type(error).__name__
    stack = "".join(traceback.format_exception(error)).rstrip()
    entry = transitions.error_entry(job, type(error).__name__, message, stack)
    return _retried(job, transitions.retried(job, entry, now), f"{type(error).__name__}: {message}")


def timed_out(job: JobData, now: datetime) -> Outcome:
    message = f"Job timed out after {job.timeout}ms"
    entry = transitions.error_entry(job, "TimeoutError", message)
    return _retried(job, transitions.retried(job, entry, now), message)


def interrupted(job: JobData, now: datetime) -> Outcome:
    """A job still running when shutdown's grace ran out: back to waiting, its attempt
    not counted, as if snoozed for no time."""
    return Outcome("given back", transitions.snoozed(job, now, 0), "interrupted by shutdown")


def _retried(job: JobData, changes: dict[str, Any], detail: str) -> Outcome:
    if changes["state"] == "failed":
        return Outcome("failed", changes, f"{detail} (attempt {job.attempt} of {job.max_attempts}, none left)")
    return Outcome("retried", changes, f"{detail} (attempt {job.attempt} of {job.max_attempts})")
