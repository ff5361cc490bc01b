"""``SQLBackend``: every operation of the job store, written once in SQLAlchemy Core.

A dialect subclass (``sidequest_sql.dialects``) overrides only the hooks in
the "dialect hooks" section below. Hooks build Core objects and never touch
the database, so each dialect's SQL can be compiled and checked without a
server; the base class alone executes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
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
from sqlalchemy.exc import DBAPIError, IntegrityError

from . import jsonvalues
from .errors import (
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
from .records import (
    FINISHED_STATES,
    JobCounts,
    JobCountsAt,
    JobData,
    NewJobData,
    QueueConfig,
)
from .schema import (
    JOB_FIELD_OF_COLUMN,
    QUEUE_NAME_CONSTRAINT,
    UNIQUE_DIGEST_INDEX,
    Timestamp,
    jobs,
    queues,
)

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Engine, Row

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
    """The time a job counts at: when it finished, else started, was claimed, was enqueued."""
    c = jobs.c
    return type_coerce(
        func.coalesce(
            c.completed_at, c.failed_at, c.canceled_at, c.attempted_at, c.claimed_at, c.inserted_at
        ),
        Timestamp(),
    )


class SQLBackend:
    """A job store in one SQL database. Create it with ``sidequest_sql.create_backend``.

    One backend object is one database and one connection pool; it is safe to
    share between threads. It connects on its first operation, not before.
    """

    # -- capabilities ----------------------------------------------------------

    supports_schemas: ClassVar[bool] = False
    """Whether ``schema=`` can put the tables in a named schema of the database."""

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
        self._root_engine = create_engine(self.url, **options)
        self.configure_engine(self._root_engine)
        engine = self._root_engine
        if schema is not None:
            engine = engine.execution_options(schema_translate_map={None: schema})
        self.engine: Engine = engine
        self._writer: Engine = engine.execution_options(sidequest_write=True)
        # Shares the pool; each connection is in autocommit while checked out from here.
        self._autocommit: Engine | None = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if self.single_statement_autocommit else None
        )
        self._statements: dict[Hashable, Any] = {}

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
        with self._reading(one_statement=True) as conn:
            row = conn.execute(select(queues).where(queues.c.name == name)).one_or_none()
        return None if row is None else _queue(row)

    def get_queues_from_jobs(self) -> list[str]:
        with self._reading(one_statement=True) as conn:
            return list(conn.scalars(select(jobs.c.queue).distinct().order_by(jobs.c.queue)))

    def list_queues(self, order_by: str = "priority", order: str = "desc") -> list[QueueConfig]:
        check_queue_order(order_by, order)
        column = queues.c[order_by]
        stmt = select(queues).order_by(column.desc() if order == "desc" else column.asc(), queues.c.id)
        with self._reading(one_statement=True) as conn:
            return [_queue(row) for row in conn.execute(stmt)]

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
        stmt = self._statement(
            "get_job", lambda: select(jobs).where(jobs.c.id == bindparam("id_1", type_=jobs.c.id.type))
        )
        with self._reading(one_statement=True) as conn:
            row = conn.execute(stmt, {"id_1": job_id}).one_or_none()
        return None if row is None else _job(row)

    def create_new_job(self, job: NewJobData) -> JobData:
        values = self._new_job_values(job, self._now(), "job")
        digest = values["unique_digest"]
        [row] = self._write(
            lambda conn: self._insert_rows(conn, jobs, [values]),
            one_statement=self._one_statement_insert(1),
            duplicate_job=f"unique_digest {digest!r} is held by another job",
        )
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
            one_statement=self._one_statement_insert(len(rows)),
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

        def claim(conn: Connection) -> list[Row[Any]]:
            if conn.dialect.update_returning:
                return list(conn.execute(self._statement("claim", self._build_claim), {**picked, **values}))
            candidates = self._statement("claim_candidates", self._build_claim_candidates)
            return self._update_by_ids(conn, jobs, list(conn.scalars(candidates, picked)), values)

        claimed = [_job(row) for row in self._write(claim, one_statement=self._one_statement_update())]
        return sorted(claimed, key=lambda job: (job.inserted_at, job.id))

    def update_job(self, job_id: int, **changes: Any) -> JobData:
        """Set exactly the given fields (None nullifies) and return the job."""
        check_bigint(job_id, "job_id")
        check_changes(JOB_FIELDS, changes, "job")
        digest = changes.get("unique_digest")
        row = self._write(
            lambda conn: _one_or_none(self._update_by_ids(conn, jobs, [job_id], changes)),
            one_statement=self._one_statement_update(),
            duplicate_job=f"unique_digest {digest!r} is held by another job",
        )
        if row is None:
            raise JobNotFoundError(f"no job has id {job_id}")
        return _job(row)

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
        with self._reading(one_statement=True) as conn:
            return [_job(row) for row in conn.execute(stmt)]

    # -- statistics -------------------------------------------------------------------

    def count_jobs(self, *, since: datetime | None = None, until: datetime | None = None) -> JobCounts:
        """Jobs per state, bounded (inclusively) on the time each job counts at."""
        moment = finished_moment()
        stmt = select(jobs.c.state, func.count()).group_by(jobs.c.state)
        if since is not None:
            check_time(since, "since")
            stmt = stmt.where(moment >= since)
        if until is not None:
            check_time(until, "until")
            stmt = stmt.where(moment <= until)
        with self._reading(one_statement=True) as conn:
            return JobCounts.from_states(dict(conn.execute(stmt).all()))

    def count_jobs_by_queues(self) -> dict[str, JobCounts]:
        """Counts per state for every queue, configured or used by a job."""
        stmt = select(jobs.c.queue, jobs.c.state, func.count()).group_by(jobs.c.queue, jobs.c.state)
        with self._reading() as conn:
            names = list(conn.scalars(select(queues.c.name)))
            by_queue: dict[str, dict[str, int]] = {name: {} for name in names}
            for queue, state, count in conn.execute(stmt):
                by_queue.setdefault(queue, {})[state] = count
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
        with self._reading(one_statement=True) as conn:
            for start, state, n in conn.execute(stmt):
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
        with self._reading(one_statement=True) as conn:
            found = [_job(row) for row in conn.execute(stmt)]
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

        Returns how many were deleted. They go in batches of at most ``limit``
        (default ``DELETE_BATCH``), each its own transaction, so that no
        transaction locks a whole backlog; with ``limit`` only one batch runs,
        for a caller that reports progress between batches.
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

        def delete_batch(conn: Connection) -> int:
            # Ids first: MySQL cannot LIMIT a subquery of the table it deletes from.
            ids = list(conn.scalars(select(c.id).where(finished).limit(size)))
            return conn.execute(delete(jobs).where(c.id.in_(ids), finished)).rowcount if ids else 0

        deleted = batch = self._write(delete_batch)
        while limit is None and batch == size:
            batch = self._write(delete_batch)
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

    def _insert_rows(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[Row[Any]]:
        """Insert ``rows`` and return them as stored, in the same order.

        With ``RETURNING`` where the database has it (for a batch, where the
        driver also keeps the rows in parameter order); else one INSERT per row,
        read back by the new keys in the same transaction.
        """
        dialect = conn.dialect
        if len(rows) == 1 and dialect.insert_returning:
            stmt = self._statement(
                ("insert_returning", table.name, frozenset(rows[0])),
                lambda: insert(table).values(_binds(table, rows[0])).returning(*table.c),
            )
            return [conn.execute(stmt, rows[0]).one()]
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
    ) -> list[Row[Any]]:
        """Set ``values`` on the rows with these ids and return the rows as they now are.

        Without ``UPDATE … RETURNING`` the rows are read back in the same
        transaction, which still holds their locks.
        """
        if not ids:
            return []
        if not values:
            return self._read_back(conn, table, ids)
        returning = bool(conn.dialect.update_returning)

        def build() -> Update:
            stmt = update(table).where(table.c.id.in_(_ids_bind(table))).values(_binds(table, values))
            return stmt.returning(*table.c) if returning else stmt

        stmt = self._statement(("update", table.name, frozenset(values), returning), build)
        result = conn.execute(stmt, {**values, "id_1": ids})
        if returning:
            return list(result)
        return self._read_back(conn, table, ids)

    def _read_back(self, conn: Connection, table: Table, ids: list[int]) -> list[Row[Any]]:
        """The rows with these ids, in the order of ``ids``; missing ones left out."""
        stmt = self._statement(
            ("read_back", table.name), lambda: select(table).where(table.c.id.in_(_ids_bind(table)))
        )
        found = {row._mapping[table.c.id]: row for row in conn.execute(stmt, {"id_1": ids})}
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

    def _one_statement_insert(self, rows: int) -> bool:
        """Whether ``_insert_rows`` of this many rows sends one statement.

        Only a single row: a batch goes through insertmanyvalues, which splits
        it into several INSERTs (``insertmanyvalues_page_size`` rows each) that
        must commit together.
        """
        return rows == 1 and bool(self.engine.dialect.insert_returning)

    def _one_statement_update(self) -> bool:
        """Whether ``_update_by_ids`` of one id, and the claim, send one statement."""
        return bool(self.engine.dialect.update_returning)

    @contextmanager
    def _reading(self, *, one_statement: bool = False) -> Iterator[Connection]:
        """A connection for reading; several statements share one transaction."""
        engine = self._autocommit if one_statement and self._autocommit is not None else self.engine
        with self._translating(), engine.connect() as conn:
            yield conn

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
        autocommit instead.
        """
        attempt = 1
        while True:
            try:
                with self._writing(
                    one_statement=one_statement, duplicate_job=duplicate_job, duplicate_queue=duplicate_queue
                ) as conn:
                    return work(conn)
            except DBAPIError as exc:
                if attempt >= WRITE_ATTEMPTS or not self.retryable(exc):
                    raise
                attempt += 1

    @contextmanager
    def _writing(
        self,
        *,
        one_statement: bool = False,
        duplicate_job: str | None = None,
        duplicate_queue: str | None = None,
    ) -> Iterator[Connection]:
        """A write transaction, committed on success, with errors translated;
        for ``one_statement`` where the dialect allows, an autocommit connection."""
        if one_statement and self._autocommit is not None:
            opened: Any = self._autocommit.connect()
        else:
            opened = self._writer.begin()
        with self._translating(duplicate_job, duplicate_queue), opened as conn:
            yield conn

    @contextmanager
    def _translating(
        self, duplicate_job: str | None = None, duplicate_queue: str | None = None
    ) -> Iterator[None]:
        try:
            yield
        except IntegrityError as exc:
            constraint = self.violated_constraint(exc)
            if constraint == UNIQUE_DIGEST_INDEX:
                raise DuplicatedJobError(duplicate_job) from exc
            if constraint == QUEUE_NAME_CONSTRAINT:
                raise DuplicatedQueueError(duplicate_queue) from exc
            raise

    def _new_job_values(self, job: NewJobData, now: datetime, argument: str) -> dict[str, Any]:
        if not isinstance(job, NewJobData):
            raise TypeError(f"{argument} must be a NewJobData, not {type(job).__name__}")
        values = {
            "queue": job.queue,
            "state": "waiting",
            "script": job.script,
            "job_class": job.job_class,
            "args": job.args,
            "constructor_args": job.constructor_args,
            "timeout": job.timeout,
            "attempt": 0,
            "max_attempts": job.max_attempts,
            "inserted_at": now,
            "available_at": now if job.available_at is None else job.available_at,
            "unique_digest": job.unique_digest,
            "uniqueness_config": job.uniqueness_config,
            "retry_delay": job.retry_delay,
            "backoff_strategy": job.backoff_strategy,
        }
        check_changes(JOB_FIELDS, values, "job")
        return values

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


