"""Statements compiled once and run straight on the driver's cursor.

On the hot operations (enqueue one job, claim, update a job, get a job) the
client CPU SQLAlchemy spends around each execution (an execution context,
result metadata, row objects, events) was more than twice what the driver
spends. A ``DriverStatement`` is a Core statement compiled once, for the
backend's dialect and schema, with SQLAlchemy's own bind and result
processors; it runs on the DBAPI cursor of a connection checked out through
SQLAlchemy's pool, inside whatever transaction the backend began. Driver
errors come out as SQLAlchemy's ``DBAPIError`` family and a broken connection
is invalidated, as on the ordinary path, so the rest of the backend cannot
tell the difference.

Run through a SQLAlchemy ``Connection`` (``rows``), each
statement still reaches the engine's ``before_cursor_execute`` listeners
(with no execution context: ``context`` is None), so logging and tracing
keep working. ``rows_alone`` has no Connection to give them: the backend uses
it only where nobody listens.

Over an asyncio driver (the async backend, whose operations run in a
greenlet) ``rows_alone`` awaits one coroutine that does the statement's whole
exchange with the driver's own connection — cursor, BEGIN, statement, rows,
commit — instead of going through SQLAlchemy's adapted cursor, which awaits
each of those steps apart, each a switch out of the greenlet and back. On
aiosqlite, where each call is a trip to the connection's thread, a write is
three calls (BEGIN, ``execute_fetchall``, commit) and a read one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.util.concurrency import await_

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Dialect
    from sqlalchemy.sql import ClauseElement


class DriverStatement:
    """One compiled statement: its SQL text, how to bind a call's values, how to read its rows."""

    __slots__ = (
        "sql", "_dialect", "_alive", "_slots", "_positional", "_fixed", "_binders", "_readers", "_fetch", "_fetch_async",
    )

    sql: str

    def __init__(
        self,
        statement: ClauseElement,
        dialect: Dialect,
        schema_translate_map: Mapping[Any, str] | None = None,
        alive: Callable[[Any], bool] | None = None,
        before_send: Callable[[], None] | None = None,
        asynchronous: bool = False,
    ) -> None:
        """``alive(dbapi_connection)`` tells, after an error, a connection that
        broke where the dialect's ``is_disconnect`` cannot (``SQLBackend.connection_alive``);
        ``before_send()`` is called just before the statement goes (after any
        BEGIN), for a claim to say that it is under way (``claim_guard``);
        ``asynchronous``: the dialect's driver is an asyncio one, awaited from a
        greenlet."""
        compiled: Any = statement.compile(
            dialect=dialect,
            schema_translate_map=schema_translate_map,
            render_schema_translate=bool(schema_translate_map),
        )
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("a DriverStatement cannot take an expanding (IN list) parameter")
        self.sql = compiled.string
        self._dialect = dialect
        self._alive = alive
        self._positional = bool(compiled.positional)
        processors: dict[str, Callable[[Any], Any]] = dict(compiled._bind_processors)
        # Values fixed at build time (e.g. state = 'waiting') are processed once, here.
        self._fixed: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            if bind.callable is None and bind.value is not None:
                processor = processors.get(name)
                self._fixed[name] = bind.value if processor is None else processor(bind.value)
        self._binders = {
            name: (p, _keeps_none(p)) for name, p in processors.items() if name not in self._fixed
        }
        # A positional statement's parameters in order: (name, fixed value, processor, keeps None).
        self._slots: tuple[tuple[str, Any, Callable[[Any], Any] | None, bool], ...] = tuple(
            (name, self._fixed.get(name, _UNSET), *self._binders.get(name, (None, True)))
            for name in (compiled.positiontup or () if self._positional else ())
        )
        self._fetch: Send = _execute_fetching if compiled._result_columns else _execute_only
        if before_send is not None:
            self._fetch = _announced(before_send, self._fetch)
        self._fetch_async: SendAsync | None = None
        if asynchronous:
            self._fetch_async = _fetching_async(bool(compiled._result_columns), before_send)
        readers = (column[3]._cached_result_processor(dialect, None) for column in compiled._result_columns)
        self._readers: tuple[tuple[int, Callable[[Any], Any], bool], ...] = tuple(
            (i, read, _keeps_none(read)) for i, read in enumerate(readers) if read is not None
        )

    def rows(self, conn: Connection, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        """Run the statement with ``values`` on ``conn``'s driver connection; every row it returns."""
        return self._run(conn.connection, conn, self._fetch, self.parameters(values))

    def rows_alone(self, fairy: Any, values: Mapping[str, Any], begin: str | None = None) -> list[Sequence[Any]]:
        """``rows`` on a pooled connection (``engine.raw_connection()``) with no
        SQLAlchemy Connection around it, for a statement that is a whole
        transaction: in the driver's autocommit, or between ``begin`` (say
        ``BEGIN IMMEDIATE``) and a commit. ``before_cursor_execute``
        listeners are not called, so use it only where there are none."""
        if self._fetch_async is not None:
            return self._run_async(fairy, self._fetch_async, begin, self.parameters(values))
        return self._run(fairy, None, self._fetch, self.parameters(values), begin)

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters for a call with ``values``, each through its bind processor."""
        if self._positional:
            args = []
            for name, fixed, processor, keeps_none in self._slots:
                if fixed is not _UNSET:
                    args.append(fixed)
                    continue
                value = values[name]
                if processor is not None and (value is not None or not keeps_none):
                    value = processor(value)
                args.append(value)
            return args
        params = {**self._fixed, **values}
        for name, (processor, keeps_none) in self._binders.items():
            value = params[name]
            if value is not None or not keeps_none:
                params[name] = processor(value)
        return params

    def _run(
        self, fairy: Any, conn: Connection | None, send: Send, args: Any, begin: str | None = None
    ) -> list[Sequence[Any]]:
        """``send`` on a cursor of ``fairy`` (``conn``'s, if there is a Connection
        around it); after ``begin`` and before a commit, or a rollback if anything
        fails, if ``begin`` is given."""
        sql = self.sql
        dbapi_connection = fairy.dbapi_connection
        cursor = dbapi_connection.cursor()
        try:
            if conn is not None:
                listeners = conn.dispatch.before_cursor_execute
                if listeners:
                    for listener in listeners:
                        sql, args = listener(conn, cursor, sql, args, None, False)
            if begin is None:
                fetched = send(cursor, sql, args)
            else:
                cursor.execute(begin)
                try:
                    fetched = send(cursor, sql, args)
                    dbapi_connection.commit()
                except BaseException:
                    try:
                        dbapi_connection.rollback()
                    except Exception:  # a broken connection: the original error tells why
                        pass
                    raise
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._failed(exc, fairy, conn, cursor, args) from exc
        finally:
            cursor.close()
        return self.decode(fetched)

    def _run_async(self, fairy: Any, send: SendAsync, begin: str | None, args: Any) -> list[Sequence[Any]]:
        """``_run`` over an asyncio driver, from a greenlet: one await of ``send``
        on the driver's own connection (``fairy``'s), in a transaction from
        ``begin`` to a commit if ``begin`` is given."""
        connection = fairy.dbapi_connection.driver_connection
        try:
            fetched = await_(send(connection, self.sql, args, begin))
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._failed(exc, fairy, None, None, args) from exc
        return self.decode(fetched)

    def _failed(self, exc: Any, fairy: Any, conn: Connection | None, cursor: Any, args: Any) -> BaseException:
        """The ``DBAPIError`` for a driver error; a connection that broke is invalidated."""
        dbapi_connection = fairy.dbapi_connection
        disconnect = self._dialect.is_disconnect(exc, dbapi_connection, cursor) or (
            self._alive is not None and not self._alive(dbapi_connection)
        )
        if disconnect:
            (fairy if conn is None else conn).invalidate(exc)
        return DBAPIError.instance(
            self.sql,
            args,
            exc,
            self._dialect.loaded_dbapi.Error,
            connection_invalidated=disconnect,
            dialect=self._dialect,
        )

    def decode(self, fetched: list[Sequence[Any]]) -> list[Sequence[Any]]:
        """The driver's rows read as SQLAlchemy reads them (each column's result processor)."""
        readers = self._readers
        if not readers:
            return fetched
        rows: list[Sequence[Any]] = []
        for fetched_row in fetched:
            row = list(fetched_row)
            for i, read, keeps_none in readers:
                value = row[i]
                if value is not None or not keeps_none:
                    row[i] = read(value)
            rows.append(row)
        return rows


_UNSET = object()


def _keeps_none(processor: Callable[[Any], Any]) -> bool:
    """Whether ``processor`` maps None to None, so that it need not see one
    (most columns of a job are NULL most of the time)."""
    try:
        return processor(None) is None
    except Exception:  # e.g. a processor that refuses None: it must see every value
        return False


def _execute_fetching(cursor: Any, sql: str, args: Any) -> list[Sequence[Any]]:
    cursor.execute(sql, args)
    # Not cursor.description: psycopg builds it anew on each access.
    return cursor.fetchall()


def _execute_only(cursor: Any, sql: str, args: Any) -> list[Sequence[Any]]:
    cursor.execute(sql, args)
    return []


def _announced(before_send: Callable[[], None], send: Send) -> Send:
    """``send``, calling ``before_send`` first (after any BEGIN)."""

    def announced(cursor: Any, sql: str, args: Any) -> list[Sequence[Any]]:
        before_send()
        return send(cursor, sql, args)

    return announced


Send = Callable[[Any, str, Any], list[Sequence[Any]]]
"""``(cursor, sql, args)`` to the rows: how a statement is sent on a cursor."""

SendAsync = Callable[[Any, str, Any, "str | None"], Awaitable[list[Sequence[Any]]]]
"""``(driver connection, sql, args, begin)`` to the rows, over an asyncio driver."""


def _fetching_async(fetch: bool, before_send: Callable[[], None] | None) -> SendAsync:
    """The statement's exchange with an asyncio driver's connection (psycopg's
    ``AsyncConnection``, aiosqlite's ``Connection``), as one coroutine: ``begin``
    if given, ``before_send()``, the statement, its rows if ``fetch``, the
    commit; rolled back if anything fails."""

    async def send(connection: Any, sql: str, args: Any, begin: str | None) -> list[Sequence[Any]]:
        execute_fetchall = getattr(connection, "execute_fetchall", None)
        if execute_fetchall is None:
            return await _on_a_cursor(connection, sql, args, begin, fetch, before_send)
        # aiosqlite runs each call in its connection's thread, a round trip
        # through a queue and the event loop (about 60 µs of CPU, more than
        # SQLite's own work): its one-call execute_fetchall takes a write from
        # six trips (cursor, BEGIN, statement, rows, commit, close) to three,
        # and a read from four to one.
        if begin is None:
            if before_send is not None:
                before_send()
            return list(await execute_fetchall(sql, args))
        try:
            await execute_fetchall(begin)
            if before_send is not None:
                before_send()
            rows = list(await execute_fetchall(sql, args))
            await connection.commit()
        except BaseException:
            await _roll_back(connection)
            raise
        return rows

    return send


async def _on_a_cursor(
    connection: Any, sql: str, args: Any, begin: str | None, fetch: bool, before_send: Callable[[], None] | None
) -> list[Sequence[Any]]:
    """The exchange on a cursor of ``connection`` (psycopg's, whose cursor
    needs no round trip to open, and whose rows come with the statement)."""
    cursor = connection.cursor()
    if hasattr(cursor, "__await__"):  # a driver that opens cursors asynchronously
        cursor = await cursor
    try:
        if begin is not None:
            await cursor.execute(begin)
        try:
            if before_send is not None:
                before_send()
            await cursor.execute(sql, args)
            rows = list(await cursor.fetchall()) if fetch else []
            if begin is not None:
                await connection.commit()
        except BaseException:
            if begin is not None:
                await _roll_back(connection)
            raise
    finally:
        await cursor.close()
    return rows


async def _roll_back(connection: Any) -> None:
    try:
        await connection.rollback()
    except Exception:  # a broken connection: the original error tells why
        pass
