"""The tables, in one place: the backend queries them and migrations build them.

On Postgres they are column for column those of Sidequest's own Postgres
backend (knex names included), so Node and Python processes share one
database. Other databases get the nearest types: times as naive UTC
``DATETIME`` with microseconds, JSON as canonical text (see ``jsonvalues``;
declared ``TEXT`` on SQLite, ``JSONText``),
and on MySQL/MariaDB short text in a binary ``NO PAD`` collation, so that it
compares as on Postgres.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

from .fields import NAME_LENGTH

VERSION_TABLE = "sidequest_sql_version"
UNIQUE_DIGEST_INDEX = "sidequest_jobs_unique_digest_active_idx"
QUEUE_NAME_CONSTRAINT = "sidequest_queues_name_unique"
CLAIM_INDEX = "sidequest_jobs_claim_idx"
QUEUE_STATE_INDEX = "sidequest_jobs_queue_state_idx"
COUNTED_AT_INDEX = "sidequest_jobs_counted_at_idx"
MYSQL_DIALECTS = ("mysql", "mariadb")

# Node Sidequest's knex bookkeeping, which migrate() keeps on Postgres so that
# Node's own migrate() finds its migrations done: @sidequest/postgres-backend's
# knex migrations table and knex's lock table beside it, and this library's
# record of what it wrote into them. Nothing else reads them.
KNEX_MIGRATIONS_TABLE = "sidequest_migrations"
KNEX_LOCK_TABLE = "sidequest_migrations_lock"
KNEX_RECORDS_TABLE = "sidequest_sql_knex_records"
NODE_BOOKKEEPING_TABLES = (KNEX_MIGRATIONS_TABLE, KNEX_LOCK_TABLE, KNEX_RECORDS_TABLE)


class Timestamp(TypeDecorator[datetime]):
    """An instant: aware in, aware UTC out, exact to the microsecond.

    Postgres keeps ``timestamptz``; elsewhere the value is stored as naive UTC,
    whose text or numeric form orders and compares correctly in SQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in MYSQL_DIALECTS:
            # Plain DATETIME drops the microseconds.
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=dialect.name == "postgresql"))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _utc(value)

    # On the two databases whose rows are read on the hot path, one function
    # per value instead of SQLAlchemy's chain of two (a measurable share of
    # reading a job): the same values, read and written as the impl would.

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return _sqlite_text
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name == "postgresql":
            return _utc_or_none  # psycopg reads timestamptz as an aware datetime
        if dialect.name == "sqlite":
            return _from_sqlite_text
        return super().result_processor(dialect, coltype)


def _utc(value: datetime) -> datetime:
    tz = value.tzinfo
    if tz is UTC:  # psycopg's timestamptz in a UTC session
        return value
    return value.replace(tzinfo=UTC) if tz is None else value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is UTC else _utc(value)