def _before(now: datetime, milliseconds: int) -> datetime:
    """``now`` minus ``milliseconds``, clamped to the range of datetime."""
    try:
        return now - timedelta(milliseconds=milliseconds)
    except OverflowError:
        return (datetime.min if milliseconds > 0 else datetime.max).replace(tzinfo=UTC)


def _binds(table: Table, keys: Iterable[str]) -> dict[str, Any]:
    """A bind parameter per column key, named after it and of the column's type."""
    return {key: bindparam(key, type_=table.c[key].type) for key in keys}


def _ids_bind(table: Table) -> Any:
    """The list of ids of an ``id IN (…)``, passed as ``id_1``."""
    return bindparam("id_1", type_=table.c.id.type, expanding=True)


def _one_or_none(rows: list[Row[Any]]) -> Row[Any] | None:
    return rows[0] if rows else None


def _job(row: Row[Any]) -> JobData:
    mapping = row._mapping
    return JobData(**{field: mapping[column] for column, field in _JOB_COLUMNS})


_JOB_COLUMNS = [(jobs.c[key], key) for key in JOB_FIELD_OF_COLUMN.values()]


def _queue(row: Row[Any]) -> QueueConfig:
    return QueueConfig(**row._asdict())


def _counts_fields(counts: JobCounts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in JobCounts.__dataclass_fields__}
