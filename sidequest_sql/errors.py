"""The errors sidequest_sql raises, one tree under one base.

    SidequestError
    ├── DuplicatedJobError        a unique_digest is already held by another job
    ├── DuplicatedQueueError      a queue of that name exists
    ├── JobNotFoundError          (also LookupError) no job has that id
    ├── QueueNotFoundError        (also LookupError) no queue has that id
    └── UnsupportedDatabaseError  no dialect is registered for a URL's scheme

Bad arguments raise the builtin ValueError or TypeError instead, before
anything is written. Database errors are translated where they cross into the
backend (``SQLBackend._translating``), always chained with ``from``.
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
