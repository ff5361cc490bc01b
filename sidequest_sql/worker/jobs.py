"""What a job author writes: a ``Job`` subclass, and the outcomes ``run`` may ask for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sidequest_sql.records import JobData


class Job:
    """A unit of work: subclass it and define ``run``.

    The worker builds the class with the job's ``constructor_args`` and calls
    ``run(*args)``; what ``run`` returns (a JSON value) becomes the job's
    ``result``. ``async def run`` runs on the worker's event loop, a plain
    ``def run`` in a thread of the worker's. ``self.job`` is the ``JobData``
    being run (its ``attempt`` already counts this run).

    A job may run more than once (see "at least once" in the worker guide):
    make ``run`` safe to repeat.
    """

    job: JobData

    def run(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define run()")


class Outcome(Exception):
    """Raised inside ``run`` to ask for an outcome other than completed or the usual retry."""


class Retry(Outcome):
    """Retry this job: after ``delay_ms`` if given, else after its backoff. Uses an attempt:
    with none left, the job fails."""

    def __init__(self, delay_ms: int | None = None, reason: str | None = None) -> None:
        if delay_ms is not None and (isinstance(delay_ms, bool) or not isinstance(delay_ms, int) or delay_ms < 0):
            raise ValueError(f"delay_ms must be an int >= 0 or None, not {delay_ms!r}")
        self.delay_ms = delay_ms
        self.reason = reason or "retry requested"
        super().__init__(self.reason)


class Snooze(Outcome):
    """Run this job again after ``delay_ms``, without using an attempt."""

    def __init__(self, delay_ms: int) -> None:
        if isinstance(delay_ms, bool) or not isinstance(delay_ms, int) or delay_ms < 0:
            raise ValueError(f"delay_ms must be an int >= 0, not {delay_ms!r}")
        self.delay_ms = delay_ms
        super().__init__(f"snoozed for {delay_ms} ms")


class Fail(Outcome):
    """Fail this job now, whatever attempts it has left."""

    def __init__(self, reason: str = "failed on request") -> None:
        self.reason = reason
        super().__init__(reason)
