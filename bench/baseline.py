"""The raw-driver baseline: our own statements, compiled once, run on the bare driver.

Each statement is built the way ``SQLBackend`` builds it — the claim through
the backend's own hooks (``lock_for_claim``, ``claim_statement``), the insert
and the update as ``create_new_job`` and ``update_job`` build them — with
sentinel values in place of what changes from call to call, then compiled
with the backend's dialect into the SQL string the driver receives. Per call
the baseline only fills in the changing values (through the same bind
processors, so JSON and times are encoded as the library encodes them) and
executes: psycopg 3 on Postgres, ``sqlite3`` on SQLite with the same PRAGMAs
and ``BEGIN IMMEDIATE``, the plain DB-API connection elsewhere. Where the
backend runs single statements in autocommit (``single_statement_autocommit``,
Postgres) the baseline does too (``clients.RawClient``), so that both sides
pay the same round trips.

The batch enqueue (``RawBatch``) runs the statements of the backend's
``batch_insert`` hook — one ``INSERT … SELECT … FROM unnest(arrays)`` on
Postgres, multi-row ``INSERT … VALUES`` statements on SQLite — compiled the
same way, their values encoded by the library's own encoders (the columns'
bind processors), each value the jobs share encoded once per batch.

``checks.same_sql`` confirms at run time that the library sent the same SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, bindparam, insert, select, update

from sidequest_sql import NewJobData
from sidequest_sql.rows import new_job_values
from sidequest_sql.schema import jobs

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

    from sidequest_sql.base import SQLBackend
    from sidequest_sql.batches import BatchInsert

# Values no real call uses, so that each bind parameter of a compiled statement
# can be told apart by the value it was compiled with.
SENTINELS: dict[str, Any] = {
    "now": datetime(2001, 2, 3, 4, 5, 6, 70809, tzinfo=UTC),
    "queue": "\x01bench-queue",
    "worker": "\x01bench-worker",
    "quantity": 987_654_321,
    "job_id": 918_273_645_546,
    "args": ["\x01bench-args"],
}

SCRIPT = "bench.py"
JOB_CLASS = "BenchJob"


def new_job(queue: str, i: int) -> NewJobData:
    """The job every enqueue phase writes, for the library and the baseline alike."""
    return NewJobData(queue=queue, script=SCRIPT, job_class=JOB_CLASS, args=[i])


@dataclass
class RawStatement:
    """One compiled statement and how to fill in its parameters for a call."""

    sql: str
    names: tuple[str, ...]
    positional: bool
    fixed: dict[str, Any]
    roles: dict[str, str]
    processors: dict[str, Callable[[Any], Any]] = field(default_factory=dict)

    def params(self, values: Mapping[str, Any]) -> Any:
        out = dict(self.fixed)
        for name, role in self.roles.items():
            value = values[role]
            processor = self.processors.get(name)
            out[name] = value if processor is None else processor(value)
        if self.positional:
            return tuple(out[name] for name in self.names)
        return out


def _is(value: Any, sentinel: Any) -> bool:
    return type(value) is type(sentinel) and value == sentinel


def compile_raw(stmt: Any, dialect: Dialect, extra: Mapping[str, Any] | None = None) -> RawStatement:
    """``stmt`` as the SQL string its driver gets, with its changing parameters found.

    ``extra`` names more sentinels (role → value) than ``SENTINELS``.
    """
    sentinels = {**SENTINELS, **(extra or {})}
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    processors = dict(compiled._bind_processors)
    roles: dict[str, str] = {}
    fixed: dict[str, Any] = {}
    for name, value in params.items():
        role = next((r for r, s in sentinels.items() if _is(value, s)), None)
        if role is not None:
            roles[name] = role
        else:
            processor = processors.get(name)
            fixed[name] = value if processor is None else processor(value)
    positional = bool(compiled.positional)
    names = tuple(compiled.positiontup) if positional else tuple(params)
    return RawStatement(
        sql=compiled.string,
        names=names,
        positional=positional,
        fixed=fixed,
        roles=roles,
        processors={n: p for n, p in processors.items() if n in roles},
    )


@dataclass
class RawBatch:
    """The statements of a batch enqueue, as the library's ``batch_insert`` builds
    them, and the job's values: per column a role (``queue``, ``now``,
    ``args``: what changes from call to call) or a value fixed for every job."""

    batch: BatchInsert
    dialect: Dialect
    keys: tuple[str, ...]
    roles: dict[str, str]
    fixed: dict[str, Any]
    encoders: Mapping[str, Callable[[Any], Any] | None]
    _compiled: dict[Hashable, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    def sql(self, rows: int) -> str:
        """The SQL of the statement of ``rows`` rows, compiled once per shape."""
        return self._compile(rows)[0]

    def _compile(self, rows: int) -> tuple[str, tuple[str, ...]]:
        """The SQL, and where positional the column keys of each row's values in order."""
        shape = self.batch.shape(rows)
        if shape not in self._compiled:
            compiled: Any = self.batch.statement(jobs, self.keys, rows).compile(dialect=self.dialect)
            order: tuple[str, ...] = ()
            if compiled.positional:
                # Each row's parameters, named "<key>_<row>", in the table's column order.
                names = list(compiled.positiontup)
                order = tuple(name.rsplit("_", 1)[0] for name in names[: len(self.keys)])
                if names != [f"{key}_{i}" for i in range(rows) for key in order]:
                    raise RawUnavailable("the batch statement's parameters are not row by row")
            self._compiled[shape] = (compiled.string, order)
        return self._compiled[shape]

    def columns(self, queue: str, now: datetime, first_arg: int, count: int) -> dict[str, list[Any]]:
        """Every column's encoded values for ``count`` jobs; what the jobs share encoded once."""
        given = {"queue": queue, "now": now}
        out: dict[str, list[Any]] = {}
        for key in self.keys:
            encode = self.encoders[key] or _same
            role = self.roles.get(key)
            if role == "args":
                out[key] = [encode([first_arg + k]) for k in range(count)]
            else:
                out[key] = [encode(given[role]) if role is not None else self.fixed[key]] * count
        return out

    def statements(self, columns: Mapping[str, list[Any]], count: int, positional: bool) -> list[tuple[str, Any]]:
        """The batch's statements, each with its parameters as the driver takes them."""
        out = []
        start = 0
        for size in self.batch.split(count, len(self.keys)):
            stop = start + size
            sql, order = self._compile(size)
            if positional:
                params: Any = list(chain.from_iterable(zip(*(columns[key][start:stop] for key in order))))
            else:
                params = self.batch.parameters(self.keys, columns, start, stop)
            out.append((sql, params))
            start = stop
        return out


