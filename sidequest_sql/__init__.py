"""sidequest_sql: a durable, SQL-backed job store on SQLAlchemy Core.

    import sidequest_sql as sq
    backend = sq.create_backend("postgresql://user@localhost/app")
    backend.migrate()

    backend = sq.create_async_backend("postgresql://user@localhost/app")   # asyncio
    await backend.migrate()
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

__all__ = [
    "AsyncSQLBackend",
    "ConnectionLostError",
    "DatabaseUnavailableError",
    "DuplicatedJobError",
    "DuplicatedQueueError",
    "JobCounts",
    "JobCountsAt",
    "JobData",
    "JobNotFoundError",
    "JobState",
    "JobTransition",
    "NewJobData",
    "QueueConfig",
    "QueueNotFoundError",
    "SQLBackend",
    "SidequestError",
    "UnsupportedDatabaseError",
    "create_async_backend",
    "create_backend",
    "register_dialect",
]
