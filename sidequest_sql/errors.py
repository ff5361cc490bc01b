"""The errors sidequest_sql raises, one tree under one base.

    SidequestError
    ├── DuplicatedJobError        a unique_digest is already held by another job
    ├── DuplicatedQueueError      a queue of that name exists
    ├── JobNotFoundError          (also LookupError) no job has that id
    ├── QueueNotFoundError        (also LookupError) no queue has that id
    ├── UnsupportedDatabaseError  no dialect is registered for a URL's scheme
    └── DatabaseUnavailableError  the database could not be reached: nothing was sent
        └── ConnectionLostError   the connection broke during the operation

Both connection errors are worth retrying once the database is back, and the
backend needs no recreating: a broken connection is never handed out again.
After a ``ConnectionLostError`` a write may or may not have been applied (the
commit's answer was lost); a claim's jobs are then either still waiting or
claimed once, and show up in ``stale_jobs`` in time. An enqueue that must not
run twice when retried carries a ``unique_digest``.

Bad arguments raise the builtin ValueError or TypeError instead, before
anything is written. Database errors are translated where they cross into the
backend (``execution.Execution.translating``), always chained with ``from``.
"""

from __future__ import annotations


class SidequestError(Exception):
    """Base class of every error sidequest_sql raises on purpose."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class DuplicatedJobError(SidequestError):
    """A job with this unique_digest already exists."""


class DuplicatedQueueError(SidequestError):
    """A queue with this name already exists."""


class JobNotFoundError(SidequestError, LookupError):
    """No job has this id."""


class QueueNotFoundError(SidequestError, LookupError):
    """No queue has this id."""


class UnsupportedDatabaseError(SidequestError):
    """No dialect is registered for this database URL's scheme."""


class DatabaseUnavailableError(SidequestError):
    """The database could not be reached; nothing was sent, so retrying is safe."""


class ConnectionLostError(DatabaseUnavailableError):
    """The connection to the database broke during the operation.

    A read is retried once on a new connection before this is raised; a write
    is not, since it may have been applied before the connection broke.
    """
