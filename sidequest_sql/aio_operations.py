"""Every operation of ``SQLBackend`` as a coroutine, for ``aio.AsyncSQLBackend``.

Generated from ``sidequest_sql/base.py`` by ``tools/generate_aio.py``: do not
edit; change ``SQLBackend`` and run the tool again (a test checks that this
file is what it writes).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from .records import JobCounts, JobCountsAt, JobData, JobTransition, NewJobData, QueueConfig


class AsyncOperations:
    """The operations; ``AsyncSQLBackend`` supplies the runners they call."""

    async def _run(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    _claim = _migrate = _run

    async def migrate(
        self,
        *,
        connection: AsyncConnection | None = None,
    ) -> list[str]:
        """Bring the schema to the newest revision; return the revisions applied."""
        return await self._migrate("migrate", connection=connection)

    async def rollback_migration(
        self,
        *,
        connection: AsyncConnection | None = None,
    ) -> str | None:
        """Undo the newest applied revision; return it, or None when none is applied."""
        return await self._migrate("rollback_migration", connection=connection)

    async def create_new_queue(
        self,
        name: str,
        *,
        concurrency: int = 10,
        priority: int = 0,
        state: str = "active",
        connection: AsyncConnection | None = None,
    ) -> QueueConfig:
        return await self._run(
            "create_new_queue",
            name,
            concurrency=concurrency,
            priority=priority,
            state=state,
            connection=connection,
        )

    async def get_queue(
        self,
        name: str,
        *,
        connection: AsyncConnection | None = None,
    ) -> QueueConfig | None:
        return await self._run("get_queue", name, connection=connection)

    async def get_queues_from_jobs(
        self,
        *,
        connection: AsyncConnection | None = None,
    ) -> list[str]:
        return await self._run("get_queues_from_jobs", connection=connection)

    async def list_queues(
        self,
        order_by: str = "priority",
        order: str = "desc",
        *,
        connection: AsyncConnection | None = None,
    ) -> list[QueueConfig]:
        return await self._run("list_queues", order_by, order, connection=connection)

    async def update_queue(
        self,
        queue_id: int,
        *,
        connection: AsyncConnection | None = None,
        **changes: Any,
    ) -> QueueConfig:
        return await self._run("update_queue", queue_id, connection=connection, **changes)

    async def get_job(
        self,
        job_id: int,
        *,
        connection: AsyncConnection | None = None,
    ) -> JobData | None:
        return await self._run("get_job", job_id, connection=connection)

    async def create_new_job(
        self,
        job: NewJobData,
        *,
        connection: AsyncConnection | None = None,
    ) -> JobData:
        return await self._run("create_new_job", job, connection=connection)

    async def create_new_jobs(
        self,
        new_jobs: Iterable[NewJobData],
        *,
        connection: AsyncConnection | None = None,
    ) -> list[JobData]:
        """Enqueue many jobs in few round trips, all or nothing, in input order."""
        return await self._run("create_new_jobs", new_jobs, connection=connection)

    async def claim_pending_job(
        self,
        queue: str,
        quantity: int = 1,
        *,
        connection: AsyncConnection | None = None,
    ) -> list[JobData]:
        """Atomically move up to ``quantity`` available waiting jobs of ``queue`` to claimed:
        the highest priority first, then the oldest ``inserted_at``, then the lowest id.
        """
        return await self._claim("claim_pending_job", queue, quantity, connection=connection)

    async def update_job(
        self,
        job_id: int,
        *,
        connection: AsyncConnection | None = None,
        **changes: Any,
    ) -> JobData:
        """Set exactly the given fields (None nullifies) and return the job."""
        return await self._run("update_job", job_id, connection=connection, **changes)

    async def transition_jobs(
        self,
        transitions: Iterable[JobTransition],
        *,
        connection: AsyncConnection | None = None,
    ) -> list[JobData | None]:
        """Checked changes of many jobs in one transaction, in few statements.

        Each ``JobTransition`` applies its ``changes`` only where its job is
        still in ``expect_state`` (and claimed by ``expect_claimed_by`` at
        ``expect_attempt``, when given). Returns, in input order, each job as
        it now is, or None where the precondition no longer held (nothing
        written for it). Transitions that expect the same and change the same
        fields are one UPDATE; values that differ per job become a CASE.
        """
        return await self._run("transition_jobs", transitions, connection=connection)

    async def transition_job(
        self,
        job_id: int,
        *,
        expect_state: str,
        expect_claimed_by: str | None = None,
        expect_attempt: int | None = None,
        connection: AsyncConnection | None = None,
        **changes: Any,
    ) -> JobData | None:
        """Set exactly the given fields if the job is still in ``expect_state``
        (and, where given, still ``claimed_by`` ``expect_claimed_by`` at
        ``attempt`` ``expect_attempt``) and return it; else return None and
        leave the job as it is.

        Unlike ``update_job`` it never overwrites a change it did not see: of
        two writers that read the job alike (a worker completing it, a sweeper
        releasing it as stale), only the first applies. With no changes, the
        job if the precondition holds, else None. A missing id raises
        ``JobNotFoundError``.
        """
        return await self._run(
            "transition_job",
            job_id,
            expect_state=expect_state,
            expect_claimed_by=expect_claimed_by,
            expect_attempt=expect_attempt,
            connection=connection,
            **changes,
        )

    async def list_jobs(
        self,
        *,
        queue: str | list[str] | None = None,
        job_class: str | list[str] | None = None,
        state: str | list[str] | None = None,
        limit: int = 50,
        offset: int = 0,
        args: Any = None,
        since: datetime | None = None,
        until: datetime | None = None,
        connection: AsyncConnection | None = None,
    ) -> list[JobData]:
        """Jobs matching every filter given, newest id first.

        A str filter is a case-sensitive LIKE pattern; a list is an IN.
        """
        return await self._run(
            "list_jobs",
            queue=queue,
            job_class=job_class,
            state=state,
            limit=limit,
            offset=offset,
            args=args,
            since=since,
            until=until,
            connection=connection,
        )

    async def wait_for_jobs(
        self,
        queues: list[str],
        timeout: float,
        *,
        connection: AsyncConnection | None = None,
    ) -> list[str]:
        """Sleep until a job of one of ``queues`` may be claimable, for at most ``timeout`` seconds.

        Returns the queues, of those given and in their order, in which a job
        was claimable when the wait last looked (another worker may claim it
        first); ``[]`` when time ran out. It returns at once if a job is
        claimable as it starts; else it wakes for a job enqueued or made
        waiting by any process (LISTEN/NOTIFY on Postgres, every
        ``poll_interval`` seconds elsewhere) and when the earliest waiting
        job of those queues comes due. ``connection=`` makes its looks at the
        store in that transaction. See ``wakeups``.
        """
        return await self._run("wait_for_jobs", queues, timeout, connection=connection)

    async def count_jobs(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        connection: AsyncConnection | None = None,
    ) -> JobCounts:
        """Jobs per state, bounded (inclusively) on the time each job counts at."""
        return await self._run("count_jobs", since=since, until=until, connection=connection)

    async def count_jobs_by_queues(
        self,
        *,
        connection: AsyncConnection | None = None,
    ) -> dict[str, JobCounts]:
        """Counts per state for every queue, configured or used by a job."""
        return await self._run("count_jobs_by_queues", connection=connection)

    async def count_jobs_over_time(
        self,
        time_range: str,
        *,
        connection: AsyncConnection | None = None,
    ) -> list[JobCountsAt]:
        """Counts per state in each of n buckets ('12h': 12 hours), oldest first.

        The newest bucket is the current one; buckets are truncated in UTC and
        jobs whose time is after now are not counted.
        """
        return await self._run("count_jobs_over_time", time_range, connection=connection)

    async def stale_jobs(
        self,
        max_stale_ms: int = 600000,
        max_claimed_ms: int = 60000,
        *,
        connection: AsyncConnection | None = None,
    ) -> list[JobData]:
        """Claimed jobs claimed too long ago, and running jobs past their timeout.

        A running job is stale once ``attempted_at`` is older than its own
        ``timeout`` (ms) or, with none, than ``max_stale_ms``.
        """
        return await self._run("stale_jobs", max_stale_ms, max_claimed_ms, connection=connection)

    async def delete_finished_jobs(
        self,
        cutoff: datetime,
        *,
        limit: int | None = None,
        connection: AsyncConnection | None = None,
    ) -> int:
        """Delete completed, failed and canceled jobs that finished before ``cutoff``.

        Returns how many were deleted. They go in batches of ``limit`` jobs
        (default ``DELETE_BATCH``) in id order, each its own transaction, so
        that no transaction locks a whole backlog (a job that finishes while
        its batch runs may join it); with ``limit`` only one batch runs, for a
        caller that reports progress between batches. In a caller's
        transaction every batch joins it, and they are one piece of work: an
        error in a later batch leaves none of them.
        """
        return await self._run("delete_finished_jobs", cutoff, limit=limit, connection=connection)

    async def truncate(
        self,
        *,
        connection: AsyncConnection | None = None,
    ) -> None:
        """Remove every job and every queue."""
        return await self._run("truncate", connection=connection)
