"""How operations reach the database: the pool, transactions, retries, error translation.

An operation (``base.SQLBackend``) says what to run: a function of a
connection (``read``, ``write``), or one statement (``rows``). This layer
decides how:

- An operation that is one statement runs on a bare pooled driver
  connection where the dialect allows (``DriverStatement.rows_alone``, kept
  between calls by ``idle.IdleConnections``), in autocommit where the
  dialect has ``single_statement_autocommit``; anything else in one
  transaction on a pooled SQLAlchemy ``Connection``.
- A read whose connection broke runs once more on a new one; a write the
  database rolled back as ``retryable`` runs again, up to ``WRITE_ATTEMPTS``
  in all; a write whose connection broke never (it may have been applied).
- Database errors leave as the library's own (``errors``), always chained.
- With a caller's ``connection=``, the work runs inside that connection's
  current transaction instead: nothing is begun, committed, rolled back or
  retried here, and the connection must reach this backend's database.
- The waits of ``wait_for_jobs`` and the one connection they listen on
  (``wakeups``) live here too, and ``close()`` ends that listening.

The async backend (``aio``) runs this same code over an asyncio driver:
SQLAlchemy's asyncio engine is a sync engine whose driver calls, made from a
greenlet, await the real driver (``sqlalchemy.util.greenlet_spawn``, what
``AsyncConnection.run_sync`` is built on). One layer thus serves both, and
every operation exists once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import create_engine, event, insert, select, update
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InvalidRequestError

from . import jsonvalues
from .connections import describe, lost, unavailable
from .driver import DriverStatement
from .errors import ConnectionLostError, DuplicatedJobError, DuplicatedQueueError
from .idle import IdleConnections
from .schema import QUEUE_NAME_CONSTRAINT, UNIQUE_DIGEST_INDEX
from .statements import binds, ids_bind, insert_one, update_one
from .wakeups import Wakeups

if TYPE_CHECKING:
    from sqlalchemy import Table, Update
    from sqlalchemy.engine import Dialect, Engine, ExceptionContext
    from sqlalchemy.ext.asyncio import AsyncEngine

    from .hooks import DialectHooks

Row = Sequence[Any]
_T = TypeVar("_T")

# A write transaction a database rolled back as retryable (a deadlock) runs at most this often.
WRITE_ATTEMPTS = 5
# Statements one backend keeps built (update_job builds one per set of fields changed).
STATEMENT_CACHE_SIZE = 500
# What a caller's isolation_level may be where single statements run in autocommit.
TRANSACTION_ISOLATION_LEVELS = ("READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")
# Ports a URL without one means, so that it names the same server as a URL with it.
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}
_THIS_MACHINE = ("", "localhost", "127.0.0.1", "::1")


class Execution:
    """The engine of one backend and every way its operations are run (see the module docstring)."""

    def __init__(
        self,
        hooks: DialectHooks,
        url: URL,
        *,
        schema: str | None,
        engine_options: Mapping[str, Any],
        asynchronous: bool,
    ) -> None:
        self.hooks = hooks
        self.url = url
        options = {"json_serializer": jsonvalues.dumps, **hooks.engine_options(url)}
        options.update(engine_options)
        begin = None
        if hooks.single_statement_autocommit:
            begin = explicit_begin(options.pop("isolation_level", None))
            options["isolation_level"] = "AUTOCOMMIT"
        self.async_engine: AsyncEngine | None = None
        if asynchronous:
            from sqlalchemy.ext.asyncio import create_async_engine

            self.async_engine = create_async_engine(url, **options)
            root = self.async_engine.sync_engine
        else:
            root = create_engine(url, **options)
        self.root_engine: Engine = root
        hooks.configure_engine(root)
        event.listen(root, "checkout", self._check_out)
        event.listen(root, "handle_error", self._handle_error)
        if begin is not None:
            event.listen(root, "begin", begin)
        engine = root if schema is None else root.execution_options(schema_translate_map={None: schema})
        self.schema_map = None if schema is None else {None: schema}
        self.engine: Engine = engine
        self.writer: Engine = engine.execution_options(sidequest_write=True)
        # Shares the pool; its connections send no BEGIN.
        self.autocommit: Engine | None = (
            engine.execution_options(sidequest_autocommit=True) if hooks.single_statement_autocommit else None
        )
        # Where one-statement operations run on bare connections (``_alone``), kept between them.
        self.idle = IdleConnections(self.autocommit or self.engine, hooks.connection_alive)
        self._statements: dict[Hashable, Any] = {}
        # The waits of wait_for_jobs, and the connection they listen on, once one waits.
        self.wakeups = Wakeups(self, hooks.job_notifier(), schema=schema)

    def close(self) -> None:
        """Stop listening for jobs and close every pooled connection."""
        self.wakeups.close()
        self.idle.clear()
        self.root_engine.dispose()

    # -- statements built once ----------------------------------------------------------

    def statement(self, key: Hashable, build: Callable[[], _T]) -> _T:
        """The statement kept under ``key``, built by ``build()`` the first time."""
        stmt = self._statements.get(key)
        if stmt is None:
            stmt = build()
            if len(self._statements) < STATEMENT_CACHE_SIZE:
                self._statements[key] = stmt
        return stmt

    def built(self) -> list[Hashable]:
        """The keys of the statements kept built, for tests that count them."""
        return list(self._statements)

    def driver_statement(
        self, key: Hashable, build: Callable[[], Any], before_send: Callable[[], None] | None = None
    ) -> DriverStatement:
        """The statement ``build()`` makes, compiled for the backend's dialect once."""
        compiled: DriverStatement | None = self._statements.get(("driver", key))
        if compiled is not None:
            return compiled
        return self.statement(
            ("driver", key),
            lambda: DriverStatement(
                build(), self.engine.dialect, self.schema_map, self.hooks.connection_alive, before_send,
                asynchronous=self.async_engine is not None,
            ),
        )

    def run(
        self,
        key: Hashable,
        conn: Connection,
        build: Callable[[], Any],
        values: Mapping[str, Any],
        before_send: Callable[[], None] | None = None,
    ) -> list[Row]:
        """The rows of the statement ``build()`` makes, run with ``values`` on
        ``conn``: on the driver's cursor where the dialect has
        ``direct_execution`` and ``conn`` is the backend's own, else through
        SQLAlchemy's execution path (so a caller's connection, whatever its
        driver, compiles the statement for itself)."""
        if self.hooks.direct_execution and conn.dialect is self.engine.dialect:
            return self.driver_statement(key, build, before_send).rows(conn, values)
        if before_send is not None:
            before_send()
        return list(conn.execute(self.statement(key, build), values))

    # -- what sends one statement ----------------------------------------------------
    #
    # An operation that sends one statement says so (one_statement=True); with
    # the dialect's single_statement_autocommit it then runs in autocommit, no
    # BEGIN and no COMMIT, the statement being atomic on its own. Everything
    # else runs in one transaction.

    def one_statement_insert(self, rows: int, columns: int | None = None) -> bool:
        """Whether ``insert_rows`` of this many rows, of ``columns`` values
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
        batch = self.hooks.batch_insert
        return batch is not None and columns is not None and len(batch.split(rows, columns)) == 1

    def one_statement_update(self) -> bool:
        """Whether ``update_by_ids`` of one id, and the claim, send one statement."""
        return bool(self.engine.dialect.update_returning)

    # -- running work ---------------------------------------------------------------

    def rows(
        self,
        key: Hashable,
        build: Callable[[], Any],
        values: Mapping[str, Any],
        *,
        write: bool,
        single: bool = True,
        duplicate_job: str | None = None,
        connection: Connection | None = None,
        otherwise: Callable[[Connection], list[Row]] | None = None,
        before_send: Callable[[], None] | None = None,
    ) -> list[Row]:
        """The rows of one statement that is a whole operation (``single``: the
        dialect can make it one, e.g. it has ``RETURNING``), run alone on a
        pooled driver connection where that is possible (``_alone``); else
        ``otherwise(conn)`` (by default the statement itself) through ``read``
        or ``write``."""
        if connection is None:
            rows = self._alone(
                key, build, values, write=write, single=single, duplicate_job=duplicate_job, before_send=before_send
            )
            if rows is not None:
                return rows
        work = otherwise or (lambda conn: self.run(key, conn, build, values, before_send))
        if write:
            return self.write(work, one_statement=single, duplicate_job=duplicate_job, connection=connection)
        return self.read(work, one_statement=single, connection=connection)

    def read(
        self, work: Callable[[Connection], _T], *, one_statement: bool = False, connection: Connection | None = None
    ) -> _T:
        """``work(conn)`` on a reading connection (several statements share one
        transaction); run once more on a new connection if the first one broke."""
        if connection is not None:
            with self.joined(connection):
                return work(connection)

        def once() -> _T:
            with self._connection(one_statement=one_statement, write=False) as conn:
                return work(conn)

        return self._attempts(once, write=False)

    def write(
        self,
        work: Callable[[Connection], _T],
        *,
        one_statement: bool = False,
        duplicate_job: str | None = None,
        duplicate_queue: str | None = None,
        connection: Connection | None = None,
    ) -> _T:
        """``work(conn)`` in a write transaction, run again if ``retryable`` says so.

        With ``one_statement`` (``work`` sends exactly one statement) and the
        dialect's ``single_statement_autocommit``, that statement runs in
        autocommit instead. A write whose connection breaks is not run again:
        it may have been applied. ``duplicate_job`` and ``duplicate_queue``
        are the messages of the errors a violated unique key becomes.

        In a caller's transaction, work that fails leaves that transaction as
        it was: work of several statements, which may fail after it wrote,
        runs in a savepoint; so does work that may hit a unique key where
        errors abort transactions, so that the error leaves it usable. One
        statement that fails wrote nothing, and needs none.
        """
        if connection is not None:
            conflicts = duplicate_job is not None or duplicate_queue is not None
            with self.joined(connection, duplicate_job, duplicate_queue):
                self._begin_pending(connection)
                # A caller's connection over another driver may send a batch otherwise.
                several = not (one_statement and _same_driver(connection.dialect, self.engine.dialect))
                if several or (conflicts and self.hooks.errors_abort_transactions):
                    with connection.begin_nested():
                        return work(connection)
                return work(connection)

        def once() -> _T:
            with self._connection(
                one_statement=one_statement,
                write=True,
                duplicate_job=duplicate_job,
                duplicate_queue=duplicate_queue,
            ) as conn:
                return work(conn)

        return self._attempts(once, write=True)

    @contextmanager
    def transaction(self, connection: Connection | None = None) -> Iterator[Connection]:
        """A connection in a write transaction committed on success (migrations),
        or the caller's ``connection`` in its own."""
        if connection is not None:
            with self.joined(connection):
                self._begin_pending(connection)
                yield connection
        else:
            with self._connection(one_statement=False, write=True) as conn:
                yield conn

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
                if not write or attempt >= WRITE_ATTEMPTS or not self.hooks.retryable(exc):
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
        Errors come out translated (``translating``)."""
        autocommit = one_statement and self.autocommit is not None
        engine = self.autocommit if autocommit else self.writer if write else self.engine
        try:
            conn = engine.connect()  # type: ignore[union-attr]
        except (DBAPIError, InvalidRequestError) as exc:
            raise unavailable(self.url, exc) from exc
        with self.translating(duplicate_job, duplicate_queue), conn:
            if autocommit or not write:
                yield conn
            else:
                with conn.begin():
                    yield conn

    def _alone(
        self,
        key: Hashable,
        build: Callable[[], Any],
        values: Mapping[str, Any],
        *,
        write: bool,
        single: bool = True,
        duplicate_job: str | None = None,
        before_send: Callable[[], None] | None = None,
    ) -> list[Row] | None:
        """The rows of one statement that is a whole operation, run on a
        pooled driver connection with no SQLAlchemy Connection around it
        (measured, a seventh of a call's client CPU on Postgres, more of it on
        SQLite); or None where it cannot be, and the caller goes the ordinary
        way: a dialect without ``direct_execution``, or with its driver
        neither in autocommit nor beginning writes itself, or
        ``before_cursor_execute`` listeners to call.

        In autocommit (Postgres) the statement runs alone; where the backend
        begins transactions itself (``write_begin``: SQLite), a write runs
        between that BEGIN and a commit, and a read (one SELECT) needs
        neither. It is run again where ``read`` and ``write`` would
        (``_attempts``). The connection is one such an operation used before
        where there is one (``IdleConnections``), not a new checkout.
        """
        hooks = self.hooks
        if self.autocommit is not None:
            engine, begin = self.autocommit, None
        elif hooks.write_begin is not None:
            engine, begin = self.engine, hooks.write_begin if write else None
        else:
            return None
        if not single or not hooks.direct_execution or engine.dispatch.before_cursor_execute:
            return None

        def once() -> list[Row]:
            try:
                fairy, keepable = self.idle.take()
            except (engine.dialect.loaded_dbapi.Error, DBAPIError, InvalidRequestError) as exc:
                raise unavailable(self.url, exc) from exc
            try:
                rows = self.driver_statement(key, build, before_send).rows_alone(fairy, values, begin)
            except BaseException as exc:
                self.idle.give_back(fairy, keep=False)
                if isinstance(exc, DBAPIError):
                    self.raise_translated(exc, duplicate_job)
                raise
            self.idle.give_back(fairy, keep=keepable)
            return rows

        return self._attempts(once, write=write)

    # -- a caller's connection ---------------------------------------------------------

    @contextmanager
    def joined(
        self, connection: Connection, duplicate_job: str | None = None, duplicate_queue: str | None = None
    ) -> Iterator[None]:
        """Work on a caller's ``connection``: checked to reach this backend's
        database, with this backend's schema for the work's duration, errors
        translated."""
        self.check_connection(connection)
        options = connection.get_execution_options()
        theirs = options.get("schema_translate_map")
        swap = theirs != self.schema_map
        if swap:
            # Connection.execution_options() changes the connection in place: put it back after.
            connection.execution_options(schema_translate_map=self.schema_map)
        try:
            with self.translating(duplicate_job, duplicate_queue):
                yield
        finally:
            if swap and not connection.closed:
                connection.execution_options(schema_translate_map=theirs)

    def _begin_pending(self, connection: Connection) -> None:
        """Begin, before a write joins a caller's transaction, the transaction
        the caller's driver has yet to begin (``pending_begin``), as its own
        first write would have: else a statement it does not take for a write
        (a claim's ``WITH … UPDATE``, a ``SAVEPOINT``) would run outside it."""
        dbapi_connection = connection.connection.dbapi_connection
        begin = None if dbapi_connection is None else self.hooks.pending_begin(dbapi_connection)
        if begin is not None:
            send_begin(connection, begin)

    def check_connection(self, connection: Any) -> None:
        """Refuse, before anything is sent, a ``connection=`` this backend cannot work in."""
        if not isinstance(connection, Connection):
            raise TypeError(
                f"connection must be a SQLAlchemy Connection (such as session.connection()), "
                f"not {type(connection).__name__}"
            )
        if connection.closed or connection.invalidated:
            raise ValueError("connection is closed; pass an open one")
        theirs = connection.engine.url
        if connection.dialect.name != self.engine.dialect.name:
            raise ValueError(
                f"connection is to {describe(theirs)}, but this backend's database is {describe(self.url)}"
            )
        if connection.engine.pool is self.root_engine.pool:
            return
        if in_memory(self.url) or not same_database(theirs, self.url):
            raise ValueError(
                f"connection is to {describe(theirs)}, not to this backend's {describe(self.url)}"
                + (" (in memory: only the backend's own engine reaches it)" if in_memory(self.url) else "")
            )

    # -- errors --------------------------------------------------------------------------

    def translating(self, duplicate_job: str | None = None, duplicate_queue: str | None = None) -> Translating:
        """A context in which database errors become the library's own (``translated``)."""
        return Translating(self, duplicate_job, duplicate_queue)

    def raise_translated(
        self, exc: DBAPIError, duplicate_job: str | None = None, duplicate_queue: str | None = None
    ) -> None:
        """Raise the library's own error for ``exc`` from it, where it has one; else return."""
        ours = self.translated(exc, duplicate_job, duplicate_queue)
        if ours is not exc:
            raise ours from exc

    def translated(
        self, exc: DBAPIError, duplicate_job: str | None = None, duplicate_queue: str | None = None
    ) -> Exception:
        """The library's own error for a database error, or the error itself."""
        if exc.connection_invalidated:
            return lost(self.url, exc)
        if isinstance(exc, IntegrityError):
            constraint = self.hooks.violated_constraint(exc)
            if constraint == UNIQUE_DIGEST_INDEX:
                return DuplicatedJobError(duplicate_job)
            if constraint == QUEUE_NAME_CONSTRAINT:
                return DuplicatedQueueError(duplicate_queue)
        return exc

    def _check_out(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        """The pool's checkout event: a dead connection is replaced, not handed out."""
        if not self.hooks.connection_alive(dbapi_connection):
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
        if dbapi_connection is not None and not self.hooks.connection_alive(dbapi_connection):
            context.is_disconnect = True

    # -- rows in and out ---------------------------------------------------------------

    def insert_rows(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[Row]:
        """Insert ``rows`` and return them as stored (every column, in table
        order), in the same order.

        With ``RETURNING`` where the database has it (for a batch, the few
        statements of the dialect's ``batch_insert``, or where the driver also
        keeps the rows in parameter order); else one INSERT per row, read back
        by the new keys in the same transaction.
        """
        dialect = conn.dialect
        if len(rows) == 1 and dialect.insert_returning:
            key, build = insert_one(table, rows[0])
            return self.run(key, conn, build, rows[0])
        keys = tuple(rows[0])
        batch = self.hooks.batch_insert
        same_keys = all(row.keys() == rows[0].keys() for row in rows)
        if batch is not None and dialect.insert_returning and same_keys and _same_driver(dialect, self.engine.dialect):
            encoders = self.statement(
                ("batch_encoders", table.name, keys), lambda: batch.encoders(table, keys, dialect)
            )
            return batch.insert(table, rows, encoders, lambda key, build, params: self.run(key, conn, build, params))
        if len(rows) > 1 and dialect.insert_executemany_returning_sort_by_parameter_order:
            stmt = self.statement(
                ("insert_many", table.name),
                lambda: insert(table).returning(*table.c, sort_by_parameter_order=True),
            )
            return list(conn.execute(stmt, rows))
        ids = []
        for row in rows:
            plain = self.statement(
                ("insert", table.name, frozenset(row)), lambda: insert(table).values(binds(table, row))
            )
            key = conn.execute(plain, row).inserted_primary_key
            if key is None:
                raise RuntimeError(f"the database gave no key for a row inserted into {table.name}")
            ids.append(key[0])
        return self.read_back(conn, table, ids)

    def update_by_ids(
        self,
        conn: Connection,
        table: Table,
        ids: list[int],
        values: Mapping[str, Any],
        before_send: Callable[[], None] | None = None,
    ) -> list[Row]:
        """Set ``values`` on the rows with these ids and return the rows as they now are.

        Without ``UPDATE … RETURNING`` the rows are read back in the same
        transaction, which still holds their locks.
        """
        if not ids:
            return []
        if not values:
            return self.read_back(conn, table, ids)
        returning = bool(conn.dialect.update_returning)
        if returning and len(ids) == 1:
            key, build_one = update_one(table, values)
            return self.run(key, conn, build_one, {**values, "id_1": ids[0]}, before_send)

        def build() -> Update:
            stmt = update(table).where(table.c.id.in_(ids_bind(table))).values(binds(table, values))
            return stmt.returning(*table.c) if returning else stmt

        stmt = self.statement(("update", table.name, frozenset(values), returning), build)
        if before_send is not None:
            before_send()
        result = conn.execute(stmt, {**values, "id_1": ids})
        if returning:
            return list(result)
        return self.read_back(conn, table, ids)

    def read_back(self, conn: Connection, table: Table, ids: list[int]) -> list[Row]:
        """The rows with these ids, in the order of ``ids``; missing ones left out."""
        stmt = self.statement(("read_back", table.name), lambda: select(table).where(table.c.id.in_(ids_bind(table))))
        found = {row[0]: row for row in conn.execute(stmt, {"id_1": ids})}  # id is the first column
        return [found[i] for i in ids if i in found]


class Translating:
    """``Execution.translating``: ``raise ours from exc`` for a database error
    that has an error of ours. A plain class rather than ``@contextmanager``,
    whose generator costs each operation more than the rest of this layer."""

    __slots__ = ("_execution", "_duplicate_job", "_duplicate_queue")

    def __init__(self, execution: Execution, duplicate_job: str | None, duplicate_queue: str | None) -> None:
        self._execution = execution
        self._duplicate_job = duplicate_job
        self._duplicate_queue = duplicate_queue

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any) -> None:
        if isinstance(exc, DBAPIError):
            self._execution.raise_translated(exc, self._duplicate_job, self._duplicate_queue)


def _same_driver(dialect: Dialect, ours: Dialect) -> bool:
    """Whether a caller's connection speaks to the database as the backend's own
    does, so that values encoded for the one suit the other."""
    return dialect is ours or (dialect.name, dialect.driver) == (ours.name, ours.driver)


def in_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def same_database(theirs: URL, ours: URL) -> bool:
    """Whether two URLs name the same database on the same server (drivers aside).

    A URL that leaves out the host or port means the local machine and the
    default port; a SQLite file is the same file once its path is resolved.
    """
    if theirs.get_backend_name() != ours.get_backend_name():
        return False
    if ours.get_backend_name() == "sqlite":
        return not in_memory(theirs) and os.path.realpath(theirs.database or "") == os.path.realpath(
            ours.database or ""
        )
    return _server(theirs) == _server(ours) and theirs.database == ours.database


def _server(url: URL) -> tuple[str, int | None]:
    host = url.host or str(url.query.get("host") or "")
    host = "localhost" if host.lower() in _THIS_MACHINE else host.lower()
    return host, url.port or _DEFAULT_PORTS.get(url.get_backend_name())


def explicit_begin(isolation_level: Any) -> Callable[[Connection], None]:
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
