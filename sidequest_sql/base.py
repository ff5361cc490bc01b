"""``SQLBackend``: every operation of the job store, written once in SQLAlchemy Core.

A dialect subclass (``sidequest_sql.dialects``) overrides only the hooks in
the "dialect hooks" section below. Hooks build Core objects and never touch
the database, so each dialect's SQL can be compiled and checked without a
server; the base class alone executes.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Update,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InvalidRequestError

from . import jsonvalues
from .connections import lost, unavailable
from .driver import DriverStatement
from .errors import (
    ConnectionLostError,
    DuplicatedJobError,
    DuplicatedQueueError,
    JobNotFoundError,
    QueueNotFoundError,
)
from .fields import (
    JOB_FIELDS,
    QUEUE_FIELDS,
    check_changes,
    check_bigint,
    check_int,
    check_like_pattern,
    check_queue_order,
    check_text,
    check_time,
    check_time_range,
)
from .idle import IdleConnections
from .records import (
    FINISHED_STATES,
    JobCounts,
    JobCountsAt,
    JobData,
    NewJobData,
    QueueConfig,
)
from .schema import (
    QUEUE_NAME_CONSTRAINT,
    UNIQUE_DIGEST_INDEX,
    Timestamp,
    counted_at,
    jobs,
    queues,
)

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Dialect, Engine, ExceptionContext
    from sqlalchemy.sql.dml import Insert

    from .batches import BatchInsert

Clock = Callable[[], datetime]
TimeUnit = Literal["m", "h", "d"]

UNIT_STEPS: Mapping[str, timedelta] = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
# Jobs one delete_finished_jobs transaction removes at most.
DELETE_BATCH = 5_000
# A write transaction a database rolled back as retryable (a deadlock) runs at most this often.
WRITE_ATTEMPTS = 5
# Statements one backend keeps built (update_job builds one per set of fields changed).
STATEMENT_CACHE_SIZE = 500
# What a caller's isolation_level may be where single statements run in autocommit.
TRANSACTION_ISOLATION_LEVELS = ("READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")
_T = TypeVar("_T")


def system_clock() -> datetime:
    """The default clock: the system's now, in UTC."""
    return datetime.now(UTC)


def truncate_time(moment: datetime, unit: str) -> datetime:
    """``moment`` (aware) cut down to the start of its minute, hour or day in UTC."""
    moment = moment.astimezone(UTC)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    if unit == "h":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def finished_moment() -> ColumnElement[datetime]:
    """The time a job counts at: when it finished, else started, was claimed, was enqueued.

    Written as the index on it is, so that time-bounded counts can use it.
    """
    return type_coerce(counted_at(), Timestamp())


