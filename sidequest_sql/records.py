"""The typed records that operations take and return (frozen dataclasses)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

JobState = Literal["waiting", "claimed", "running", "completed", "failed", "canceled"]
QueueState = Literal["active", "paused"]

JOB_STATES: tuple[str, ...] = get_args(JobState)
QUEUE_STATES: tuple[str, ...] = get_args(QueueState)
FINISHED_STATES: tuple[str, ...] = ("completed", "failed", "canceled")


@dataclass(frozen=True, slots=True)
class JobData:
    """A job as stored. ``job_class`` is the column ``class``."""

    id: int
    queue: str
    state: JobState
    script: str
    job_class: str
    args: Any
    constructor_args: Any
    attempt: int
    max_attempts: int
    inserted_at: datetime
    available_at: datetime
    timeout: int | None = None
    result: Any = None
    errors: Any = None
    attempted_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    canceled_at: datetime | None = None
    claimed_at: datetime | None = None
    claimed_by: str | None = None
    unique_digest: str | None = None
    uniqueness_config: Any = None
    retry_delay: int | None = None
    backoff_strategy: str = "exponential"
    priority: int = 0


@dataclass(frozen=True, slots=True)
class NewJobData:
    """What a caller supplies to enqueue a job; the rest gets defaults.

    A new job starts ``waiting`` at attempt 0; ``available_at`` defaults to
    the backend clock's now. Claims take a queue's jobs of higher ``priority``
    first, then the oldest.
    """

    queue: str
    script: str
    job_class: str
    args: Any = field(default_factory=list)
    constructor_args: Any = field(default_factory=list)
    max_attempts: int = 5
    available_at: datetime | None = None
    timeout: int | None = None
    unique_digest: str | None = None
    uniqueness_config: Any = None
    retry_delay: int | None = None
    backoff_strategy: str = "exponential"
    priority: int = 0


@dataclass(frozen=True, slots=True)
class JobTransition:
    """One checked change of a job, for ``SQLBackend.transition_jobs``.

    ``changes`` are applied only while the job is still in ``expect_state``
    and, when given, still claimed by ``expect_claimed_by`` at attempt
    ``expect_attempt``: a worker's write then never lands on a job that was
    released, canceled or rerun meanwhile.
    """

    job_id: int
    expect_state: JobState
    changes: Mapping[str, Any] = field(default_factory=dict)
    expect_claimed_by: str | None = None
    expect_attempt: int | None = None


@dataclass(frozen=True, slots=True)
class QueueConfig:
    id: int
    name: str
    concurrency: int
    state: QueueState
    priority: int


@dataclass(frozen=True, slots=True)
class JobCounts:
    """How many jobs are in each state; ``total`` is their sum."""

    total: int = 0
    waiting: int = 0
    claimed: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    canceled: int = 0

    @classmethod
    def from_states(cls, by_state: dict[str, int]) -> JobCounts:
        counts = {state: int(by_state.get(state, 0)) for state in JOB_STATES}
        return cls(total=sum(counts.values()), **counts)


@dataclass(frozen=True, slots=True)
class JobCountsAt:
    """Job counts of one time bucket starting at ``timestamp`` (UTC)."""

    timestamp: datetime
    total: int = 0
    waiting: int = 0
    claimed: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    canceled: int = 0
