"""Jobs the worker tests enqueue; a worker finds them as module ``sample_jobs``."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import sidequest_sql as sq

EVENTS: list[tuple[str, int, float]] = []
"""(what, job id, time.monotonic()) as in-process jobs start and end."""
_LOCK = threading.Lock()


def event(what: str, job_id: int) -> None:
    with _LOCK:
        EVENTS.append((what, job_id, time.monotonic()))


class Echo(sq.Job):
    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def run(self, value: Any) -> Any:
        return {"echo": f"{self.prefix}{value}", "attempt": self.job.attempt}


class AsyncEcho(sq.Job):
    async def run(self, value: Any) -> Any:
        await asyncio.sleep(0)
        return value


def add(a: int, b: int) -> int:
    return a + b


class Flaky(sq.Job):
    """Raises until its attempt ``succeed_at``."""

    def run(self, succeed_at: int) -> str:
        if self.job.attempt < succeed_at:
            raise RuntimeError(f"attempt {self.job.attempt} breaks")
        return "fine"


class AsksToRetry(sq.Job):
    def run(self, delay_ms: int | None) -> None:
        raise sq.Retry(delay_ms, reason="not yet")


class Snoozes(sq.Job):
    def run(self, delay_ms: int) -> str:
        if self.job.attempt == 1 and self.job.available_at == self.job.inserted_at:
            raise sq.Snooze(delay_ms)
        return "woke"


class Fails(sq.Job):
    def run(self) -> None:
        raise sq.Fail("no point retrying")


class Sleeps(sq.Job):
    """A sync job: sleeps ``seconds`` in small steps (so a stop lands between them)."""

    def run(self, seconds: float) -> str:
        event("start", self.job.id)
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            event("end", self.job.id)
        return "slept"


class AsyncSleeps(sq.Job):
    async def run(self, seconds: float) -> str:
        event("start", self.job.id)
        try:
            await asyncio.sleep(seconds)
        finally:
            event("end", self.job.id)
        return "slept"


class ReturnsAnObject(sq.Job):
    def run(self) -> Any:
        return object()


class Pid(sq.Job):
    """Sleeps a little and returns the process id of the worker that ran it."""

    def run(self, seconds: float) -> int:
        time.sleep(seconds)
        return os.getpid()