class SQLBackend:
    """A job store in one SQL database. Create it with ``sidequest_sql.create_backend``.

    One backend object is one database and one connection pool; it is safe to
    share between threads. It connects on its first operation, not before.
    """

    # -- capabilities ----------------------------------------------------------

    supports_schemas: ClassVar[bool] = False
    """Whether ``schema=`` can put the tables in a named schema of the database."""

    supports_skip_locked: ClassVar[bool] = True
    """Whether a claim skips the rows another transaction has locked (``lock_for_claim``).

    Then an open transaction elsewhere holds up only the rows it locked. Where
    not (SQLite), a write transaction holds the whole database and other
    writers wait for it to end.
    """

    single_statement_autocommit: ClassVar[bool] = False
    """Whether an operation that is one statement runs without BEGIN and COMMIT.

    The statement then runs in autocommit (one round trip instead of three),
    which is right where the database makes a single statement atomic on its
    own and nothing else needs the transaction: not on SQLite, whose
    ``BEGIN IMMEDIATE`` is what keeps claims of several processes apart. An
    operation of several statements always runs in one transaction. Whether
    one is a single statement is read from the SQLAlchemy dialect's
    ``insert_returning`` and ``update_returning`` before connecting, so a
    dialect that sets this flag must know those without a server.

    Every connection then stays in the driver's autocommit mode for good (no
    switching at each checkout), and the backend begins each transaction with
    its own ``BEGIN``, carrying the caller's ``isolation_level`` if one was
    given.
    """

    direct_execution: ClassVar[bool] = False
    """Whether the hot statements (enqueue one job, claim, update one job, get
    a job) run on the driver's cursor (``driver.DriverStatement``) rather than
    through SQLAlchemy's execution path, which costs more client CPU than the
    driver itself. Only for a driver that needs nothing from that path: no
    ``before_cursor_execute`` listener of the dialect's own, say.
    """

    write_begin: ClassVar[str | None] = None
    """The statement that begins a write transaction, where the dialect's
    driver stays in autocommit and the backend sends BEGIN itself from the
    engine's "begin" event (SQLite: ``BEGIN IMMEDIATE``). Lets a write that is
    one statement run on a bare pooled connection (``_alone``).
    """

    batch_insert: ClassVar[BatchInsert | None] = None
    """How a batch of rows (``create_new_jobs``) goes in few multi-row
    ``INSERT … RETURNING`` statements, where the database has
    ``INSERT … RETURNING``: a ``batches.BatchInsert`` (Postgres:
    ``UnnestInsert``, one statement for any batch; SQLite: ``ValuesInsert``).
    None: SQLAlchemy's ``insertmanyvalues``, or one INSERT per row.
    """

    # -- construction ------------------------------------------------------------

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
        self.url = self.engine_url(make_url(url))
        self.schema = schema
        self.clock: Clock = clock or system_clock
        self._worker_name = worker_name
        options = {"json_serializer": jsonvalues.dumps, **self.engine_options(self.url)}
        options.update(engine_options)
        begin = None
        if self.single_statement_autocommit:
            begin = _explicit_begin(options.pop("isolation_level", None))
            options["isolation_level"] = "AUTOCOMMIT"
        self._root_engine = create_engine(self.url, **options)
        self.configure_engine(self._root_engine)
        event.listen(self._root_engine, "checkout", self._check_out)
        event.listen(self._root_engine, "handle_error", self._handle_error)
        if begin is not None:
            event.listen(self._root_engine, "begin", begin)
        engine = self._root_engine
        if schema is not None:
            engine = engine.execution_options(schema_translate_map={None: schema})
        self.engine: Engine = engine
        self._writer: Engine = engine.execution_options(sidequest_write=True)
        # Shares the pool; its connections send no BEGIN.
        self._autocommit: Engine | None = (
            engine.execution_options(sidequest_autocommit=True) if self.single_statement_autocommit else None
        )
        # Where one-statement operations run on bare connections (``_alone``),
        # kept between them.
        self._idle = IdleConnections(self._autocommit or self.engine, self.connection_alive)
        self._statements: dict[Hashable, Any] = {}
        self._schema_map = None if schema is None else {None: schema}

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
        self._idle.clear()
        self._root_engine.dispose()

    @property
    def worker_name(self) -> str:
        """What ``claimed_by`` records; read at claim time so it stays right after a fork."""
        return self._worker_name or f"sidequest@{socket.gethostname()}-{os.getpid()}"

    # -- dialect hooks -------------------------------------------------------------

    @classmethod
    def engine_url(cls, url: URL) -> URL:
        """The URL handed to SQLAlchemy, e.g. with the dialect's driver filled in."""
        return url

    @classmethod
    def engine_options(cls, url: URL) -> dict[str, Any]:
        """Default ``create_engine`` options for this database; the caller's win."""
        return {}

    def configure_engine(self, engine: Engine) -> None:
        """Install per-connection settings (event listeners) on a new engine."""

    def connection_alive(self, dbapi_connection: Any) -> bool:
        """Whether a driver connection leaving the pool may still work.

        Called at every checkout, and whenever a connection kept between
        one-statement operations (``idle.IdleConnections``) is taken again,
        so it must not ask the server; a connection it calls dead is replaced
        before anything is sent on it. The default trusts every connection
        (right for an embedded database).
        """
        return True

    def lock_for_claim(self, candidates: Select[Any]) -> Select[Any]:
        """Lock the rows a claim picks so that concurrent claimers skip them."""
        return candidates.with_for_update(skip_locked=True)

    def claim_statement(self, candidates: Select[Any], values: Mapping[str, Any]) -> Update:
        """One statement that claims the candidate rows and returns them.

        Used where the database has ``UPDATE … RETURNING``
        (``dialect.update_returning``); elsewhere the claim runs the locking
        ``candidates`` select, updates those ids and reads them back, all in
        one transaction.

        The candidates run once, in a materialized CTE: Postgres may plan an
        ``IN (subquery)`` as a join and update more rows than the LIMIT.
        """
        claimable = candidates.cte("claimable").prefix_with("MATERIALIZED")
        return (
            update(jobs)
            .where(jobs.c.id == claimable.c.id)
            .values(values)
            .returning(*jobs.c)
        )

    def time_bucket(self, moment: ColumnElement[datetime], unit: TimeUnit) -> ColumnElement[datetime]:
        """``moment`` truncated in UTC to its minute (m), hour (h) or day (d)."""
        raise NotImplementedError(f"{type(self).__name__} must implement time_bucket")

    def json_equals(self, column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
        """Whether the JSON document in ``column`` equals ``value``, key order aside.

        The default compares canonical text (``jsonvalues.dumps``), which is
        right for databases that store the text this library wrote.
        """
        return column == literal(value, column.type)

    def like(self, column: ColumnElement[str], pattern: str) -> ColumnElement[bool]:
        """A case-sensitive LIKE with ``%``/``_`` wildcards and backslash escapes."""
        return column.like(pattern, escape="\\")

    def violated_constraint(self, error: IntegrityError) -> str | None:
        """The name of the constraint or unique index a database error reports."""
        return None

    def retryable(self, error: DBAPIError) -> bool:
        """Whether ``error`` rolled back a write transaction that may simply be run
        again (a deadlock victim, say); such a transaction is retried a few times."""
        return False

    # -- migrations ------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Bring the schema to the newest revision; return the revisions applied."""
        from .migrations import upgrade

        return upgrade(self)

    def rollback_migration(self) -> str | None:
        """Undo the newest applied revision; return it, or None when none is applied."""
        from .migrations import downgrade_one

        return downgrade_one(self)

    # -- queues ------------------------------------------------------------------

    def create_new_queue(
        self, name: str, *, concurrency: int = 10, priority: int = 0, state: str = "active"
    ) -> QueueConfig:
        values = {"name": name, "concurrency": concurrency, "priority": priority, "state": state}
        check_changes(QUEUE_FIELDS, values, "queue")
        [row] = self._write(
            lambda conn: self._insert_rows(conn, queues, [values]),
            one_statement=self._one_statement_insert(1),
            duplicate_queue=f"a queue named {name!r} already exists",
        )
        return _queue(row)

    def get_queue(self, name: str) -> QueueConfig | None:
        check_text(name, "name")
        stmt = select(queues).where(queues.c.name == name)
        row = self._read(lambda conn: conn.execute(stmt).one_or_none(), one_statement=True)
        return None if row is None else _queue(row)

    def get_queues_from_jobs(self) -> list[str]:
        stmt = select(jobs.c.queue).distinct().order_by(jobs.c.queue)
        return self._read(lambda conn: list(conn.scalars(stmt)), one_statement=True)

    def list_queues(self, order_by: str = "priority", order: str = "desc") -> list[QueueConfig]:
        check_queue_order(order_by, order)
        column = queues.c[order_by]
        stmt = select(queues).order_by(column.desc() if order == "desc" else column.asc(), queues.c.id)
        return self._read(lambda conn: [_queue(row) for row in conn.execute(stmt)], one_statement=True)

    def update_queue(self, queue_id: int, **changes: Any) -> QueueConfig:
        check_bigint(queue_id, "queue_id")
        check_changes(QUEUE_FIELDS, changes, "queue")
        name = changes.get("name")
        row = self._write(
            lambda conn: _one_or_none(self._update_by_ids(conn, queues, [queue_id], changes)),
            one_statement=self._one_statement_update(),
            duplicate_queue=f"a queue named {name!r} already exists",
        )
        if row is None:
            raise QueueNotFoundError(f"no queue has id {queue_id}")
        return _queue(row)

    # -- jobs -----------------------------------------------------------------------

    def get_job(self, job_id: int) -> JobData | None:
        check_bigint(job_id, "job_id")

        def build() -> Select[Any]:
            return select(jobs).where(jobs.c.id == _id_bind(jobs))

        values = {"id_1": job_id}
        rows = self._alone("get_job", build, values, write=False)
        if rows is None:
            rows = self._read(lambda conn: self._run("get_job", conn, build, values), one_statement=True)
        return _job(rows[0]) if rows else None

    def create_new_job(self, job: NewJobData) -> JobData:
        values = self._new_job_values(job, self._now(), "job")
        duplicate = f"unique_digest {values['unique_digest']!r} is held by another job"
        key, build = _insert_one(jobs, values)
        rows = self._alone(
            key, build, values, write=True, single=self._one_statement_insert(1), duplicate_job=duplicate
        )
        if rows is None:
            rows = self._write(
                lambda conn: self._insert_rows(conn, jobs, [values]),
                one_statement=self._one_statement_insert(1),
                duplicate_job=duplicate,
            )
        [row] = rows
        return _job(row)

    def create_new_jobs(self, new_jobs: Iterable[NewJobData]) -> list[JobData]:
        """Enqueue many jobs in few round trips, all or nothing, in input order."""
        if isinstance(new_jobs, (str, bytes, NewJobData)) or not isinstance(new_jobs, Iterable):
            raise TypeError("jobs must be an iterable of NewJobData")
        now = self._now()
        rows = [self._new_job_values(job, now, f"jobs[{i}]") for i, job in enumerate(new_jobs)]
        if not rows:
            return []
        seen: set[str] = set()
        for row in rows:
            digest = row["unique_digest"]
            if digest is not None:
                if digest in seen:
                    raise DuplicatedJobError(f"unique_digest {digest!r} appears twice in jobs")
                seen.add(digest)
        inserted = self._write(
            lambda conn: self._insert_rows(conn, jobs, rows),
            one_statement=self._one_statement_insert(len(rows), len(rows[0])),
            duplicate_job="a unique_digest in jobs is held by another job",
        )
        return [_job(row) for row in inserted]

    def claim_pending_job(self, queue: str, quantity: int = 1) -> list[JobData]:
        """Atomically move up to ``quantity`` available waiting jobs of ``queue`` to claimed."""
        check_text(queue, "queue")
        check_int(quantity, "quantity", minimum=1)
        now = self._now()
        picked = {"queue_1": queue, "available_at_1": now, "quantity": quantity}
        values = {"state": "claimed", "claimed_at": now, "claimed_by": self.worker_name}

        def claim(conn: Connection) -> list[Any]:
            if conn.dialect.update_returning:
                return self._run("claim", conn, self._build_claim, {**picked, **values})
            candidates = self._statement("claim_candidates", self._build_claim_candidates)
            return self._update_by_ids(conn, jobs, list(conn.scalars(candidates, picked)), values)

        rows = self._alone(
            "claim", self._build_claim, {**picked, **values}, write=True, single=self._one_statement_update()
        )
        if rows is None:
            rows = self._write(claim, one_statement=self._one_statement_update())
        claimed = [_job(row) for row in rows]
        return sorted(claimed, key=lambda job: (job.inserted_at, job.id))

    def update_job(self, job_id: int, **changes: Any) -> JobData:
        """Set exactly the given fields (None nullifies) and return the job."""
        check_bigint(job_id, "job_id")
        check_changes(JOB_FIELDS, changes, "job")
        duplicate = f"unique_digest {changes.get('unique_digest')!r} is held by another job"
        rows = None
        if changes:
            key, build = _update_one(jobs, changes)
            rows = self._alone(
                key,
                build,
                {**changes, "id_1": job_id},
                write=True,
                single=self._one_statement_update(),
                duplicate_job=duplicate,
            )
        if rows is None:
            rows = self._write(
                lambda conn: self._update_by_ids(conn, jobs, [job_id], changes),
                one_statement=self._one_statement_update(),
                duplicate_job=duplicate,
            )
        if not rows:
            raise JobNotFoundError(f"no job has id {job_id}")
        return _job(rows[0])

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
            jsonvalues.check_json(args, "args")
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
        return self._read(lambda conn: [_job(row) for row in conn.execute(stmt)], one_statement=True)

    # -- statistics -------------------------------------------------------------------

    def count_jobs(self, *, since: datetime | None = None, until: datetime | None = None) -> JobCounts:
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
        rows = self._read(lambda conn: conn.execute(stmt).all(), one_statement=True)
        states: dict[str, int] = {}
        for state, count in rows:
            states[state] = states.get(state, 0) + count
        return JobCounts.from_states(states)

    def count_jobs_by_queues(self) -> dict[str, JobCounts]:
        """Counts per state for every queue, configured or used by a job."""
        stmt = select(jobs.c.queue, jobs.c.state, func.count()).group_by(jobs.c.queue, jobs.c.state)

        def count(conn: Connection) -> dict[str, dict[str, int]]:
            by_queue: dict[str, dict[str, int]] = {name: {} for name in conn.scalars(select(queues.c.name))}
            for queue, state, n in conn.execute(stmt):
                by_queue.setdefault(queue, {})[state] = n
            return by_queue

        by_queue = self._read(count)
        return {name: JobCounts.from_states(by_queue[name]) for name in sorted(by_queue)}

    def count_jobs_over_time(self, time_range: str) -> list[JobCountsAt]:
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
        for start, state, n in self._read(lambda conn: conn.execute(stmt).all(), one_statement=True):
            per_bucket.setdefault(start, {})[state] = n
        result = []
        for start in starts:
            counts = JobCounts.from_states(per_bucket.get(start, {}))
            result.append(JobCountsAt(timestamp=start, **_counts_fields(counts)))
        return result

    def stale_jobs(self, max_stale_ms: int = 600_000, max_claimed_ms: int = 60_000) -> list[JobData]:
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
                    and_(c.state == "claimed", c.claimed_at < _before(now, max_claimed_ms)),
                    and_(
                        c.state == "running",
                        c.attempted_at.is_not(None),
                        or_(
                            c.timeout.is_not(None),
                            c.attempted_at < _before(now, max_stale_ms),
                        ),
                    ),
                )
            )
            .order_by(c.id)
        )
        found = self._read(lambda conn: [_job(row) for row in conn.execute(stmt)], one_statement=True)
        # A per-row timeout in ms has no portable SQL; running jobs are few.
        return [
            job
            for job in found
            if job.state == "claimed"
            or job.timeout is None
            or job.attempted_at < _before(now, job.timeout)  # type: ignore[operator]
        ]

    # -- cleanup ----------------------------------------------------------------------

    def delete_finished_jobs(self, cutoff: datetime, *, limit: int | None = None) -> int:
        """Delete completed, failed and canceled jobs that finished before ``cutoff``.

        Returns how many were deleted. They go in batches of ``limit`` jobs
        (default ``DELETE_BATCH``) in id order, each its own transaction, so
        that no transaction locks a whole backlog (a job that finishes while
        its batch runs may join it); with ``limit`` only one batch runs, for a
        caller that reports progress between batches.
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

        def delete_batch(conn: Connection) -> tuple[int, int | None]:
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

        deleted, last = self._write(delete_batch)
        while limit is None and last is not None:
            after = last
            batch, last = self._write(delete_batch)
            deleted += batch
        return deleted

    def truncate(self) -> None:
        """Remove every job and every queue."""

        def empty(conn: Connection) -> None:
            conn.execute(delete(jobs))
            conn.execute(delete(queues))

        self._write(empty)

    # -- statements built once ----------------------------------------------------------
    #
    # Building a Core statement, and then SQLAlchemy walking it for its cache
    # key, costs far more client CPU than running it. The hot operations build
    # theirs once per backend, with bindparam()s for what changes per call,
    # through the same hooks. The parameters are named as SQLAlchemy names
    # those of a statement built with plain values, so the SQL sent is the same,
    # but for the claim's LIMIT: its anonymous name (param_1) is one a dialect's
    # own anonymous parameter may take (SQLite's OFFSET 0).

    def _statement(self, key: Hashable, build: Callable[[], _T]) -> _T:
        """The statement kept under ``key``, built by ``build()`` the first time."""
        stmt = self._statements.get(key)
        if stmt is None:
            stmt = build()
            if len(self._statements) < STATEMENT_CACHE_SIZE:
                self._statements[key] = stmt
        return stmt

    def _build_claim_candidates(self) -> Select[Any]:
        """A claim's locking select of candidates; takes ``queue_1``, ``available_at_1``, ``quantity``."""
        c = jobs.c
        return self.lock_for_claim(
            select(c.id)
            .where(
                c.state == "waiting",
                c.queue == bindparam("queue_1", type_=c.queue.type),
                c.available_at <= bindparam("available_at_1", type_=c.available_at.type),
            )
            .order_by(c.inserted_at, c.id)
            .limit(bindparam("quantity", type_=Integer()))
        )

    def _build_claim(self) -> Update:
        """The one-statement claim; takes the candidates' parameters and ``claimed_at``, ``claimed_by``."""
        values = {"state": "claimed", **_binds(jobs, ("claimed_at", "claimed_by"))}
        return self.claim_statement(self._statement("claim_candidates", self._build_claim_candidates), values)

    def _run(
        self, key: Hashable, conn: Connection, build: Callable[[], Any], values: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        """The rows of the statement ``build()`` makes, run with ``values``: on
        the driver's cursor where the dialect has ``direct_execution``, else
        through SQLAlchemy's execution path."""
        if self.direct_execution:
            return self._driver_statement(key, conn.dialect, build).rows(conn, values)
        return list(conn.execute(self._statement(key, build), values))

    def _driver_statement(self, key: Hashable, dialect: Dialect, build: Callable[[], Any]) -> DriverStatement:
        """The statement ``build()`` makes, compiled for the (connected) dialect once per backend."""
        return self._statement(
            ("driver", key), lambda: DriverStatement(build(), dialect, self._schema_map, self.connection_alive)
        )

    def _alone(
        self,
        key: Hashable,
        build: Callable[[], Any],
        values: Mapping[str, Any],
        *,
        write: bool,
        single: bool = True,
        duplicate_job: str | None = None,
    ) -> list[Sequence[Any]] | None:
        """The rows of one statement that is a whole operation (``single``: the
        dialect can make it one, e.g. it has ``RETURNING``), run on a pooled
        driver connection with no SQLAlchemy Connection around it (measured, a
        seventh of a call's client CPU on Postgres, more of it on SQLite); or
        None where it cannot be, and the caller goes the ordinary way: a
        dialect without ``direct_execution``, or with its driver neither in
        autocommit nor beginning writes itself, or ``before_cursor_execute``
        listeners to call.

        In autocommit (Postgres) the statement runs alone; where the backend
        begins transactions itself (``write_begin``: SQLite), a write runs
        between that BEGIN and a commit, and a read (one SELECT) needs
        neither. It is run again where ``_read`` and ``_write`` would
        (``_attempts``). The connection is one such an operation used before
        where there is one (``IdleConnections``), not a new checkout.
        """
        if self._autocommit is not None:
            engine, begin = self._autocommit, None
        elif self.write_begin is not None:
            engine, begin = self.engine, self.write_begin if write else None
        else:
            return None
        if not single or not self.direct_execution or engine.dispatch.before_cursor_execute:
            return None

        def once() -> list[Sequence[Any]]:
            try:
                fairy, keepable = self._idle.take()
            except (engine.dialect.loaded_dbapi.Error, DBAPIError, InvalidRequestError) as exc:
                raise unavailable(self.url, exc) from exc
            done = False
            try:
                with self._translating(duplicate_job):
                    rows = self._driver_statement(key, engine.dialect, build).rows_alone(fairy, values, begin)
                done = True
                return rows
            finally:
                self._idle.give_back(fairy, keep=keepable and done)

        return self._attempts(once, write=write)

    def _insert_rows(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[Sequence[Any]]:
        """Insert ``rows`` and return them as stored (every column, in table
        order), in the same order.

        With ``RETURNING`` where the database has it (for a batch, the few
        statements of the dialect's ``batch_insert``, or where the driver also
        keeps the rows in parameter order); else one INSERT per row, read back
        by the new keys in the same transaction.
        """
        dialect = conn.dialect
        if len(rows) == 1 and dialect.insert_returning:
            key, build = _insert_one(table, rows[0])
            return self._run(key, conn, build, rows[0])
        keys = tuple(rows[0])
        batch = self.batch_insert
        if batch is not None and dialect.insert_returning and all(row.keys() == rows[0].keys() for row in rows):
            encoders = self._statement(("batch_encoders", table.name, keys), lambda: batch.encoders(table, keys, dialect))
            return batch.insert(table, rows, encoders, lambda key, build, params: self._run(key, conn, build, params))
        if len(rows) > 1 and dialect.insert_executemany_returning_sort_by_parameter_order:
            stmt = self._statement(
                ("insert_many", table.name),
                lambda: insert(table).returning(*table.c, sort_by_parameter_order=True),
            )
            return list(conn.execute(stmt, rows))
        ids = []
        for row in rows:
            plain = self._statement(
                ("insert", table.name, frozenset(row)), lambda: insert(table).values(_binds(table, row))
            )
            key = conn.execute(plain, row).inserted_primary_key
            if key is None:
                raise RuntimeError(f"the database gave no key for a row inserted into {table.name}")
            ids.append(key[0])
        return self._read_back(conn, table, ids)

    def _update_by_ids(
        self, conn: Connection, table: Table, ids: list[int], values: Mapping[str, Any]
    ) -> list[Sequence[Any]]:
        """Set ``values`` on the rows with these ids and return the rows as they now are.

        Without ``UPDATE … RETURNING`` the rows are read back in the same
        transaction, which still holds their locks.
        """
        if not ids:
            return []
        if not values:
            return self._read_back(conn, table, ids)
        returning = bool(conn.dialect.update_returning)
        if returning and len(ids) == 1:
            key, build_one = _update_one(table, values)
            return self._run(key, conn, build_one, {**values, "id_1": ids[0]})

        def build() -> Update:
            stmt = update(table).where(table.c.id.in_(_ids_bind(table))).values(_binds(table, values))
            return stmt.returning(*table.c) if returning else stmt

        stmt = self._statement(("update", table.name, frozenset(values), returning), build)
        result = conn.execute(stmt, {**values, "id_1": ids})
        if returning:
            return list(result)
        return self._read_back(conn, table, ids)

    def _read_back(self, conn: Connection, table: Table, ids: list[int]) -> list[Sequence[Any]]:
        """The rows with these ids, in the order of ``ids``; missing ones left out."""
        stmt = self._statement(
            ("read_back", table.name), lambda: select(table).where(table.c.id.in_(_ids_bind(table)))
        )
        found = {row[0]: row for row in conn.execute(stmt, {"id_1": ids})}  # id is the first column
        return [found[i] for i in ids if i in found]

    # -- plumbing -----------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self.clock()
        check_time(now, "the backend clock's value")
        return now

    # -- transactions ---------------------------------------------------------------
    #
    # An operation that sends one statement says so (one_statement=True); with
    # the dialect's single_statement_autocommit it then runs in autocommit, no
    # BEGIN and no COMMIT, the statement being atomic on its own. Everything
    # else runs in one transaction.

    def _one_statement_insert(self, rows: int, columns: int | None = None) -> bool:
        """Whether ``_insert_rows`` of this many rows, of ``columns`` values
        each, sends one statement.

        A single row; or a batch the dialect's ``batch_insert`` sends as one
        (Postgres: any). Else a batch sends several INSERTs (``batch_insert``
        statements, insertmanyvalues pages, one per row) that must commit
        together; so does a batch whose width is not given.
        """
        if not self.engine.dialect.insert_returning:
            return False
        if rows == 1:
            return True
        batch = self.batch_insert
        return batch is not None and columns is not None and len(batch.split(rows, columns)) == 1

    def _one_statement_update(self) -> bool:
        """Whether ``_update_by_ids`` of one id, and the claim, send one statement."""
        return bool(self.engine.dialect.update_returning)

    def _read(self, work: Callable[[Connection], _T], *, one_statement: bool = False) -> _T:
        """``work(conn)`` on a reading connection (several statements share one
        transaction); run once more on a new connection if the first one broke."""

        def once() -> _T:
            with self._connection(one_statement=one_statement, write=False) as conn:
                return work(conn)

        return self._attempts(once, write=False)

    def _write(
        self,
        work: Callable[[Connection], _T],
        *,
        one_statement: bool = False,
        duplicate_job: str | None = None,
        duplicate_queue: str | None = None,
    ) -> _T:
        """``work(conn)`` in a write transaction, run again if ``retryable`` says so.

        With ``one_statement`` (``work`` sends exactly one statement) and the
        dialect's ``single_statement_autocommit``, that statement runs in
        autocommit instead. A write whose connection breaks is not run again:
        it may have been applied.
        """

        def once() -> _T:
            with self._connection(
                one_statement=one_statement,
                write=True,
                duplicate_job=duplicate_job,
                duplicate_queue=duplicate_queue,
            ) as conn:
                return work(conn)

        return self._attempts(once, write=True)

    def _attempts(self, once: Callable[[], _T], *, write: bool) -> _T:
        """``once()``, run again when that is safe: a read whose connection
        broke, once more; a write the database rolled back as ``retryable``,
        up to ``WRITE_ATTEMPTS`` in all. A write whose connection broke never:
        it may have been applied.
        """
        attempt = 1
        while True:
            try:
                return once()
            except ConnectionLostError:
                if write or attempt >= 2:
                    raise
            except DBAPIError as exc:
                if not write or attempt >= WRITE_ATTEMPTS or not self.retryable(exc):
                    raise
            attempt += 1

    @contextmanager
    def _connection(
        self,
        *,
        one_statement: bool,
        write: bool,
        duplicate_job: str | None = None,
        duplicate_queue: str | None = None,
    ) -> Iterator[Connection]:
        """A pooled connection in a transaction, committed on success if ``write``;
        for ``one_statement`` where the dialect allows, in autocommit instead.
        Errors come out translated (``_translating``)."""
        autocommit = one_statement and self._autocommit is not None
        engine = self._autocommit if autocommit else self._writer if write else self.engine
        try:
            conn = engine.connect()  # type: ignore[union-attr]
        except (DBAPIError, InvalidRequestError) as exc:
            raise unavailable(self.url, exc) from exc
        with self._translating(duplicate_job, duplicate_queue), conn:
            if autocommit or not write:
                yield conn
            else:
                with conn.begin():
                    yield conn

    def _check_out(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        """The pool's checkout event: a dead connection is replaced, not handed out."""
        if not self.connection_alive(dbapi_connection):
            raise DisconnectionError("the server closed this pooled connection")

    def _handle_error(self, context: ExceptionContext) -> None:
        """The engine's handle_error event: an error on a connection the server
        closed is a disconnect even where the dialect's ``is_disconnect`` does
        not say so, and the connection is then dropped from the pool."""
        if context.is_disconnect or context.connection is None or context.is_pre_ping:
            return
        try:
            dbapi_connection = context.connection.connection.dbapi_connection
        except Exception:  # already closed or invalidated: nothing to tell
            return
        if dbapi_connection is not None and not self.connection_alive(dbapi_connection):
            context.is_disconnect = True

    @contextmanager
    def _translating(
        self, duplicate_job: str | None = None, duplicate_queue: str | None = None
    ) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise lost(self.url, exc) from exc
            if isinstance(exc, IntegrityError):
                constraint = self.violated_constraint(exc)
                if constraint == UNIQUE_DIGEST_INDEX:
                    raise DuplicatedJobError(duplicate_job) from exc
                if constraint == QUEUE_NAME_CONSTRAINT:
                    raise DuplicatedQueueError(duplicate_queue) from exc
            raise

    def _new_job_values(self, job: NewJobData, now: datetime, argument: str) -> dict[str, Any]:
        if not isinstance(job, NewJobData):
            raise TypeError(f"{argument} must be a NewJobData, not {type(job).__name__}")
        given = {
            "queue": job.queue,
            "script": job.script,
            "job_class": job.job_class,
            "args": job.args,
            "constructor_args": job.constructor_args,
            "timeout": job.timeout,
            "max_attempts": job.max_attempts,
            "available_at": now if job.available_at is None else job.available_at,
            "unique_digest": job.unique_digest,
            "uniqueness_config": job.uniqueness_config,
            "retry_delay": job.retry_delay,
            "backoff_strategy": job.backoff_strategy,
        }
        check_changes(JOB_FIELDS, given, "job")
        # What the backend sets itself needs no check (``now`` had its own).
        return {**given, "state": "waiting", "attempt": 0, "inserted_at": now}

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


def _explicit_begin(isolation_level: Any) -> Callable[[Connection], None]:
    """The engine's "begin" listener where the driver stays in autocommit:
    it sends the BEGIN itself, except on the backend's autocommit view and on a
    connection a caller switched to an isolation level of the driver's own."""
    if isolation_level is None:
        statement = "BEGIN"
    elif isinstance(isolation_level, str) and isolation_level.upper() in TRANSACTION_ISOLATION_LEVELS:
        statement = f"BEGIN ISOLATION LEVEL {isolation_level.upper()}"
    else:
        raise ValueError(
            f"isolation_level must be one of {', '.join(TRANSACTION_ISOLATION_LEVELS)}; got {isolation_level!r}"
        )

    def begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("sidequest_autocommit") or options.get("isolation_level", "AUTOCOMMIT") != "AUTOCOMMIT":
            return
        send_begin(conn, statement)

    return begin


def send_begin(conn: Connection, statement: str) -> None:
    """Send ``statement`` (a BEGIN) straight to the driver, from a "begin" listener.

    Straight, because SQLAlchemy's execution path would cost a write
    transaction more client CPU than the BEGIN itself; ``before_cursor_execute``
    listeners do not see it (the database's own trace does).
    """
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def _before(now: datetime, milliseconds: int) -> datetime:
    """``now`` minus ``milliseconds``, clamped to the range of datetime."""
    try:
        return now - timedelta(milliseconds=milliseconds)
    except OverflowError:
        return (datetime.min if milliseconds > 0 else datetime.max).replace(tzinfo=UTC)


def _binds(table: Table, keys: Iterable[str]) -> dict[str, Any]:
    """A bind parameter per column key, named after it and of the column's type."""
    return {key: bindparam(key, type_=table.c[key].type) for key in keys}


def _insert_one(table: Table, values: Mapping[str, Any]) -> tuple[Hashable, Callable[[], Insert]]:
    """The cache key and builder of the INSERT … RETURNING of one row with these keys."""
    keys = frozenset(values)
    return ("insert_returning", table.name, keys), lambda: insert(table).values(_binds(table, keys)).returning(*table.c)


def _update_one(table: Table, values: Mapping[str, Any]) -> tuple[Hashable, Callable[[], Update]]:
    """The cache key and builder of the UPDATE … RETURNING of these columns of the row ``id_1``."""
    keys = frozenset(values)

    def build() -> Update:
        return update(table).where(table.c.id == _id_bind(table)).values(_binds(table, keys)).returning(*table.c)

    return ("update_one", table.name, keys), build


def _id_bind(table: Table) -> Any:
    """The one id of an ``id = …``, passed as ``id_1``."""
    return bindparam("id_1", type_=table.c.id.type)


def _ids_bind(table: Table) -> Any:
    """The list of ids of an ``id IN (…)``, passed as ``id_1``."""
    return bindparam("id_1", type_=table.c.id.type, expanding=True)


def _one_or_none(rows: list[Sequence[Any]]) -> Sequence[Any] | None:
    return rows[0] if rows else None


def _job(row: Sequence[Any]) -> JobData:
    """A job from every column of ``jobs`` in table order: a Row, or a driver's tuple."""
    return JobData(*map(row.__getitem__, _JOB_FIELD_POSITIONS))


def _queue(row: Sequence[Any]) -> QueueConfig:
    """A queue from every column of ``queues`` in table order."""
    return QueueConfig(**dict(zip(_QUEUE_KEYS, row, strict=True)))


_JOB_KEYS = tuple(column.key for column in jobs.c)
# Where each of JobData's fields, in its own order, is in a row of the table.
_JOB_FIELD_POSITIONS = tuple(_JOB_KEYS.index(field.name) for field in dataclasses.fields(JobData))
_QUEUE_KEYS = tuple(column.key for column in queues.c)


def _counts_fields(counts: JobCounts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in JobCounts.__dataclass_fields__}