def _same(value: Any) -> Any:
    return value


@dataclass
class OurStatements:
    """The statements of enqueue, claim and complete, ready for the raw driver."""

    insert: RawStatement
    claim: RawStatement | None
    candidates: RawStatement
    complete: RawStatement
    update_returning: bool
    dialect: Dialect
    batch: RawBatch | None = None
    _by_ids: dict[int, tuple[RawStatement, RawStatement]] = field(default_factory=dict)

    def claim_by_ids(self, count: int) -> tuple[RawStatement, RawStatement]:
        """Update and read-back for ``count`` ids, where the claim is not one statement."""
        if count not in self._by_ids:
            ids = {f"id{i}": SENTINELS["job_id"] + 1 + i for i in range(count)}
            values = {"state": "claimed", "claimed_at": SENTINELS["now"], "claimed_by": SENTINELS["worker"]}
            where = jobs.c.id.in_(list(ids.values()))
            up = compile_raw(update(jobs).where(where).values(values), self.dialect, ids)
            back = compile_raw(select(jobs).where(where), self.dialect, ids)
            self._by_ids[count] = (up, back)
        return self._by_ids[count]

    def sql(self) -> dict[str, str]:
        out = {"insert": self.insert.sql, "complete": self.complete.sql, "candidates": self.candidates.sql}
        if self.claim is not None:
            out["claim"] = self.claim.sql
        if self.batch is not None:
            out["batch (of 2)"] = self.batch.sql(2)
        return out


