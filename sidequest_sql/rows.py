"""Rows and records: typed records from the rows the database returns, and the row of a new job."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .fields import JOB_FIELDS, check_changes
from .records import JobCounts, JobData, NewJobData, QueueConfig
from .schema import jobs, queues

_JOB_KEYS = tuple(column.key for column in jobs.c)
# Where each of JobData's fields, in its own order, is in a row of the table.
_JOB_FIELD_POSITIONS = tuple(_JOB_KEYS.index(field.name) for field in dataclasses.fields(JobData))
_QUEUE_KEYS = tuple(column.key for column in queues.c)


def job_from_row(row: Sequence[Any]) -> JobData:
    """A job from every column of ``jobs`` in table order: a Row, or a driver's tuple."""
    return JobData(*map(row.__getitem__, _JOB_FIELD_POSITIONS))


def queue_from_row(row: Sequence[Any]) -> QueueConfig:
    """A queue from every column of ``queues`` in table order."""
    return QueueConfig(**dict(zip(_QUEUE_KEYS, row, strict=True)))


def counts_fields(counts: JobCounts) -> dict[str, int]:
    """The seven numbers of ``counts`` by name, to build a ``JobCountsAt`` from."""
    return {name: getattr(counts, name) for name in JobCounts.__dataclass_fields__}


def new_job_values(job: NewJobData, now: datetime, argument: str, *, max_json_depth: int) -> dict[str, Any]:
    """The row of a new job enqueued at ``now``, its fields checked (``argument``
    names it in errors; JSON at most ``max_json_depth`` deep): waiting, attempt
    0, available now unless it says when."""
    if not isinstance(job, NewJobData):
        raise TypeError(f"{argument} must be a NewJobData, not {type(job).__name__}")
    given = {
        "queue": job.queue,
        "script": job.script,
        "job_class": job.job_class,
        "args": job.args,
        "constructor_args": job.constructor_args,
        "timeout": job.timeout,
        "max_attempts": job.max_attempts,
        "available_at": now if job.available_at is None else job.available_at,
        "unique_digest": job.unique_digest,
        "uniqueness_config": job.uniqueness_config,
        "retry_delay": job.retry_delay,
        "backoff_strategy": job.backoff_strategy,
        "priority": job.priority,
    }
    check_changes(JOB_FIELDS, given, "job", max_json_depth=max_json_depth)
    # What the backend sets itself needs no check (``now`` had its own).
    return {**given, "state": "waiting", "attempt": 0, "inserted_at": now}