def _sqlite_text(value: datetime | None) -> str | None:
    """Naive UTC in the text form of SQLAlchemy's SQLite ``DATETIME``:
    ``YYYY-MM-DD HH:MM:SS.ffffff``, which sorts and compares as the instants do."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _from_sqlite_text(value: str | None) -> datetime | None:
    """The aware UTC instant stored as ``_sqlite_text`` (or without microseconds,
    as SQLite's ``CURRENT_TIMESTAMP`` writes it)."""
    if value is None:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class Name(TypeDecorator[str]):
    """Short text (names, states, digests): ``varchar(255)``, compared exactly.

    MySQL and MariaDB compare text ignoring case and trailing spaces by
    default, which would make ``'Emails'`` and ``'emails '`` one queue name;
    there these columns get a binary ``NO PAD`` collation, whose name depends
    on the server.
    """

    impl = String(NAME_LENGTH)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in MYSQL_DIALECTS:
            collation = "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_0900_bin"
            return dialect.type_descriptor(mysql.VARCHAR(NAME_LENGTH, charset="utf8mb4", collation=collation))
        return dialect.type_descriptor(String(NAME_LENGTH))


class CurrentTimestamp(FunctionElement[datetime]):
    """``CURRENT_TIMESTAMP`` as a column default; MySQL wants the column's precision on it."""

    inherit_cache = True
    name = "current_timestamp"


class LiteralDefault(FunctionElement[Any]):
    """A constant column default; MySQL takes one on a TEXT column only in parentheses."""

    inherit_cache = True
    name = "literal_default"


@compiles(CurrentTimestamp)
def _current_timestamp(element: CurrentTimestamp, compiler: Any, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP(6)" if compiler.dialect.name in MYSQL_DIALECTS else "CURRENT_TIMESTAMP"


@compiles(LiteralDefault)
def _literal_default(element: LiteralDefault, compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **{**kw, "literal_binds": True})
    return f"({value})" if compiler.dialect.name in MYSQL_DIALECTS else str(value)


class JSONText(JSON):
    """A JSON document kept as the text this library writes; declared ``TEXT`` on SQLite.

    SQLite gives a column declared ``JSON`` NUMERIC affinity: a document that
    is a bare number would be kept as a number, converted by a text-to-double
    conversion that is not correctly rounded (``3.313808515801691e-303``
    came back as ``3.3138085158016914e-303``). ``TEXT`` affinity keeps the
    text as it was written. Values are written and read as SQLAlchemy's
    ``JSON`` does, whose SQLite reader also takes a number, as a database
    not yet at revision 0008 may hold.
    """


@compiles(JSONText, "sqlite")
def _json_text(type_: JSONText, compiler: Any, **kw: Any) -> str:
    return "TEXT"


def json_document() -> TypeEngine[Any]:
    """A JSON column: ``jsonb`` on Postgres, ``TEXT`` on SQLite (``JSONText``); SQL NULL stands for None."""
    return JSONText(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def big_id() -> TypeEngine[int]:
    # SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
    return BigInteger().with_variant(Integer(), "sqlite")


metadata = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "ix": "%(table_name)s_%(column_0_name)s_index",
        "uq": "%(table_name)s_%(column_0_name)s_unique",
    }
)

queues = Table(
    "sidequest_queues",
    metadata,
    Column("id", big_id(), primary_key=True, autoincrement=True),
    Column("name", Name(), nullable=False, unique=True),
    Column("state", Name(), nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
)

jobs = Table(
    "sidequest_jobs",
    metadata,
    Column("id", big_id(), primary_key=True, autoincrement=True),
    Column("queue", Name(), nullable=False, index=True),
    Column("state", Name(), nullable=False),
    Column("script", Name(), nullable=False),
    Column("class", Name(), nullable=False, key="job_class"),
    Column("args", json_document(), nullable=False),
    Column("constructor_args", json_document(), nullable=False),
    Column("timeout", Integer, nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("result", json_document(), nullable=True),
    Column("errors", json_document(), nullable=True),
    Column("inserted_at", Timestamp(), nullable=False, server_default=CurrentTimestamp()),
    Column("attempted_at", Timestamp(), nullable=True),
    Column("available_at", Timestamp(), nullable=False),
    Column("completed_at", Timestamp(), nullable=True),
    Column("failed_at", Timestamp(), nullable=True),
    Column("canceled_at", Timestamp(), nullable=True),
    Column("claimed_by", Name(), nullable=True),
    Column("claimed_at", Timestamp(), nullable=True),
    Column("unique_digest", Name(), nullable=True),
    Column("uniqueness_config", json_document(), nullable=True),
    Column("retry_delay", Integer, nullable=True),
    Column("backoff_strategy", Text, nullable=False, server_default=LiteralDefault("exponential")),
    # Not Node Sidequest's: its default serves the rows a Node process inserts without it.
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Index(
        UNIQUE_DIGEST_INDEX,
        "unique_digest",
        unique=True,
        postgresql_where=text("unique_digest IS NOT NULL"),
        sqlite_where=text("unique_digest IS NOT NULL"),
    ),
    # Serves the counts per queue and state, read in this order from the index
    # alone. Not (state, queue): without statistics SQLite would take it for
    # every filter on a state, finished jobs included, over reading in id order.
    Index(QUEUE_STATE_INDEX, "queue", "state"),
)

# Serves the claim, in its order: its cost stays flat however many finished jobs are kept.
Index(
    CLAIM_INDEX,
    jobs.c.queue,
    jobs.c.priority.desc(),
    jobs.c.inserted_at,
    jobs.c.id,
    postgresql_where=text("state = 'waiting'"),
    sqlite_where=text("state = 'waiting'"),
)

# The columns whose first non-null value is the time a job counts at in the
# statistics: when it finished, else started, was claimed, was enqueued.
COUNTED_AT_COLUMNS = ("completed_at", "failed_at", "canceled_at", "attempted_at", "claimed_at", "inserted_at")


def counted_at() -> ColumnElement[datetime]:
    """``COALESCE`` of ``COUNTED_AT_COLUMNS``, exactly as the index on it is written."""
    return func.coalesce(*(jobs.c[name] for name in COUNTED_AT_COLUMNS))


# Serves time-bounded counts: they read only the rows of their window.
# MariaDB cannot index an expression (MySQL 8 can, but one schema serves
# both), so there these counts read the whole table.
EXPRESSION_INDEX_DIALECTS = ("postgresql", "sqlite")
# ddl_if takes a tuple of dialect names, as documented, though typed for one.
Index(COUNTED_AT_INDEX, counted_at()).ddl_if(dialect=EXPRESSION_INDEX_DIALECTS)  # type: ignore[arg-type]

# Which field of JobData each column fills, in table order.
JOB_FIELD_OF_COLUMN: dict[str, str] = {c.name: c.key for c in jobs.columns}
