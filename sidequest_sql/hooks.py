"""What a dialect may say about its database: capability flags and hooks, each with a default.

``SQLBackend`` (``base``) inherits these and a dialect subclass overrides
only what its database does differently. Hooks build SQLAlchemy Core objects
and never touch the database, so each dialect's SQL can be compiled and
checked without a server; the execution layer (``execution``) alone runs
statements. The same hooks serve the sync backend and the async one
(``aio``): the async one runs the very same code over the dialect's asyncio
driver, which ``async_engine_url`` names.

One hook is a mechanism rather than a statement: ``job_notifier`` says how
the database tells a backend waiting in ``wait_for_jobs`` that jobs may be
claimable (Postgres: LISTEN/NOTIFY). Its ``JobNotifier`` works on the one
connection the backend listens on (``listener``); without one, waits poll
every ``poll_interval`` seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import ColumnElement, Executable, Select, Update, literal, update

from .errors import UnsupportedDatabaseError
from .schema import jobs

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine
    from sqlalchemy.exc import DBAPIError, IntegrityError

    from .batches import BatchInsert
    from .times import TimeUnit

ASYNC_DRIVERS: Mapping[str, str] = {
    "psycopg": "psycopg_async",
    "pysqlite": "aiosqlite",
    "pymysql": "aiomysql",
}
"""The asyncio driver SQLAlchemy has for each sync driver the dialects use."""


class JobNotifier:
    """How a database tells a waiting backend that jobs of a queue may be claimable.

    A dialect that has such a mechanism returns one from
    ``DialectHooks.job_notifier``. The backend then keeps one connection of
    its own for it (``listener``): a driver connection made like the pool's
    but outside it, used by nothing else, and ``listen``, ``probe`` and
    ``receive`` below are all that is done with it. The database must send a
    notification whose payload is the queue's name whenever, and only after,
    a transaction commits that inserts a waiting job or makes one waiting
    (Postgres: a trigger that NOTIFYs, shipped as a migration).

    ``connection`` is the driver's connection as SQLAlchemy's pool hands it
    out; under the async backend that is SQLAlchemy's adapted connection,
    whose ``driver_connection`` is the asyncio driver's own
    (``connections.driver_connection``), and the calls run in a greenlet, where
    ``sqlalchemy.util.await_only`` awaits the driver's coroutines.
    """

    def listen(self, connection: Any, schema: str | None) -> str:
        """Start receiving, on ``connection``, the notifications for the jobs
        table in ``schema`` (None: the one the connection's search path finds);
        return the channel they arrive on."""
        raise NotImplementedError

    def probe(self, channel: str, payload: str) -> Executable:
        """A statement that sends ``payload`` on ``channel`` when its
        transaction commits; the backend runs it on a pooled connection, to
        learn whether what others send reaches the listening connection."""
        raise NotImplementedError

    def receive(self, connection: Any, timeout: float) -> list[tuple[str, str]]:
        """The notifications that arrived on ``connection`` as ``(channel,
        payload)``, waiting up to ``timeout`` seconds for the first; empty when
        none came. Raises the driver's error when the connection is lost."""
        raise NotImplementedError

    def unlisten(self, connection: Any) -> None:
        """Stop listening on ``connection``, which is closed next, where closing it
        would not: where probes did not come back (behind a pooler, the listening
        may live on in a server connection the client no longer holds)."""


class DialectHooks:
    """The defaults every dialect starts from; see the module docstring."""

    # -- capabilities ----------------------------------------------------------

    supports_schemas: ClassVar[bool] = False
    """Whether ``schema=`` can put the tables in a named schema of the database."""

    supports_skip_locked: ClassVar[bool] = True
    """Whether a claim skips the rows another transaction has locked (``lock_for_claim``).

    Then an open transaction elsewhere holds up only the rows it locked. Where
    not (SQLite), a write transaction holds the whole database and other
    writers wait for it to end.
    """

    max_json_depth: ClassVar[int] = 256
    """How many arrays and objects deep a JSON payload may nest (``[[1]]`` is 2):
    ``args``, ``constructor_args``, ``result``, ``errors``, ``uniqueness_config``
    and the ``args`` filter of ``list_jobs``. A deeper one raises ValueError
    naming the argument and this limit, before anything is written. The
    contract suite stores and reads back documents this deep, and expects one
    level more to be refused. At least 1.

    A dialect declares what its database stores and reads back, and no more
    than this default, which the library's own Python code sets: writing a
    document (``jsonvalues.dumps``) and reading one (the ``json`` module's
    parser) take one or two frames per level under the interpreter's
    recursion limit (1000 by default), which the caller's stack shares.
    Through the operations about 490 levels go in and come back on Python
    3.11 (measured); 256 leave a caller some 450 frames of its own.
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
    one statement run on a bare pooled connection.
    """

    batch_insert: ClassVar[BatchInsert | None] = None
    """How a batch of rows (``create_new_jobs``) goes in few multi-row
    ``INSERT … RETURNING`` statements, where the database has
    ``INSERT … RETURNING``: a ``batches.BatchInsert`` (Postgres:
    ``UnnestInsert``, one statement for any batch; SQLite: ``ValuesInsert``).
    None: SQLAlchemy's ``insertmanyvalues``, or one INSERT per row.
    """

    poll_interval: float = 0.5
    """Seconds between two looks at the store by a backend waiting in
    ``wait_for_jobs`` while no notification can wake it: always where the
    dialect has no ``job_notifier``; otherwise while its listening connection
    is being made, is lost, or hears nothing (PgBouncer's transaction
    pooling). A dialect's default; set it on a backend to change it for that
    backend (``backend.poll_interval = 0.1``). Each sleep of a polling wait
    is this and up to a quarter more, at random, so that waits started
    together do not look in step; it never polls more often than this. A job
    whose ``available_at`` is ahead wakes it at that moment whatever the
    interval.
    """

    errors_abort_transactions: ClassVar[bool] = False
    """Whether a statement that fails (a unique key violated, say) leaves the
    whole transaction unusable until it is rolled back, as on Postgres.

    An operation that may hit a unique key then runs inside a savepoint when
    it joins a caller's transaction (``connection=``), even where it is one
    statement, so that a ``DuplicatedJobError`` leaves that transaction
    usable. (An operation of several statements runs in one on every
    dialect, so that an error midway leaves the caller's transaction as it
    was.)
    """

    # -- the engine --------------------------------------------------------------

    @classmethod
    def engine_url(cls, url: URL) -> URL:
        """The URL handed to SQLAlchemy, e.g. with the dialect's driver filled in."""
        return url

    @classmethod
    def async_engine_url(cls, url: URL) -> URL:
        """The URL of the same database over an asyncio driver, for ``create_async_backend``.

        The default takes ``engine_url`` and swaps its driver for SQLAlchemy's
        asyncio one (``ASYNC_DRIVERS``: psycopg → psycopg_async, pysqlite →
        aiosqlite, pymysql → aiomysql); a URL that already names an asyncio
        driver is kept.
        """
        sync_url = cls.engine_url(url)
        dialect = sync_url.get_dialect()
        if getattr(dialect, "is_async", False):
            return sync_url
        driver = str(getattr(dialect, "driver", ""))
        if driver not in ASYNC_DRIVERS:
            raise UnsupportedDatabaseError(
                f"{cls.__name__} knows no asyncio driver for {sync_url.drivername!r}: "
                f"name one in the URL, or override async_engine_url"
            )
        return sync_url.set(drivername=f"{sync_url.get_backend_name()}+{ASYNC_DRIVERS[driver]}")

    @classmethod
    def engine_options(cls, url: URL) -> dict[str, Any]:
        """Default ``create_engine`` options for this database; the caller's win.

        ``url`` is the one the engine is made for (``engine_url`` or
        ``async_engine_url``), so a dialect can tell the two drivers apart.
        """
        return {}

    def configure_engine(self, engine: Engine) -> None:
        """Install per-connection settings (event listeners) on a new engine.

        Over an asyncio driver ``engine`` is the async engine's ``sync_engine``,
        and listeners receive SQLAlchemy's adapted driver connections, which
        offer the sync driver's interface.
        """

    def connection_alive(self, dbapi_connection: Any) -> bool:
        """Whether a driver connection leaving the pool may still work.

        Called at every checkout, and whenever a connection kept between
        one-statement operations (``idle.IdleConnections``) is taken again,
        so it must not ask the server; a connection it calls dead is replaced
        before anything is sent on it. The default trusts every connection
        (right for an embedded database). Over an asyncio driver
        ``dbapi_connection`` is SQLAlchemy's adapted connection, whose
        ``driver_connection`` is the driver's own (``connections.driver_connection``).
        """
        return True

    def job_notifier(self) -> JobNotifier | None:
        """How the database wakes a backend waiting for jobs, or None: waits
        then poll every ``poll_interval`` seconds. Called once, as the backend
        is made; see ``JobNotifier``."""
        return None

    def pending_begin(self, dbapi_connection: Any) -> str | None:
        """The statement that begins the transaction a caller's connection is
        in, where its driver has not sent it yet, else None.

        Some drivers begin a transaction lazily, just before a statement they
        take for a write; one they do not (sqlite3: a ``WITH … UPDATE``, a
        ``SAVEPOINT``) would then run outside the caller's transaction, and
        a ``SAVEPOINT`` would start one of its own, which its ``RELEASE``
        commits. Before a write joins a caller's transaction the base sends
        this statement, as the driver's own first write would have. Like
        ``connection_alive`` it only looks at the driver's connection
        (SQLAlchemy's adapted one under the async backend). The default:
        None, the driver's transaction is under way (or there is none).
        """
        return None

    # -- statements ------------------------------------------------------------------

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
        return update(jobs).where(jobs.c.id == claimable.c.id).values(values).returning(*jobs.c)

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

    # -- errors ------------------------------------------------------------------------

    def violated_constraint(self, error: IntegrityError) -> str | None:
        """The name of the constraint or unique index a database error reports."""
        return None

    def retryable(self, error: DBAPIError) -> bool:
        """Whether ``error`` rolled back a write transaction that may simply be run
        again (a deadlock victim, say); such a transaction is retried a few times."""
        return False
