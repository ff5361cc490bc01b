"""sidequest_sql: a durable, SQL-backed job store on SQLAlchemy Core.

    import sidequest_sql as sq
    backend = sq.create_backend("postgresql://user@localhost/app")
    backend.migrate()

    backend = sq.create_async_backend("postgresql://user@localhost/app")   # asyncio
    await backend.migrate()

    sq.enqueue(backend, SendEmail, "ada@example.com", queue="emails")   # a sq.Job subclass
    sq.Worker(backend, queues=["emails"]).run()                        # runs it (sidequest_sql.worker)
"""

from .aio import AsyncSQLBackend
from .base import SQLBackend
from .errors import (
    ConnectionLostError,
    DatabaseUnavailableError,
    DuplicatedJobError,
    DuplicatedQueueError,
    JobNotFoundError,
    QueueNotFoundError,
    SidequestError,
    UnsupportedDatabaseError,
)
from .records import JobCounts, JobCountsAt, JobData, JobState, JobTransition, NewJobData, QueueConfig
from .registry import create_async_backend, create_backend, register_dialect
from .worker import Fail, Job, JobStopped, Retry, Snooze, Worker, enqueue

__all__ = [
    "AsyncSQLBackend",
    "ConnectionLostError",
    "DatabaseUnavailableError",
    "DuplicatedJobError",
    "DuplicatedQueueError",
    "Fail",
    "Job",
    "JobCounts",
    "JobCountsAt",
    "JobData",
    "JobNotFoundError",
    "JobState",
    "JobStopped",
    "JobTransition",
    "NewJobData",
    "QueueConfig",
    "QueueNotFoundError",
    "Retry",
    "SQLBackend",
    "SidequestError",
    "Snooze",
    "UnsupportedDatabaseError",
    "Worker",
    "create_async_backend",
    "create_backend",
    "enqueue",
    "register_dialect",
]
