"""``enqueue``: a job for a ``Job`` subclass or a function, named so a worker can import it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sidequest_sql.records import NewJobData

if TYPE_CHECKING:
    from sidequest_sql.aio import AsyncSQLBackend
    from sidequest_sql.base import SQLBackend


def job_name(job_class: type | Callable[..., Any]) -> tuple[str, str]:
    """``(script, job_class)`` of a job: its module's import path and its name there."""
    module = getattr(job_class, "__module__", None)
    name = getattr(job_class, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(name, str) or not callable(job_class):
        raise TypeError(f"job_class must be a sidequest_sql.Job subclass or a function, not {job_class!r}")
    if module == "__main__":
        raise ValueError(
            f"job_class {name} is defined in __main__, which a worker cannot import; "
            "define it in a module (app/jobs.py) and import it from there"
        )
    if "." in name or "<" in name:
        raise ValueError(f"job_class {name} is not at the top level of module {module}, so a worker cannot find it")
    return module, name


def enqueue(
    backend: SQLBackend | AsyncSQLBackend,
    job_class: type | Callable[..., Any],
    *args: Any,
    queue: str = "default",
    constructor_args: Sequence[Any] = (),
    max_attempts: int = 5,
    timeout: int | None = None,
    available_at: datetime | None = None,
    unique_digest: str | None = None,
    retry_delay: int | None = None,
    backoff_strategy: str = "exponential",
    priority: int = 0,
) -> Any:
    """Enqueue ``job_class(*constructor_args).run(*args)`` (or ``job_class(*args)`` for a
    function) on ``queue``; returns the ``JobData``, or on an ``AsyncSQLBackend`` a
    coroutine of it. ``timeout`` and ``retry_delay`` are milliseconds."""
    script, name = job_name(job_class)
    new = NewJobData(
        queue=queue,
        script=script,
        job_class=name,
        args=list(args),
        constructor_args=list(constructor_args),
        max_attempts=max_attempts,
        available_at=available_at,
        timeout=timeout,
        unique_digest=unique_digest,
        retry_delay=retry_delay,
        backoff_strategy=backoff_strategy,
        priority=priority,
    )
    return backend.create_new_job(new)
