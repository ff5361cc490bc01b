"""The no-op job of ``bench.drain``: records when it started, relative to when it was enqueued."""

from __future__ import annotations

import time

import sidequest_sql as sq

RECORDS: list[tuple[int, float]] = []
"""(job id, enqueue-to-start milliseconds) of every job this process ran."""


class NoOp(sq.Job):
    async def run(self, enqueued: float) -> None:
        RECORDS.append((self.job.id, (time.time() - enqueued) * 1000))
