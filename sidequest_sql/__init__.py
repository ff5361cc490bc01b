"""sidequest_sql: a durable, SQL-backed job store on SQLAlchemy Core.

    import sidequest_sql as sq
    backend = sq.create_backend("postgresql://user@localhost/app")
    backend.migrate()
"""

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
from .records import JobCounts, JobCountsAt, JobData, JobState, NewJobData, QueueConfig
from .registry import create_backend, register_dialect

__all__ = [
    "ConnectionLostError",
    "DatabaseUnavailableError",
    "DuplicatedJobError",
    "DuplicatedQueueError",
    "JobCounts",
    "JobCountsAt",
    "JobData",
    "JobNotFoundError",
    "JobState",
    "NewJobData",
    "QueueConfig",
    "QueueNotFoundError",
    "SQLBackend",
    "SidequestError",
    "UnsupportedDatabaseError",
    "create_backend",
    "register_dialect",
]
