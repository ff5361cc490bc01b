"""SQLite: the embedded default, one file shared by threads and processes.

- Every connection runs in WAL mode with ``synchronous=NORMAL`` (a power cut
  may lose the last transactions, never corrupt the file; pass
  ``sqlite_synchronous="FULL"`` to ``create_backend`` for full durability), a
  30 s busy timeout and foreign keys on. WAL is recorded in the file itself:
  from the first connection on, every connection to it (another process, the
  ``sqlite3`` shell) uses it too; ``synchronous`` is per connection, and
  NORMAL only on the backend's own.
- The counts per state read a ``(queue, state)`` index instead of the table,
  and time-bounded counts an index on the time a job counts at. Nothing runs
  ``ANALYZE``: without statistics SQLite takes the index for any window, so
  ``count_jobs_over_time`` over a window holding most of the table costs
  somewhat more than reading the table would.
- Writes begin with ``BEGIN IMMEDIATE``: a writer takes the file's write lock
  first and waits for it under the busy timeout, so a claim never reads rows
  another process is about to take, and "database is locked" does not escape
  under normal contention. Reads never wait.
- In a caller's transaction on an engine of the caller's own, whose
  ``sqlite3`` begins a transaction only before a plain ``INSERT``,
  ``UPDATE`` or ``DELETE``, a write begins it first (``pending_begin``):
  a claim (``WITH … UPDATE``) or a savepoint would otherwise run outside it.
- Times are stored as naive UTC text with microseconds, which orders and
  compares correctly; JSON as canonical text (sorted keys), nested at most
  256 arrays and objects deep, in columns declared ``TEXT``: declared
  ``JSON`` they would have NUMERIC affinity, and SQLite would keep a
  document that is a bare number as a number, changed by its text-to-double
  conversion (databases made before revision 0008 are converted by it).
- ``sqlite://`` (in memory) is one database per backend: its threads share a
  single connection, one transaction at a time.
- A batch enqueue (``create_new_jobs``) is multi-row
  ``INSERT … VALUES (…), (…) … RETURNING`` statements of up to 128 rows (64
  where SQLite is older than 3.32, with its limit of 999 bound parameters),
  in one ``BEGIN IMMEDIATE`` transaction.
- ``schema=`` is not supported.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Index, Select, UniqueConstraint, event, func, type_coerce
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

from ..base import SQLBackend
from ..batches import ValuesInsert
from ..connections import driver_connection
from ..execution import send_begin
from ..schema import Timestamp, metadata
from ..times import TimeUnit

_BUCKET_FORMATS = {
    "m": "%Y-%m-%d %H:%M:00.000000",
    "h": "%Y-%m-%d %H:00:00.000000",
    "d": "%Y-%m-%d 00:00:00.000000",
}
_UNIQUE_FAILED = re.compile(r"UNIQUE constraint failed: (?:index '(?P<index>[^']+)'|(?P<columns>.+))")
_GLOB_LITERALS = {"*": "[*]", "?": "[?]", "[": "[[]"}
BUSY_TIMEOUT_MS = 30_000
# sqlite3.Connection.autocommit's value for the legacy transaction control (Python 3.12+;
# before, the only control there is).
LEGACY_TRANSACTION_CONTROL = getattr(sqlite3, "LEGACY_TRANSACTION_CONTROL", -1)
# SQLite's default limit on bound parameters per statement (SQLITE_MAX_VARIABLE_NUMBER):
# 999 before 3.32.0.
MAX_PARAMETERS = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


class SQLiteBackend(SQLBackend):
    direct_execution = True
    write_begin = "BEGIN IMMEDIATE"
    # Multi-row INSERT … VALUES … RETURNING, under the bound-parameter limit,
    # in the batch's one BEGIN IMMEDIATE transaction. (SQLAlchemy's
    # insertmanyvalues sends one statement per row here: SQLite promises no
    # order of RETURNING rows, which the batch sorts by id instead.)
    batch_insert = ValuesInsert(max_parameters=MAX_PARAMETERS)
    supports_skip_locked = False
    # Stored as text; SQLite's JSON functions (json_extract, json_valid) read
    # 1000 levels (2000 before 3.45.0). The library's own Python is the nearer
    # bound (see DialectHooks.max_json_depth).
    max_json_depth = 256

    def __init__(self, url: str | URL, *, sqlite_synchronous: str = "NORMAL", **options: Any) -> None:
        if not isinstance(sqlite_synchronous, str):
            raise TypeError(f"sqlite_synchronous must be a str such as 'FULL', not {type(sqlite_synchronous).__name__}")
        if sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA; got {sqlite_synchronous!r}")
        self._synchronous = sqlite_synchronous.upper()
        super().__init__(url, **options)

    @classmethod
    def engine_options(cls, url: URL) -> dict[str, Any]:
        if url.database in (None, "", ":memory:"):
            # One connection keeps the one in-memory database alive for every thread.
            return {
                "poolclass": AsyncAdaptedQueuePool if url.get_dialect().is_async else QueuePool,
                "pool_size": 1,
                "max_overflow": 0,
                "pool_timeout": 3600,
                "connect_args": {"check_same_thread": False},
            }
        return {}

    def configure_engine(self, engine: Engine) -> None:
        synchronous = self._synchronous

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            # Transactions are begun by the "begin" listener below, not by the driver.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            write = conn.get_execution_options().get("sidequest_write", False)
            send_begin(conn, self.write_begin if write else "BEGIN")

    def pending_begin(self, dbapi_connection: Any) -> str | None:
        # sqlite3 (and aiosqlite over it) in its legacy transaction control, on
        # a caller's engine, begins with "BEGIN" and its isolation_level before
        # a statement that starts with INSERT, UPDATE, DELETE or REPLACE: not
        # before a claim (WITH … UPDATE) or a SAVEPOINT. The backend's own
        # engines keep it in autocommit (isolation_level None) and begin themselves.
        connection = driver_connection(dbapi_connection)
        level = getattr(connection, "isolation_level", None)
        legacy = getattr(connection, "autocommit", LEGACY_TRANSACTION_CONTROL) == LEGACY_TRANSACTION_CONTROL
        if level is None or not legacy or getattr(connection, "in_transaction", True):
            return None
        return f"BEGIN {level}".rstrip()

    def lock_for_claim(self, candidates: Select[Any]) -> Select[Any]:
        # No row locks: BEGIN IMMEDIATE already gives the claim the whole file.
        return candidates

    def time_bucket(self, moment: ColumnElement[datetime], unit: TimeUnit) -> ColumnElement[datetime]:
        return type_coerce(func.strftime(_BUCKET_FORMATS[unit], moment), Timestamp())

    def like(self, column: ColumnElement[str], pattern: str) -> ColumnElement[bool]:
        # SQLite's LIKE ignores ASCII case; GLOB is case-sensitive.
        return column.op("GLOB")(like_to_glob(pattern))

    def violated_constraint(self, error: IntegrityError) -> str | None:
        match = _UNIQUE_FAILED.search(str(error.orig))
        if match is None:
            return None
        if match["index"]:
            return match["index"]
        qualified = [name.strip() for name in match["columns"].split(",")]
        table = metadata.tables.get(qualified[0].split(".")[0])
        columns = {name.split(".", 1)[1] for name in qualified}
        if table is None:
            return None
        uniques: list[Index | UniqueConstraint] = [index for index in table.indexes if index.unique]
        uniques += [c for c in table.constraints if isinstance(c, UniqueConstraint)]
        for unique in uniques:
            if {c.name for c in unique.columns} == columns:
                return str(unique.name)
        return None


def like_to_glob(pattern: str) -> str:
    """The GLOB pattern matching what the LIKE ``pattern`` (backslash escapes) matches."""
    out = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(_GLOB_LITERALS.get(escaped := next(chars, "\\"), escaped))
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(_GLOB_LITERALS.get(char, char))
    return "".join(out)
