"""``SQLBackend``: every operation of the job store, written once in SQLAlchemy Core.

The operations below follow the contract: migrations, queues, jobs,
statistics, cleanup. Each checks its arguments before anything is sent,
builds its statements (``statements``) through the dialect's hooks
(``hooks``), and hands them to the execution layer (``execution``), which
owns the pool, transactions, retries and error translation. A dialect
subclass (``sidequest_sql.dialects``) overrides only hooks.

Every operation takes ``connection=``: a SQLAlchemy ``Connection`` whose
current transaction the operation then joins, committing and retrying
nothing. ``aio.AsyncSQLBackend`` runs these same methods over an asyncio
driver.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Integer,
    Select,
    Update,
    and_,
    bindparam,
    delete,
    false,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url

from . import jsonvalues, migrations, wakeups
from .claim_guard import entering_claim
from .errors import DuplicatedJobError, JobNotFoundError, QueueNotFoundError
from .execution import Execution
from .fields import (
    JOB_FIELDS,
    QUEUE_FIELDS,
    check_bigint,
    check_changes,
    check_expected,
    check_int,
    check_like_pattern,
    check_queue_order,
    check_text,
    check_time,
    check_time_range,
    check_transition,
)
from .hooks import DialectHooks
from .records import FINISHED_STATES, JobCounts, JobCountsAt, JobData, JobTransition, NewJobData, QueueConfig
from .rows import NEW_JOB_KEYS, counts_fields, job_from_row, new_job_values, queue_from_row
from .schema import jobs, queues
from .statements import (
    binds,
    expected_values,
    finished_moment,
    ids_bind,
    insert_one,
    per_row,
    same_for_all,
    select_by_id,
    select_expected,
    update_expected,
    update_one,
)
from .times import UNIT_STEPS, Clock, TimeUnit, before, system_clock, truncate_time

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.engine import Connection, Engine

__all__ = ["Clock", "SQLBackend", "TimeUnit"]

# Jobs one delete_finished_jobs transaction removes at most.
DELETE_BATCH = 5_000
# 'waiting' as a literal of the SQL. Bound as a parameter, it made SQLite
# prepare the claim anew at every call (a value bound where a partial index's
# WHERE is matched marks the statement stale: measured, 120 µs of a claim's
# 140 µs of client CPU), and Postgres' generic plan of a prepared claim could
# not use that index.
WAITING = literal_column("'waiting'", jobs.c.state.type)
# The INSERT of one new job (every new job's row has the same columns): its key and builder.
_NEW_JOB_INSERT = insert_one(jobs, NEW_JOB_KEYS)
# Jobs one statement of transition_jobs changes at most.
TRANSITION_BATCH = 500
# What one batch of delete_finished_jobs did: how many it deleted, and the id it ended at.
_Batch = tuple[int, int | None]


class SQLBackend(DialectHooks):
    """A job store in one SQL database. Create it with ``sidequest_sql.create_backend``.

    One backend object is one database and one connection pool; it is safe to
    share between threads. It connects on its first operation, not before.
    """

    _asynchronous = False
    # Set on an instance, before ``__init__``, by ``aio.AsyncSQLBackend``: the
    # engine is then built over the dialect's asyncio driver.

    def __init__(
        self,
        url: str | URL,
        *,
        schema: str | None = None,
        worker_name: str | None = None,
        clock: Clock | None = None,
        **engine_options: Any,
    ) -> None:
        if schema is not None:
            if not self.supports_schemas:
                raise ValueError(f"schema is not supported by {type(self).__name__}")
            check_text(schema, "schema", max_length=63)
        if worker_name is not None:
            check_text(worker_name, "worker_name", max_length=255)
        if clock is not None and not callable(clock):
            raise TypeError("clock must be a zero-argument callable returning an aware datetime")
        given = make_url(url)
        self.url = self.async_engine_url(given) if self._asynchronous else self.engine_url(given)
        self.schema = schema
        self.clock: Clock = clock or system_clock
        self._worker_name = worker_name
        self.execution = Execution(
            self, self.url, schema=schema, engine_options=engine_options, asynchronous=self._asynchronous
        )
        self.engine: Engine = self.execution.engine

    def __repr__(self) -> str:
        where = self.url.render_as_string(hide_password=True)
        schema = f", schema={self.schema!r}" if self.schema else ""
        return f"<{type(self).__name__} {where}{schema}>"

    def __enter__(self) -> SQLBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self.execution.close()

    @property
    def worker_name(self) -> str:
        """What ``claimed_by`` records; read at claim time so it stays right after a fork."""
        return self._worker_name or f"sidequest@{socket.gethostname()}-{os.getpid()}"

    # -- migrations ------------------------------------------------------------------

    def migrate(self, *, connection: Connection | None = None) -> list[str]:
        """Bring the schema to the newest revision; return the revisions applied."""
        with self.execution.transaction(connection) as conn:
            return migrations.upgrade(conn, self.schema)

    def rollback_migration(self, *, connection: Connection | None = None) -> str | None:
        """Undo the newest applied revision; return it, or None when none is applied."""
        with self.execution.transaction(connection) as conn:
            return migrations.downgrade_one(conn, self.schema)

    # -- queues ------------------------------------------------------------------

    def create_new_queue(
        self,
        name: str,
        *,
        concurrency: int = 10,
        priority: int = 0,
        state: str = "active",
        connection: Connection | None = None,
    ) -> QueueConfig:
        values = {"name": name, "concurrency": concurrency, "priority": priority, "state": state}
        check_changes(QUEUE_FIELDS, values, "queue", max_json_depth=self.max_json_depth)
        execution = self.execution
        [row] = execution.write(
            lambda conn: execution.insert_rows(conn, queues, [values]),
            one_statement=execution.one_statement_insert(1),
            duplicate_queue=f"a queue named {name!r} already exists",
            connection=connection,
        )
        return queue_from_row(row)

    def get_queue(self, name: str, *, connection: Connection | None = None) -> QueueConfig | None:
        check_text(name, "name")
        stmt = select(queues).where(queues.c.name == name)
        row = self.execution.read(
            lambda conn: conn.execute(stmt).one_or_none(), one_statement=True, connection=connection
        )
        return None if row is None else queue_from_row(row)

    def get_queues_from_jobs(self, *, connection: Connection | None = None) -> list[str]:
        stmt = select(jobs.c.queue).distinct().order_by(jobs.c.queue)
        return self.execution.read(lambda conn: list(conn.scalars(stmt)), one_statement=True, connection=connection)

    def list_queues(
        self, order_by: str = "priority", order: str = "desc", *, connection: Connection | None = None
    ) -> list[QueueConfig]:
        check_queue_order(order_by, order)
        column = queues.c[order_by]
        stmt = select(queues).order_by(column.desc() if order == "desc" else column.asc(), queues.c.id)
        return self.execution.read(
            lambda conn: [queue_from_row(row) for row in conn.execute(stmt)], one_statement=True, connection=connection
        )

    def update_queue(self, queue_id: int, *, connection: Connection | None = None, **changes: Any) -> QueueConfig:
        check_bigint(queue_id, "queue_id")
        check_changes(QUEUE_FIELDS, changes, "queue", max_json_depth=self.max_json_depth)
        execution = self.execution
        rows = execution.write(
            lambda conn: execution.update_by_ids(conn, queues, [queue_id], changes),
            one_statement=execution.one_statement_update(),
            duplicate_queue=f"a queue named {changes['name']!r} already exists" if "name" in changes else None,
            connection=connection,
        )
        if not rows:
            raise QueueNotFoundError(f"no queue has id {queue_id}")
        return queue_from_row(rows[0])

    # -- jobs -----------------------------------------------------------------------

    def get_job(self, job_id: int, *, connection: Connection | None = None) -> JobData | None:
        check_bigint(job_id, "job_id")
        rows = self._job_rows(job_id, connection)
        return job_from_row(rows[0]) if rows else None

    def create_new_job(self, job: NewJobData, *, connection: Connection | None = None) -> JobData:
        values = new_job_values(job, self._now(), "job", max_json_depth=self.max_json_depth)
        digest = values["unique_digest"]
        key, build = _NEW_JOB_INSERT
        execution = self.execution
        [row] = execution.rows(
            key,
            build,
            values,
            write=True,
            single=execution.one_statement_insert(1),
            duplicate_job=None if digest is None else f"unique_digest {digest!r} is held by another job",
            connection=connection,
            otherwise=lambda conn: execution.insert_rows(conn, jobs, [values]),
        )
        return job_from_row(row)

    def create_new_jobs(self, new_jobs: Iterable[NewJobData], *, connection: Connection | None = None) -> list[JobData]:
        """Enqueue many jobs in few round trips, all or nothing, in input order."""
        if isinstance(new_jobs, (str, bytes, NewJobData)) or not isinstance(new_jobs, Iterable):
            raise TypeError("jobs must be an iterable of NewJobData")
        now = self._now()
        depth = self.max_json_depth
        rows = [new_job_values(job, now, f"jobs[{i}]", max_json_depth=depth) for i, job in enumerate(new_jobs)]
        if not rows:
            return []
        seen: set[str] = set()
        for row in rows:
            digest = row["unique_digest"]
            if digest is not None:
                if digest in seen:
                    raise DuplicatedJobError(f"unique_digest {digest!r} appears twice in jobs")
                seen.add(digest)
        execution = self.execution
        inserted = execution.write(
            lambda conn: execution.insert_rows(conn, jobs, rows),
            one_statement=execution.one_statement_insert(len(rows), len(rows[0])),
            duplicate_job="a unique_digest in jobs is held by another job" if seen else None,
            connection=connection,
        )
        return [job_from_row(row) for row in inserted]

    def claim_pending_job(
        self, queue: str, quantity: int = 1, *, connection: Connection | None = None
    ) -> list[JobData]:
        """Atomically move up to ``quantity`` available waiting jobs of ``queue`` to claimed:
        the highest priority first, then the oldest ``inserted_at``, then the lowest id."""
        check_text(queue, "queue")
        check_int(quantity, "quantity", minimum=1)
        now = self._now()
        picked = {"queue_1": queue, "available_at_1": now, "quantity": quantity}
        values = {"state": "claimed", "claimed_at": now, "claimed_by": self.worker_name}
        execution = self.execution

        def claim_by_ids(conn: Connection) -> list[Any]:
            if conn.dialect.update_returning:
                return execution.run("claim", conn, self._build_claim, {**picked, **values}, entering_claim)
            candidates = execution.statement("claim_candidates", self._build_claim_candidates)
            ids = list(conn.scalars(candidates, picked))
            return execution.update_by_ids(conn, jobs, ids, values, entering_claim)

        rows = execution.rows(
            "claim",
            self._build_claim,
            {**picked, **values},
            write=True,
            single=execution.one_statement_update(),
            connection=connection,
            otherwise=claim_by_ids,
            before_send=entering_claim,
        )
        claimed = [job_from_row(row) for row in rows]
        return sorted(claimed, key=lambda job: (-job.priority, job.inserted_at, job.id))

    def update_job(self, job_id: int, *, connection: Connection | None = None, **changes: Any) -> JobData:
        """Set exactly the given fields (None nullifies) and return the job."""
        check_bigint(job_id, "job_id")
        check_changes(JOB_FIELDS, changes, "job", max_json_depth=self.max_json_depth)
        execution = self.execution
        if not changes:
            rows = execution.read(
                lambda conn: execution.read_back(conn, jobs, [job_id]), one_statement=True, connection=connection
            )
        else:
            digest = changes.get("unique_digest")
            key, build = update_one(jobs, changes)
            rows = execution.rows(
                key,
                build,
                {**changes, "id_1": job_id},
                write=True,
                single=execution.one_statement_update(),
                duplicate_job=None if digest is None else f"unique_digest {digest!r} is held by another job",
                connection=connection,
                otherwise=lambda conn: execution.update_by_ids(conn, jobs, [job_id], changes),
            )
        if not rows:
            raise JobNotFoundError(f"no job has id {job_id}")
        return job_from_row(rows[0])

    def transition_jobs(
        self, transitions: Iterable[JobTransition], *, connection: Connection | None = None
    ) -> list[JobData | None]:
        """Checked changes of many jobs in one transaction, in few statements.

        Each ``JobTransition`` applies its ``changes`` only where its job is
        still in ``expect_state`` (and claimed by ``expect_claimed_by`` at
        ``expect_attempt``, when given). Returns, in input order, each job as
        it now is, or None where the precondition no longer held (nothing
        written for it). Transitions that expect the same and change the same
        fields are one UPDATE; values that differ per job become a CASE.
        """
        if isinstance(transitions, (str, bytes, JobTransition)) or not isinstance(transitions, Iterable):
            raise TypeError("transitions must be an iterable of JobTransition")
        items = list(transitions)
        groups: dict[tuple[Any, ...], list[JobTransition]] = {}
        seen: set[int] = set()
        for i, item in enumerate(items):
            check_transition(item, f"transitions[{i}]", max_json_depth=self.max_json_depth)
            if item.job_id in seen:
                raise ValueError(f"transitions[{i}]: job {item.job_id} appears twice in transitions")
            seen.add(item.job_id)
            key = (item.expect_state, item.expect_claimed_by, item.expect_attempt, tuple(sorted(item.changes)))
            groups.setdefault(key, []).append(item)
        if not items:
            return []
        chunks = [group[i : i + TRANSITION_BATCH] for group in groups.values() for i in range(0, len(group), TRANSITION_BATCH)]
        execution = self.execution
        digests = [item.changes["unique_digest"] for item in items if item.changes.get("unique_digest") is not None]

        def apply(conn: Connection) -> list[Any]:
            return [row for chunk in chunks for row in self._transition_chunk(conn, chunk)]

        rows = execution.write(
            apply,
            one_statement=len(chunks) == 1 and execution.one_statement_update(),
            duplicate_job=f"a unique_digest in transitions is held by another job" if digests else None,
            connection=connection,
        )
        by_id = {row.id: job_from_row(row) for row in rows}
        return [by_id.get(item.job_id) for item in items]

    def _transition_chunk(self, conn: Connection, chunk: list[JobTransition]) -> list[Any]:
        """One group's checked UPDATE; the rows it changed."""
        first = chunk[0]
        c = jobs.c
        ids = [item.job_id for item in chunk]
        claimed_by, attempt = first.expect_claimed_by is not None, first.expect_attempt is not None
        expected: dict[str, Any] = {"id_1": ids, "expect_state": first.expect_state}
        if claimed_by:
            expected["expect_claimed_by"] = first.expect_claimed_by
        if attempt:
            expected["expect_attempt"] = first.expect_attempt

        def where() -> list[Any]:
            conditions = [c.id.in_(ids_bind(jobs)), c.state == bindparam("expect_state", type_=c.state.type)]
            if claimed_by:
                conditions.append(c.claimed_by == bindparam("expect_claimed_by", type_=c.claimed_by.type))
            if attempt:
                conditions.append(c.attempt == bindparam("expect_attempt", type_=c.attempt.type))
            return conditions

        if not first.changes:
            return list(conn.execute(select(jobs).where(*where()), expected))
        keys = sorted(first.changes)
        per_job = {key: [item.changes[key] for item in chunk] for key in keys}
        if conn.dialect.update_returning and all(same_for_all(values) for values in per_job.values()):
            # The same values for every job (starts, most outcomes): a statement built once.
            def build() -> Update:
                return update(jobs).where(*where()).values(binds(jobs, keys)).returning(*c)

            stmt = self.execution.statement(("transition", claimed_by, attempt, tuple(keys)), build)
            return list(conn.execute(stmt, {**expected, **first.changes}))
        values = {key: per_row(jobs, key, ids, per_job[key]) for key in keys}
        if conn.dialect.update_returning:
            return list(conn.execute(update(jobs).where(*where()).values(values).returning(*c), expected))
        held = list(conn.scalars(select(c.id).where(*where()).with_for_update(), expected))
        if held:
            conn.execute(update(jobs).where(c.id.in_(held)).values(values))
        return self.execution.read_back(conn, jobs, held)

    def transition_job(
        self,
        job_id: int,
        *,
        expect_state: str,
        expect_claimed_by: str | None = None,
        expect_attempt: int | None = None,
        connection: Connection | None = None,
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
        check_bigint(job_id, "job_id")
        expected = check_expected(expect_state, expect_claimed_by, expect_attempt)
        check_changes(JOB_FIELDS, changes, "job", max_json_depth=self.max_json_depth)
        execution = self.execution
        where = {"id_1": job_id, **expected_values(expected)}
        if not changes:
            key, build = select_expected(jobs, expected)
            rows = execution.rows(key, build, where, write=False, connection=connection)
        else:
            digest = changes.get("unique_digest")
            key, build = update_expected(jobs, changes, expected)
            values = {**changes, **where}

            def locked_then_updated(conn: Connection) -> list[Any]:
                # One UPDATE … RETURNING where there is one; else, in one
                # transaction, the row locked if it still holds, then updated
                # and read back, as a claim does.
                if conn.dialect.update_returning:
                    return execution.run(key, conn, build, values)
                lock_key, build_lock = select_expected(jobs, expected, lock=True)
                if not execution.run(lock_key, conn, build_lock, where):
                    return []
                return execution.update_by_ids(conn, jobs, [job_id], changes)

            rows = execution.rows(
                key,
                build,
                values,
                write=True,
                single=execution.one_statement_update(),
                duplicate_job=None if digest is None else f"unique_digest {digest!r} is held by another job",
                connection=connection,
                otherwise=locked_then_updated,
            )
        if rows:
            return job_from_row(rows[0])
        # Only a miss pays for telling a job that moved on from one that never was.
        if not self._job_rows(job_id, connection):
            raise JobNotFoundError(f"no job has id {job_id}")
        return None

    def list_jobs(
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
        connection: Connection | None = None,
    ) -> list[JobData]:
        """Jobs matching every filter given, newest id first.

        A str filter is a case-sensitive LIKE pattern; a list is an IN.
        """
        check_int(limit, "limit", minimum=0)
        check_int(offset, "offset", minimum=0)
        conditions = [
            self._text_filter(jobs.c.queue, queue, "queue"),
            self._text_filter(jobs.c.job_class, job_class, "job_class"),
            self._text_filter(jobs.c.state, state, "state"),
        ]
        if args is not None:
            jsonvalues.check_json(args, "args", self.max_json_depth)
            conditions.append(self.json_equals(jobs.c.args, args))
        if since is not None:
            check_time(since, "since")
            conditions.append(jobs.c.attempted_at >= since)
        if until is not None:
            check_time(until, "until")
            conditions.append(jobs.c.attempted_at <= until)
        stmt = (
            select(jobs)
            .where(*(condition for condition in conditions if condition is not None))
            .order_by(jobs.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return self.execution.read(
            lambda conn: [job_from_row(row) for row in conn.execute(stmt)], one_statement=True, connection=connection
        )

    def wait_for_jobs(self, queues: list[str], timeout: float, *, connection: Connection | None = None) -> list[str]:
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
        return wakeups.wait_for_jobs(self, queues, timeout, connection)

    # -- statistics -------------------------------------------------------------------

    def count_jobs(
        self, *, since: datetime | None = None, until: datetime | None = None, connection: Connection | None = None
    ) -> JobCounts:
        """Jobs per state, bounded (inclusively) on the time each job counts at."""
        moment = finished_moment()
        bounds = []
        if since is not None:
            check_time(since, "since")
            bounds.append(moment >= since)
        if until is not None:
            check_time(until, "until")
            bounds.append(moment <= until)
        # Unbounded, per queue too (summed below): the (queue, state) index then
        # yields the groups in its own order, from the index alone, unsorted.
        # Bounded, the rows come from the index on the time instead, which
        # SQLite passes over for the other one if asked for that order.
        group = (jobs.c.state,) if bounds else (jobs.c.queue, jobs.c.state)
        stmt = select(jobs.c.state, func.count()).where(*bounds).group_by(*group)
        rows = self.execution.read(lambda conn: conn.execute(stmt).all(), one_statement=True, connection=connection)
        states: dict[str, int] = {}
        for state, count in rows:
            states[state] = states.get(state, 0) + count
        return JobCounts.from_states(states)

    def count_jobs_by_queues(self, *, connection: Connection | None = None) -> dict[str, JobCounts]:
        """Counts per state for every queue, configured or used by a job."""
        stmt = select(jobs.c.queue, jobs.c.state, func.count()).group_by(jobs.c.queue, jobs.c.state)

        def count(conn: Connection) -> dict[str, dict[str, int]]:
            by_queue: dict[str, dict[str, int]] = {name: {} for name in conn.scalars(select(queues.c.name))}
            for queue, state, n in conn.execute(stmt):
                by_queue.setdefault(queue, {})[state] = n
            return by_queue

        by_queue = self.execution.read(count, connection=connection)
        return {name: JobCounts.from_states(by_queue[name]) for name in sorted(by_queue)}

    def count_jobs_over_time(self, time_range: str, *, connection: Connection | None = None) -> list[JobCountsAt]:
        """Counts per state in each of n buckets ('12h': 12 hours), oldest first.

        The newest bucket is the current one; buckets are truncated in UTC and
        jobs whose time is after now are not counted.
        """
        count, unit = check_time_range(time_range)
        step = UNIT_STEPS[unit]
        now = self._now()
        newest = truncate_time(now, unit)
        starts = [newest - step * i for i in range(count - 1, -1, -1)]
        moment = finished_moment()
        bucket = self.time_bucket(moment, unit).label("bucket")  # type: ignore[arg-type]
        stmt = (
            select(bucket, jobs.c.state, func.count())
            .where(moment >= starts[0], moment <= now)
            .group_by(bucket, jobs.c.state)
        )
        per_bucket: dict[datetime, dict[str, int]] = {}
        for start, state, n in self.execution.read(
            lambda conn: conn.execute(stmt).all(), one_statement=True, connection=connection
        ):
            per_bucket.setdefault(start, {})[state] = n
        result = []
        for start in starts:
            counts = JobCounts.from_states(per_bucket.get(start, {}))
            result.append(JobCountsAt(timestamp=start, **counts_fields(counts)))
        return result

    def stale_jobs(
        self, max_stale_ms: int = 600_000, max_claimed_ms: int = 60_000, *, connection: Connection | None = None
    ) -> list[JobData]:
        """Claimed jobs claimed too long ago, and running jobs past their timeout.

        A running job is stale once ``attempted_at`` is older than its own
        ``timeout`` (ms) or, with none, than ``max_stale_ms``.
        """
        check_bigint(max_stale_ms, "max_stale_ms")
        check_bigint(max_claimed_ms, "max_claimed_ms")
        now = self._now()
        c = jobs.c
        stmt = (
            select(jobs)
            .where(
                or_(
                    and_(c.state == "claimed", c.claimed_at < before(now, max_claimed_ms)),
                    and_(
                        c.state == "running",
                        c.attempted_at.is_not(None),
                        or_(
                            c.timeout.is_not(None),
                            c.attempted_at < before(now, max_stale_ms),
                        ),
                    ),
                )
            )
            .order_by(c.id)
        )
        found = self.execution.read(
            lambda conn: [job_from_row(row) for row in conn.execute(stmt)], one_statement=True, connection=connection
        )
        # A per-row timeout in ms has no portable SQL; running jobs are few.
        return [
            job
            for job in found
            if job.state == "claimed" or job.timeout is None or job.attempted_at < before(now, job.timeout)  # type: ignore[operator]
        ]

    # -- cleanup ----------------------------------------------------------------------

    def delete_finished_jobs(
        self, cutoff: datetime, *, limit: int | None = None, connection: Connection | None = None
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
        check_time(cutoff, "cutoff")
        if limit is not None:
            check_int(limit, "limit", minimum=1)
        c = jobs.c
        finished = and_(
            c.state.in_(FINISHED_STATES),
            or_(c.completed_at < cutoff, c.failed_at < cutoff, c.canceled_at < cutoff),
        )
        size = limit or DELETE_BATCH
        after: int | None = None

        def delete_batch(conn: Connection) -> _Batch:
            # Each batch starts where the one before ended: one that started
            # over at the first row would read again every row the batches
            # before it deleted (their dead versions, on Postgres). It ends at
            # the id of its last job, found first (MySQL cannot LIMIT a
            # subquery of the table it deletes from), not at a list of ids,
            # which costs the client more to send than the database to delete.
            rest = and_(finished, c.id > after) if after is not None else finished
            last = conn.scalar(select(c.id).where(rest).order_by(c.id).offset(size - 1).limit(1))
            batch = and_(rest, c.id <= last) if last is not None else rest
            return conn.execute(delete(jobs).where(batch)).rowcount, last

        def delete_batches(write: Callable[[Callable[[Connection], _Batch]], _Batch]) -> int:
            """Every batch, each run by ``write``."""
            nonlocal after
            deleted, last = write(delete_batch)
            while limit is None and last is not None:
                after = last
                batch, last = write(delete_batch)
                deleted += batch
            return deleted

        if connection is not None:
            return self.execution.write(lambda conn: delete_batches(lambda batch: batch(conn)), connection=connection)
        return delete_batches(self.execution.write)

    def truncate(self, *, connection: Connection | None = None) -> None:
        """Remove every job and every queue."""

        def empty(conn: Connection) -> None:
            conn.execute(delete(jobs))
            conn.execute(delete(queues))

        self.execution.write(empty, connection=connection)

    # -- what the operations share ---------------------------------------------------------

    def _now(self) -> datetime:
        now = self.clock()
        if type(now) is not datetime or now.tzinfo is not UTC:  # the system clock's UTC needs no check
            check_time(now, "the backend clock's value")
        return now

    def _job_rows(self, job_id: int, connection: Connection | None) -> list[Any]:
        """The row of the job ``job_id``, or none."""
        return self.execution.rows(
            "get_job", lambda: select_by_id(jobs), {"id_1": job_id}, write=False, connection=connection
        )

    def _text_filter(self, column: ColumnElement[str], value: Any, name: str) -> ColumnElement[bool] | None:
        if value is None:
            return None
        if isinstance(value, str):
            check_like_pattern(value, name)
            return self.like(column, value)
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                check_text(item, f"{name}[{i}]")
            return column.in_(list(value)) if value else false()
        raise TypeError(f"{name} must be a str pattern, a list of str or None, not {type(value).__name__}")

    def _build_claim_candidates(self) -> Select[Any]:
        """A claim's locking select of candidates; takes ``queue_1``, ``available_at_1``, ``quantity``.

        Its LIMIT is named ``quantity``: the anonymous name SQLAlchemy would
        give it (param_1) is one a dialect's own anonymous parameter may take
        (SQLite's OFFSET 0). The state it picks is written in the SQL
        (``WAITING``), not bound, so that the database can prove from the
        statement alone that the partial claim index serves it.
        """
        c = jobs.c
        return self.lock_for_claim(
            select(c.id)
            .where(
                c.state == WAITING,
                c.queue == bindparam("queue_1", type_=c.queue.type),
                c.available_at <= bindparam("available_at_1", type_=c.available_at.type),
            )
            .order_by(c.priority.desc(), c.inserted_at, c.id)
            .limit(bindparam("quantity", type_=Integer()))
        )

    def _build_claim(self) -> Update:
        """The one-statement claim; takes the candidates' parameters and ``claimed_at``, ``claimed_by``."""
        values = {"state": "claimed", **binds(jobs, ("claimed_at", "claimed_by"))}
        return self.claim_statement(self.execution.statement("claim_candidates", self._build_claim_candidates), values)

    def _give_back(self, claimed: Sequence[JobData]) -> None:
        """Jobs one claim took back to waiting, as before it, where that claim still holds them.

        For a claim whose caller never received its jobs (``claim_guard``).
        """
        if not claimed:
            return
        c = jobs.c
        first = claimed[0]
        stmt = (
            update(jobs)
            .where(
                c.id.in_([job.id for job in claimed]),
                c.state == "claimed",
                c.claimed_by == first.claimed_by,
                c.claimed_at == first.claimed_at,
            )
            .values(state="waiting", claimed_at=None, claimed_by=None)
        )
        self.execution.write(lambda conn: conn.execute(stmt), one_statement=True)

