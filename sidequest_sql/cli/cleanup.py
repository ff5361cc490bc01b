"""Deleting finished jobs in bounded batches with the library's own operations.

``delete_finished_jobs(cutoff)`` deletes everything finished before
``cutoff`` in one statement. To keep each transaction small, ``batches``
walks a series of rising cutoffs up to the real one, sizing each step with
``count_jobs(until=...)`` so that about ``batch_size`` jobs fall in it, and
calls ``delete_finished_jobs`` once per step. The count and the delete look
at a job's finish time in slightly different ways (the count uses the
first of completed/failed/canceled that is set), so a batch is bounded
approximately; the last call always uses the real cutoff, so nothing before
it is left behind. Jobs that finished at one same instant are never split.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SMALLEST_STEP = timedelta(microseconds=1)


def finished_before(backend: SQLBackend, moment: datetime) -> int:
    """About how many finished jobs a ``delete_finished_jobs(moment)`` would delete."""
    counts = backend.count_jobs(until=moment - SMALLEST_STEP)
    return counts.completed + counts.failed + counts.canceled


def cutoff_before(now: datetime, age: timedelta) -> datetime:
    """``now - age``, clamped to the oldest time there is."""
    try:
        return now - age
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def batches(backend: SQLBackend, cutoff: datetime, batch_size: int) -> Iterator[int]:
    """Delete finished jobs older than ``cutoff``; yield how many each batch deleted."""
    remaining = finished_before(backend, cutoff)
    if remaining <= batch_size:
        yield backend.delete_finished_jobs(cutoff)
        return
    low = min(EPOCH, cutoff)
    step = max((cutoff - low) * batch_size / remaining, SMALLEST_STEP)
    while low < cutoff:
        high = low + step if step < cutoff - low else cutoff
        found = finished_before(backend, high)
        while found > batch_size and high - low > SMALLEST_STEP:
            step = max(step / 2, SMALLEST_STEP)
            high = low + step
            found = finished_before(backend, high)
        if found:
            yield backend.delete_finished_jobs(high)
        if found * 2 < batch_size:
            step = min(step * 2, cutoff - low)
        low = high
    yield backend.delete_finished_jobs(cutoff)