def claim_candidates(backend: SQLBackend, queue: Any, now: Any, quantity: Any) -> Any:
    """The locking select of candidates, as ``claim_pending_job`` builds it."""
    c = jobs.c
    return backend.lock_for_claim(
        select(c.id)
        .where(c.state == "waiting", c.queue == queue, c.available_at <= now)
        .order_by(c.inserted_at, c.id)
        # Named as the library names it: its claim is built once, with a bindparam.
        .limit(bindparam("quantity", value=quantity, type_=Integer()))
    )


def our_statements(backend: SQLBackend) -> OurStatements:
    """Compile enqueue, claim and complete for ``backend``'s (connected) dialect."""
    dialect = backend.engine.dialect
    s = SENTINELS
    values = new_job_values(
        NewJobData(queue=s["queue"], script=SCRIPT, job_class=JOB_CLASS, args=s["args"]),
        s["now"],
        "job",
        max_json_depth=backend.max_json_depth,
    )
    enqueue = insert(jobs).values(values).returning(*jobs.c)
    candidates = claim_candidates(backend, s["queue"], s["now"], s["quantity"])
    claim_values = {"state": "claimed", "claimed_at": s["now"], "claimed_by": s["worker"]}
    complete = (
        update(jobs)
        .where(jobs.c.id == s["job_id"])
        .values({"state": "completed", "completed_at": s["now"]})
        .returning(*jobs.c)
    )
    returning = bool(dialect.update_returning)
    batch = None
    if backend.batch_insert is not None and dialect.insert_returning:
        keys = tuple(values)
        roles = {key: role for key, value in values.items() for role in s if _is(value, s[role])}
        encoders = backend.batch_insert.encoders(jobs, keys, dialect)
        fixed = {key: (encoders[key] or _same)(value) for key, value in values.items() if key not in roles}
        batch = RawBatch(backend.batch_insert, dialect, keys, roles, fixed, encoders)
    return OurStatements(
        insert=compile_raw(enqueue, dialect),
        claim=compile_raw(backend.claim_statement(candidates, claim_values), dialect) if returning else None,
        candidates=compile_raw(candidates, dialect),
        complete=compile_raw(complete, dialect),
        update_returning=returning,
        dialect=dialect,
        batch=batch,
    )


def connect(backend: SQLBackend) -> tuple[Any, str]:
    """A bare driver connection to ``backend``'s database, set up as the library sets up its own.

    Returns the connection and its kind: ``"psycopg"``, ``"sqlite3"`` or ``"dbapi"``.
    """
    url = backend.url
    name = url.get_backend_name()
    if name == "postgresql":
        import psycopg

        query = {k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()}
        conn = psycopg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database,
            autocommit=False,
            **query,
        )
        conn.autocommit = True
        conn.execute("SET TIME ZONE 'UTC'")
        conn.autocommit = False
        return conn, "psycopg"
    if name == "sqlite" and url.database not in (None, "", ":memory:"):
        import sqlite3

        from sidequest_sql.dialects.sqlite import BUSY_TIMEOUT_MS

        conn = sqlite3.connect(url.database, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {getattr(backend, '_synchronous', 'NORMAL')}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn, "sqlite3"
    if name == "sqlite":
        raise RawUnavailable("an in-memory SQLite database cannot be opened a second time")
    # Any other database: the pooled DB-API connection, set up by the engine's
    # connect events; the calls go straight to the driver's cursor.
    return backend.execution.root_engine.raw_connection(), "dbapi"


class RawUnavailable(Exception):
    """The raw baseline cannot run against this database."""
