"""MySQL 8 and MariaDB 10.6+, over PyMySQL by default (``pip install sidequest-sql[mysql]``).

- ``mysql://``, ``mysql+pymysql://`` and ``mariadb://`` use PyMySQL; a URL
  naming another driver (``mysql+mysqldb://``) keeps it.
- Claims lock the candidate rows with ``FOR UPDATE SKIP LOCKED``. Neither
  database has ``UPDATE … RETURNING``, so the claimed rows are updated by id
  and read back inside the same transaction (MySQL 8 has no
  ``INSERT … RETURNING`` either: new rows are read back the same way, one
  ``INSERT`` per job in a batch).
- Sessions run at ``READ COMMITTED``: the gap locks of ``REPEATABLE READ``
  make concurrent claims deadlock. A deadlock that still
  happens rolls the transaction back, and it is run again a few times.
- Names, queues, classes, states and digests use a binary ``NO PAD``
  collation (``utf8mb4_nopad_bin`` on MariaDB, ``utf8mb4_0900_bin`` on
  MySQL), so that, as on Postgres, they compare case-sensitively and
  ``'a'`` is not ``'a '``.
- Times are ``DATETIME(6)`` holding naive UTC; sessions use the UTC time zone,
  so that the column default ``CURRENT_TIMESTAMP`` is UTC as well.
- MariaDB stores JSON as text (the canonical text this library writes, which
  is what ``args=`` compares); MySQL's native JSON is compared as JSON. A
  payload may nest 31 arrays and objects deep, what MariaDB's ``JSON_VALID``
  takes (MySQL 8 takes 100).
- A pooled connection the server closed while it sat idle (``KILL``,
  ``wait_timeout``, a restart) is noticed as it leaves the pool and replaced.
- Parameters go out as plain values (an enum member as its value), and a
  statement longer than the server's ``max_allowed_packet`` (16 MiB by
  default on MariaDB, 64 MiB on MySQL 8, counted after escaping) is refused
  with ``ValueError`` before it is sent (``mysql_parameters``).
- The counts per state read a ``(queue, state)`` index, but MariaDB cannot
  index an expression, so ``count_jobs(since=…, until=…)`` and
  ``count_jobs_over_time`` read the whole table (on MySQL 8 too: one schema
  serves both).
- ``schema=`` is not supported: a MySQL schema is a database, name it in the URL.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, cast, event, func, literal_column, type_coerce
from sqlalchemy.dialects.mysql import DATETIME
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ..base import SQLBackend
from ..connections import driver_connection, socket_readable
from ..schema import Timestamp
from ..times import TimeUnit
from . import mysql_parameters

_BUCKET_FORMATS = {"m": "'%Y-%m-%d %H:%i:00'", "h": "'%Y-%m-%d %H:00:00'", "d": "'%Y-%m-%d 00:00:00'"}
# MySQL 8 writes the key as "table.key"; MariaDB as "key".
_DUPLICATE_ENTRY = re.compile(r"for key '(?:[^'.]*\.)?(?P<key>[^'.]+)'\s*\Z")
_DEADLOCK = 1213


class MySQLBackend(SQLBackend):
    # MariaDB's JSON_VALID, which its JSON columns check, refuses 32 nested
    # arrays and objects (before 12.2); MySQL 8's JSON type takes 100. One
    # class serves both and checks before it has connected: the smaller.
    max_json_depth = 31

    @classmethod
    def engine_url(cls, url: URL) -> URL:
        if url.drivername in ("mysql", "mariadb"):
            return url.set(drivername=f"{url.drivername}+pymysql")
        return url

    @classmethod
    def engine_options(cls, url: URL) -> dict[str, Any]:
        # Servers close idle connections after wait_timeout (8 h by default).
        return {"isolation_level": "READ COMMITTED", "pool_recycle": 3600}

    def configure_engine(self, engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _utc_session(dbapi_connection: Any, _record: Any) -> None:
            # DATETIME holds naive UTC: CURRENT_TIMESTAMP, the column default, must be UTC too.
            cursor = dbapi_connection.cursor()
            cursor.execute("SET time_zone = '+00:00'")
            cursor.close()

        mysql_parameters.install(engine)

    def connection_alive(self, dbapi_connection: Any) -> bool:
        # A server that killed or timed out an idle connection has hung up on it.
        connection = driver_connection(dbapi_connection)
        if hasattr(connection, "_reader"):  # aiomysql: an asyncio stream, None once closed
            reader = connection._reader
            # The event loop reads the socket as data comes: a goodbye is already in the stream.
            gone = reader is None or reader.at_eof() or getattr(reader, "_eof", False)
            return not gone and not connection._writer.is_closing()
        if hasattr(connection, "_sock"):  # PyMySQL: None once closed
            sock = connection._sock
            return sock is not None and not socket_readable(sock.fileno())
        return True  # another driver: trusted

    def time_bucket(self, moment: ColumnElement[datetime], unit: TimeUnit) -> ColumnElement[datetime]:
        # A literal format, not a parameter: GROUP BY must see the same expression as SELECT.
        start = func.date_format(moment, literal_column(_BUCKET_FORMATS[unit]))
        return type_coerce(cast(start, DATETIME(fsp=6)), Timestamp())

    def json_equals(self, column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
        # Named after the column, so that a refusal of an over-long statement names the argument.
        return column == JSONDocument(bindparam(column.key, value, type_=column.type, unique=True))

    def violated_constraint(self, error: IntegrityError) -> str | None:
        args = error.orig.args if error.orig is not None else ()
        match = _DUPLICATE_ENTRY.search(str(args[-1]) if args else "")
        return match["key"] if match else None

    def retryable(self, error: DBAPIError) -> bool:
        code = error.orig.args[0] if error.orig is not None and error.orig.args else None
        # InnoDB rolls a deadlock victim's whole transaction back: running it again is safe.
        return code == _DEADLOCK


class JSONDocument(FunctionElement[Any]):
    """A JSON value as a document: cast on MySQL, whose JSON columns are native;
    left as text on MariaDB, whose JSON columns are text."""

    inherit_cache = True
    name = "json_document"


@compiles(JSONDocument)
def _compile_json_document(element: JSONDocument, compiler: Any, **kw: Any) -> str:
    text = compiler.process(element.clauses, **kw)
    return text if getattr(compiler.dialect, "is_mariadb", True) else f"CAST({text} AS JSON)"
