"""Deleting finished jobs in bounded batches, counted as they go.

Each batch is one ``delete_finished_jobs(cutoff, limit=batch_size)`` call,
its own transaction; ``finished_before`` estimates the total up front for
the progress bar.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sidequest_sql.base import SQLBackend

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
    while deleted := backend.delete_finished_jobs(cutoff, limit=batch_size):
        yield deleted
        if deleted < batch_size:
            return
